// cpp/tests/test_kernels.cpp — tests of the core below the Python API.
//
// Twins. Several kernels compute the same factorization with different loop structures, and the
// library promises that they agree bit for bit (so results do not depend on the kernel, the
// grouping of the batch or the thread count). For random KKT matrices
//     K = [ sym(Q)  Aᵀ ]      Q = M Mᵀ/n + 0.1·I (positive definite), A dense, both in [−1, 1)
//         [ A       0  ]
// of both scalar types, this checks, comparing bit patterns:
//   * assemble (one problem) against assemble_lanes (W problems interleaved): K, max|Kᵢⱼ|, ‖K‖∞;
//   * assemble against assemble_wide (the vector-block assembly of large systems);
//   * factor_natural (one problem) against factor_natural_lanes (W at a time): L, D, flags;
//   * factor_natural_blocked (tiled) with one thread against two threads;
//   * factor_solve (one problem) against solve_natural_lanes and solve_packed_lanes (W at a time).
// A change of summation order in one twin and not the other fails here.
//
// Edge cases of the one-problem LDLᵀ (one named test each, as qdldl has): the identity, a
// single 1×1 system, a zero diagonal that needs a 2×2 Bunch–Kaufman pivot, dependent rows of A
// (singular), more constraints than variables (singular), Q negative definite (wrong inertia),
// Q indefinite but positive definite on null(A) (a strict minimum through pivoting); each
// checks the status, and where there is a solution, the residual of the solve against a known x;
// and Q of order 2^−70 … 2^40 against A of order 1: solved once equilibrated (equilibrate.hpp).
//
// The general KKT matrix [[sym(Q) + D₁, Cᵀ], [C, −D₂]] (test_general): the drivers against a
// known solution, and the same bits from the batch, one element at a time and a stored
// factorization.
//
// Prints one line per failed check and a closing "N passed, N failed"; exits 1 on any failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "fastkkt/kkt.hpp"

namespace {

using fastkkt::index_t;

int g_passed = 0, g_failed = 0;

void check(bool ok, const char* what, const char* detail = "") {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAILED: %s %s\n", what, detail);
  }
}

template <class T>
bool same_bits(const T* a, const T* b, index_t count) {
  return std::memcmp(a, b, static_cast<size_t>(count) * sizeof(T)) == 0;
}

// splitmix64 (Steele, Lea & Flood 2014): a portable, seedable stream; uniform in [−1, 1).
struct Rng {
  std::uint64_t s;
  double uniform() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-52 - 1.0;
  }
};

// One problem: Q (n×n, row-major, not symmetric: sym(Q) is what counts) and A (m×n).
template <class T>
struct Qa {
  index_t n, m;
  std::vector<T> Q, A;
  fastkkt::ElementQA<T> view() const { return {Q.data(), n, 1, A.data(), n, 1}; }
};

template <class T>
Qa<T> random_problem(index_t n, index_t m, std::uint64_t seed) {
  Rng rng{seed};
  Qa<T> p{n, m, std::vector<T>(static_cast<size_t>(n * n)),
          std::vector<T>(static_cast<size_t>(m * n))};
  std::vector<double> M(static_cast<size_t>(n * n));
  for (auto& x : M) x = rng.uniform();
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < n; ++j) {
      double s = 0;
      for (index_t k = 0; k < n; ++k) s += M[i * n + k] * M[j * n + k];
      // a slightly non-symmetric Q, so that the assemblies' ½Qᵢⱼ + ½Qⱼᵢ matters
      p.Q[i * n + j] =
          static_cast<T>(s / static_cast<double>(n) + (i == j ? 0.1 : 0.0) + 1e-3 * rng.uniform());
    }
  for (auto& x : p.A) x = static_cast<T>(rng.uniform());
  return p;
}

// assemble + factor_natural of one problem into a record; returns whether the natural order held.
template <class T>
bool natural_record(const Qa<T>& p, std::vector<T>& rec, T& kmax, T& knorm) {
  const index_t N = p.n + p.m;
  std::vector<T> sq(static_cast<size_t>(N * N)), u(static_cast<size_t>(5 * N));
  rec.assign(static_cast<size_t>(fastkkt::record_size(N)), T(0));
  fastkkt::Factor<T> F = fastkkt::Factor<T>::view(rec.data(), N, sq.data());
  fastkkt::assemble(p.view(), p.n, p.m, true, F.L, u.data(), kmax, knorm);
  const bool ok = fastkkt::factor_natural(F, p.n, kmax, knorm, u.data());
  if (ok) fastkkt::pack_factor(F.L, N, rec.data());
  return ok;
}

// The interleaved twins: W problems through assemble_lanes, factor_natural_lanes and
// solve_natural_lanes, each lane against the one-problem path.
template <class T>
void test_lanes(index_t n, index_t m, std::uint64_t seed) {
  constexpr int W = fastkkt::lanes<T>();
  const index_t N = n + m;
  char where[96];
  std::snprintf(where, sizeof where, "(%s, n=%lld, m=%lld, W=%d)",
                sizeof(T) == 8 ? "double" : "float", static_cast<long long>(n),
                static_cast<long long>(m), W);
  std::vector<Qa<T>> probs;
  fastkkt::ElementQA<T> e[W];
  for (int w = 0; w < W; ++w)
    probs.push_back(random_problem<T>(n, m, seed + static_cast<std::uint64_t>(w)));
  for (int w = 0; w < W; ++w) e[w] = probs[w].view();

  std::vector<T> C(static_cast<size_t>(N * N * W)), rowsum(static_cast<size_t>(N * W)),
      U(static_cast<size_t>(5 * N * W)), d(static_cast<size_t>(N * W));
  T kmax[W], knorm[W], chkQ[W], chkA[W], flags[W];
  bool ok[W];
  fastkkt::assemble_lanes<T, W>(e, n, m, C.data(), rowsum.data(), kmax, knorm, chkQ, chkA);

  // assembly: lane w of C's lower triangle against assemble's K
  for (int w = 0; w < W; ++w) {
    std::vector<T> K(static_cast<size_t>(N * N)), rs(static_cast<size_t>(N));
    T km = 0, kn = 0;
    fastkkt::assemble(probs[w].view(), n, m, true, K.data(), rs.data(), km, kn);
    bool same = same_bits(&km, &kmax[w], 1) && same_bits(&kn, &knorm[w], 1);
    for (index_t i = 0; i < N; ++i)
      for (index_t j = 0; j <= i; ++j) same &= same_bits(&K[i * N + j], &C[(i * N + j) * W + w], 1);
    check(same, "assemble_lanes == assemble", where);
  }

  fastkkt::factor_natural_lanes<T, W>(C.data(), d.data(), N, n, kmax, knorm, U.data(), ok, flags);
  std::vector<T> y(static_cast<size_t>(N * W)),
      Lp(static_cast<size_t>(fastkkt::packed_size(N) * W)), b(static_cast<size_t>(N)),
      ys(static_cast<size_t>(N));
  Rng rng{seed ^ 0xABCDEFULL};
  for (auto& v : y) v = static_cast<T>(rng.uniform());
  std::vector<T> y0 = y, y1 = y;
  fastkkt::solve_natural_lanes<T, W>(C.data(), d.data(), N, y0.data());
  for (index_t i = 1; i < N; ++i)
    for (index_t j = 0; j < i; ++j)
      for (int w = 0; w < W; ++w)
        Lp[static_cast<size_t>((fastkkt::packed_row(i) + j) * W + w)] = C[(i * N + j) * W + w];
  fastkkt::solve_packed_lanes<T, W>(Lp.data(), d.data(), N, y1.data());

  for (int w = 0; w < W; ++w) {
    std::vector<T> rec;
    T km = 0, kn = 0;
    const bool nat = natural_record(probs[w], rec, km, kn);
    check(nat && ok[w], "positive definite Q factors in the natural order", where);
    if (!nat || !ok[w]) continue;
    const fastkkt::ConstFactor<T> F = fastkkt::ConstFactor<T>::view(rec.data(), N);
    bool same = static_cast<T>(F.flags) == flags[w];
    for (index_t i = 0; i < N; ++i) {
      same &= same_bits(&F.d[i], &d[i * W + w], 1);
      for (index_t j = 0; j < i; ++j)
        same &= same_bits(&F.L[fastkkt::packed_row(i) + j], &C[(i * N + j) * W + w], 1);
    }
    check(same, "factor_natural_lanes == factor_natural (L, D, flags)", where);

    for (index_t i = 0; i < N; ++i) b[i] = y[i * W + w];
    fastkkt::factor_solve(F, b.data(), ys.data());
    bool s0 = true, s1 = true;
    for (index_t i = 0; i < N; ++i) {
      s0 &= same_bits(&b[i], &y0[i * W + w], 1);
      s1 &= same_bits(&b[i], &y1[i * W + w], 1);
    }
    check(s0, "solve_natural_lanes == factor_solve", where);
    check(s1, "solve_packed_lanes == factor_solve", where);
  }
}

// The tiled factorization: the same bits for one and for two threads; and the vector-block
// assembly of large systems against the row assembly.
template <class T>
void test_tiled(index_t n, index_t m, std::uint64_t seed) {
  const index_t N = n + m;
  char where[96];
  std::snprintf(where, sizeof where, "(%s, n=%lld, m=%lld)", sizeof(T) == 8 ? "double" : "float",
                static_cast<long long>(n), static_cast<long long>(m));
  const Qa<T> p = random_problem<T>(n, m, seed);
  std::vector<T> K1(static_cast<size_t>(N * N)), K2(static_cast<size_t>(N * N)),
      rs(static_cast<size_t>(N));
  T km1 = 0, kn1 = 0, km2 = 0, kn2 = 0;
  fastkkt::assemble_wide(p.view(), n, m, true, K1.data(), rs.data(), km1, kn1);
  for (index_t i = 0; i < N; ++i)
    for (index_t j = 0; j <= i; ++j) {
      // sym(Q)ᵢⱼ = ½Qᵢⱼ + ½Qⱼᵢ, and A and 0 below: the exact entries
      const T want = i < n ? T(0.5) * p.Q[i * n + j] + T(0.5) * p.Q[j * n + i]
                           : (j < n ? p.A[(i - n) * n + j] : T(0));
      if (!same_bits(&want, &K1[i * N + j], 1)) {
        check(false, "assemble_wide entries are ½Qᵢⱼ + ½Qⱼᵢ, Aₖⱼ and 0", where);
        i = N;
        break;
      }
    }
  T kmw = 0, knw = 0;  // a second assembly gives the same bits
  fastkkt::assemble_wide(p.view(), n, m, true, K2.data(), rs.data(), kmw, knw);
  check(same_bits(&kmw, &km1, 1) && same_bits(&knw, &kn1, 1), "assemble_wide is deterministic",
        where);
  K2 = K1;
  km2 = km1;
  kn2 = kn1;
  std::vector<T> r1(static_cast<size_t>(fastkkt::record_size(N))), r2 = r1;
  fastkkt::Factor<T> F1 = fastkkt::Factor<T>::view(r1.data(), N, K1.data());
  fastkkt::Factor<T> F2 = fastkkt::Factor<T>::view(r2.data(), N, K2.data());
  const bool ok1 = fastkkt::factor_natural_blocked(F1, n, km1, kn1, 1);
  const bool ok2 = fastkkt::factor_natural_blocked(F2, n, km2, kn2, 2);
  check(ok1 && ok2, "tiled factorization of a positive definite Q holds", where);
  bool same = true;
  for (index_t i = 0; i < N; ++i) {
    same &= same_bits(&F1.d[i], &F2.d[i], 1);
    same &= same_bits(&K1[i * N], &K2[i * N], i);
  }
  check(same, "factor_natural_blocked: 1 thread == 2 threads", where);
}

// --- edge cases of the one-problem path (assemble, natural order, Bunch–Kaufman fallback) ---

// Factors the KKT matrix of (Q, A) as factor_element does and solves K x = K x_true; returns the
// status and the max error of x.
template <class T>
fastkkt::Status factor_and_solve(const std::vector<T>& Q, const std::vector<T>& A, index_t n,
                                 index_t m, double& err) {
  const index_t N = n + m;
  fastkkt::Workspace<T> ws(N, true);
  std::vector<T> rec(static_cast<size_t>(fastkkt::record_size(N)));
  const fastkkt::ElementQA<T> e{Q.data(), n, 1, A.data(), n, 1};
  const fastkkt::Status st = fastkkt::factor_element(e, n, m, true, rec.data(), ws);
  err = 0;
  if (st != fastkkt::kSolved) return st;
  // x_true = (1, 2, …, N); b = K x_true in double
  std::vector<T> q(static_cast<size_t>(n)), c(static_cast<size_t>(m)), z(static_cast<size_t>(n)),
      lam(static_cast<size_t>(m));
  for (index_t i = 0; i < n; ++i) {
    double s = 0;
    for (index_t j = 0; j < n; ++j)
      s += 0.5 * (double(Q[i * n + j]) + double(Q[j * n + i])) * double(j + 1);
    for (index_t k = 0; k < m; ++k) s += double(A[k * n + i]) * double(n + k + 1);
    q[i] = static_cast<T>(-s);
  }
  for (index_t k = 0; k < m; ++k) {
    double s = 0;
    for (index_t j = 0; j < n; ++j) s += double(A[k * n + j]) * double(j + 1);
    c[k] = static_cast<T>(s);
  }
  fastkkt::solve_element(rec.data(), e, n, m, q.data(), 1, c.data(), 1, true, z.data(), lam.data(),
                         ws);
  for (index_t i = 0; i < n; ++i) err = std::max(err, std::abs(double(z[i]) - double(i + 1)));
  for (index_t k = 0; k < m; ++k) err = std::max(err, std::abs(double(lam[k]) - double(n + k + 1)));
  return st;
}

template <class T>
void test_edge_cases() {
  const double tol = sizeof(T) == 8 ? 1e-10 : 1e-3;
  const char* ty = sizeof(T) == 8 ? "(double)" : "(float)";
  double err = 0;
  {  // identity, unconstrained
    std::vector<T> Q(16, T(0)), A;
    for (int i = 0; i < 4; ++i) Q[i * 4 + i] = 1;
    check(factor_and_solve(Q, A, 4, 0, err) == fastkkt::kSolved && err < tol, "identity", ty);
  }
  {  // a single 1×1 system
    std::vector<T> Q{T(3)}, A;
    check(factor_and_solve(Q, A, 1, 0, err) == fastkkt::kSolved && err < tol, "1x1", ty);
  }
  {  // Q = 0 with one constraint on one variable: K = [0 1; 1 0], a 2×2 pivot, a strict minimum
    std::vector<T> Q{T(0)}, A{T(1)};
    check(factor_and_solve(Q, A, 1, 1, err) == fastkkt::kSolved && err < tol,
          "zero diagonal (2x2 pivot)", ty);
  }
  {  // dependent rows of A: singular
    std::vector<T> Q(9, T(0)), A{T(1), T(2), T(3), T(2), T(4), T(6)};
    for (int i = 0; i < 3; ++i) Q[i * 3 + i] = 2;
    check(factor_and_solve(Q, A, 3, 2, err) == fastkkt::kSingular, "dependent rows of A", ty);
  }
  {  // more constraints than variables: singular
    std::vector<T> Q{T(1)}, A{T(1), T(2)};
    check(factor_and_solve(Q, A, 1, 2, err) == fastkkt::kSingular, "m > n", ty);
  }
  {  // Q negative definite, unconstrained: not a minimum
    std::vector<T> Q{T(-1), T(0), T(0), T(-2)}, A;
    check(factor_and_solve(Q, A, 2, 0, err) == fastkkt::kNotMinimum, "Q negative definite", ty);
  }
  {  // Q = diag(1, −1) indefinite, A = [0 1] fixes the negative direction: a strict minimum
    std::vector<T> Q{T(1), T(0), T(0), T(-1)}, A{T(0), T(1)};
    check(factor_and_solve(Q, A, 2, 1, err) == fastkkt::kSolved && err < tol,
          "Q indefinite, positive definite on null(A)", ty);
  }
  {  // Q = diag(1, −1), A = [1 0]: negative on null(A)
    std::vector<T> Q{T(1), T(0), T(0), T(-1)}, A{T(1), T(0)};
    check(factor_and_solve(Q, A, 2, 1, err) == fastkkt::kNotMinimum, "Q negative on null(A)", ty);
  }
  for (const int e : {-70, -60, 30, 40}) {  // Q·2^e against A of order 1 (equilibrate.hpp)
    // (the status only: with x = (1, 2, …) the rounding of q or c decides z or λ at this gap;
    // tests/test_scaling.py checks solutions of consistently scaled problems)
    std::vector<T> Q(9, T(0)), A{T(1), T(2), T(3)};
    for (int i = 0; i < 3; ++i) Q[i * 3 + i] = std::ldexp(T(2 + i), e);
    check(factor_and_solve(Q, A, 3, 1, err) == fastkkt::kSolved,
          "units of Q and A far apart: solved", ty);
  }
  {  // non-finite Q is reported, not factored
    std::vector<T> Q{std::numeric_limits<T>::quiet_NaN()}, A;
    check(factor_and_solve(Q, A, 1, 0, err) == fastkkt::kNonFiniteQ, "NaN in Q", ty);
  }
}

// --- the general KKT matrix [[sym(Q) + D₁, Cᵀ], [C, −D₂]] through the batch drivers ---

// For B elements with their own Q, C, D₁ > 0, D₂ > 0 (a quasidefinite K: nonsingular for any C,
// also with more rows of C than columns), solves K x = b with b = K x_true formed in double from
// the blocks (independently of the library's assembly and residual): checks the status, the
// error of x, that the batch (interleaved for small N, tiled for large) gives bitwise what each
// element alone gives (one-problem path), and that factorize_batch + solve_factored_batch give
// the same bits again. b is passed as given (negate_q = false).
template <class T>
void test_general(index_t n, index_t m, index_t B, std::uint64_t seed) {
  const index_t N = n + m;
  char where[96];
  std::snprintf(where, sizeof where, "(%s, n=%lld, m=%lld, B=%lld)",
                sizeof(T) == 8 ? "double" : "float", static_cast<long long>(n),
                static_cast<long long>(m), static_cast<long long>(B));
  Rng rng{seed};
  std::vector<T> Q, C, D1, D2, rhs_top, rhs_bot;
  std::vector<double> xt;
  for (index_t b = 0; b < B; ++b) {
    const Qa<T> p = random_problem<T>(n, m, seed + static_cast<std::uint64_t>(b));
    Q.insert(Q.end(), p.Q.begin(), p.Q.end());
    C.insert(C.end(), p.A.begin(), p.A.end());
    for (index_t i = 0; i < n; ++i) D1.push_back(static_cast<T>(0.5 + 0.5 * rng.uniform()));
    for (index_t k = 0; k < m; ++k) D2.push_back(static_cast<T>(0.5 + 0.5 * rng.uniform()));
    for (index_t i = 0; i < N; ++i) xt.push_back(rng.uniform());
  }
  for (index_t b = 0; b < B; ++b) {  // b = K x_true in double
    const T* Qb = &Q[b * n * n];
    const T* Cb = &C[b * m * n];
    const double* x = &xt[b * N];
    for (index_t i = 0; i < n; ++i) {
      double s = double(D1[b * n + i]) * x[i];
      for (index_t j = 0; j < n; ++j)
        s += 0.5 * (double(Qb[i * n + j]) + double(Qb[j * n + i])) * x[j];
      for (index_t k = 0; k < m; ++k) s += double(Cb[k * n + i]) * x[n + k];
      rhs_top.push_back(static_cast<T>(s));
    }
    for (index_t k = 0; k < m; ++k) {
      double s = -double(D2[b * m + k]) * x[n + k];
      for (index_t j = 0; j < n; ++j) s += double(Cb[k * n + j]) * x[j];
      rhs_bot.push_back(static_cast<T>(s));
    }
  }
  const auto problem = [&](index_t b0, index_t cnt) {
    fastkkt::Problem<T> P;
    P.batch.ndim = 1;
    P.batch.shape[0] = cnt;
    P.n = n;
    P.m = m;
    const auto view = [&](const std::vector<T>& v, index_t per, index_t s0, index_t s1) {
      fastkkt::Strided<T> s;
      s.data = v.data() + b0 * per;
      s.bstride[0] = per;
      s.s0 = s0;
      s.s1 = s1;
      return s;
    };
    P.Q = view(Q, n * n, n, 1);
    P.A = view(C, m * n, n, 1);
    P.D1 = view(D1, n, 1, 0);
    P.D2 = view(D2, m, 1, 0);
    P.q = view(rhs_top, n, 1, 0);
    P.c = view(rhs_bot, m, 1, 0);
    P.negate_q = false;
    return P;
  };
  std::vector<T> z(static_cast<size_t>(B * n)), lam(static_cast<size_t>(B * m)), z1 = z, lam1 = lam,
                                                                                 z2 = z, lam2 = lam;
  std::vector<std::int32_t> info(static_cast<size_t>(B)), info1 = info, info2 = info;
  fastkkt::WorkspacePool<T> pool;  // kept across the calls below
  fastkkt::solve_batch(problem(0, B), z.data(), lam.data(), info.data(), 0, B, 2, {}, &pool);
  for (index_t b = 0; b < B; ++b)
    fastkkt::solve_batch(problem(b, 1), z1.data() + b * n, lam1.data() + b * m, info1.data() + b, 0,
                         1, 1, {}, &pool);
  std::vector<T> rec(static_cast<size_t>(B * fastkkt::record_size(N)));
  std::vector<std::int32_t> finfo(static_cast<size_t>(B));
  const auto P = problem(0, B);
  fastkkt::factorize_batch(P, rec.data(), finfo.data(), 0, B, 1, &pool);
  fastkkt::Strided<T> R;
  R.data = rec.data();
  R.bstride[0] = fastkkt::record_size(N);
  R.s0 = 1;
  fastkkt::Strided<std::int32_t> I;
  I.data = finfo.data();
  I.bstride[0] = 1;
  fastkkt::solve_factored_batch(P, R, I, z2.data(), lam2.data(), info2.data(), 0, B, 1, &pool);
  bool solved = true;
  double err = 0;
  for (index_t b = 0; b < B; ++b) {
    solved &= info[b] == fastkkt::kSolved;
    for (index_t i = 0; i < n; ++i)
      err = std::max(err, std::abs(double(z[b * n + i]) - xt[b * N + i]));
    for (index_t k = 0; k < m; ++k)
      err = std::max(err, std::abs(double(lam[b * m + k]) - xt[b * N + n + k]));
  }
  check(solved, "general K: solved", where);
  check(err < (sizeof(T) == 8 ? 1e-9 : 1e-2), "general K: x", where);
  check(same_bits(z.data(), z1.data(), B * n) && same_bits(lam.data(), lam1.data(), B * m),
        "general K: batch == one element at a time", where);
  check(same_bits(z.data(), z2.data(), B * n) && same_bits(lam.data(), lam2.data(), B * m),
        "general K: solve == factorize + solve", where);
}

template <class T>
void run_all() {
  const index_t sizes[][2] = {{1, 0},  {3, 1},   {8, 2},    {16, 4},  {29, 7},
                              {37, 8}, {64, 16}, {100, 39}, {120, 40}};
  std::uint64_t seed = 1;
  for (const auto& s : sizes) test_lanes<T>(s[0], s[1], seed += 100);
  const index_t big[][2] = {{150, 30}, {200, 60}, {300, 100}};
  for (const auto& s : big) test_tiled<T>(s[0], s[1], seed += 100);
  test_edge_cases<T>();
  test_general<T>(12, 3, 19, seed += 100);
  test_general<T>(4, 9, 11, seed += 100);  // more rows of C than columns: D₂ keeps K regular
  test_general<T>(170, 30, 2, seed += 100);
}

}  // namespace

int main() {
#if defined(__AVX512F__)
  if (!__builtin_cpu_supports("avx512f")) {
    std::printf("skipped: this CPU has no AVX-512 (the test was compiled for it)\n");
    return 0;
  }
#elif defined(__AVX2__)
  if (!__builtin_cpu_supports("avx2")) {
    std::printf("skipped: this CPU has no AVX2 (the test was compiled for it)\n");
    return 0;
  }
#endif
  run_all<double>();
  run_all<float>();
  std::printf("%s: %d passed, %d failed\n", FASTKKT_VARIANT, g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
