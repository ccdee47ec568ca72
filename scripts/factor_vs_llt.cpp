// The engine's tiled factorization of one large KKT matrix (factor_natural_blocked,
// ldlt_tiled.hpp) against Eigen's blocked Cholesky (Eigen::LLT, the dense factorization PIQP's
// DenseSolver runs each iteration) on the same problem, the two calls alternated, 20th
// percentiles of 40 rounds:
//     K = [Q Aᵀ; A −δI],  Q = MMᵀ/n + I (n×n, M standard normal),  A standard normal (m×n);
// factor_natural_blocked factors all of K (N = n + m), LLT only Q (n³/3 of the N³/3 flops).
// The rate is N³/3 multiply–adds (two flops each) per second. Build and run (Eigen from
// cmeel-eigen, as the package build takes it):
//     EIGEN=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/cmeel.prefix/include/eigen3
//     g++ -O3 -DNDEBUG -march=x86-64-v4 -mprefer-vector-width=512 -ffp-contract=off -fopenmp \
//         -DEIGEN_DONT_PARALLELIZE -Icpp/include -I"$EIGEN" scripts/factor_vs_llt.cpp -o /tmp/fvl
//     /tmp/fvl 569 1      # svm's KKT size;  /tmp/fvl 500 50: large's;  a third argument: threads
#include <Eigen/Cholesky>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "fastkkt/ldlt_tiled.hpp"

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double p20(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 5];
}
}  // namespace

int main(int argc, char** argv) {
  using Mat = Eigen::MatrixXd;
  using RMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int n = argc > 1 ? std::atoi(argv[1]) : 569, m = argc > 2 ? std::atoi(argv[2]) : 1;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
  const int N = n + m;
  std::mt19937 gen(1);
  std::normal_distribution<double> normal;
  Mat M(n, n), A(m, n);
  for (int i = 0; i < n * n; ++i) M.data()[i] = normal(gen);
  for (int i = 0; i < m * n; ++i) A.data()[i] = normal(gen);
  const Mat Q = M * M.transpose() / n + Mat::Identity(n, n);
  RMat K = RMat::Zero(N, N);
  K.topLeftCorner(n, n) = Q;
  K.bottomLeftCorner(m, n) = A;
  K.topRightCorner(n, m) = A.transpose();
  K.bottomRightCorner(m, m) = -1e-8 * Mat::Identity(m, m);
  std::vector<double> rec(fastkkt::record_size(N));
  RMat F(N, N);
  Mat C(n, n);
  std::vector<double> t_tiled, t_llt;
  for (int r = 0; r < 40; ++r) {
    F = K;
    double t = now();
    const auto view = fastkkt::Factor<double>::view(rec.data(), N, F.data());
    if (!fastkkt::factor_natural_blocked<double>(view, n, 1.0, 1e3, threads, 0.0)) return 1;
    t_tiled.push_back(now() - t);
    C = Q;
    t = now();
    Eigen::LLT<Eigen::Ref<Mat>> llt(C);
    t_llt.push_back(now() - t);
    if (llt.info() != Eigen::Success) return 1;
  }
  const double a = p20(t_tiled), b = p20(t_llt);
  std::printf(
      "N = %d (n = %d, m = %d), %d thread(s): tiled LDLT %.2f ms (%.1f GFLOP/s), "
      "Eigen LLT of Q %.2f ms (%.1f GFLOP/s), tiled / LLT %.2f\n",
      N, n, m, threads, a * 1e3, 2.0 * N * N * N / 3 / a / 1e9, b * 1e3,
      2.0 * n * n * n / 3 / b / 1e9, a / b);
  return 0;
}
