// fastkkt/ldlt_tiled.hpp — the natural-order LDLᵀ of one large KKT matrix, tile by tile.
//
// For N ≥ kBlockedFrom the row-oriented loops of ldlt_lanes.hpp run out of cache; the same
// factorization is computed as a right-looking tiled Cholesky with signs,
//     K = G S Gᵀ,   G lower triangular,   S = diag(I, −I)   (n and m entries),
// i.e. H = sym(Q) + D₁ = L₁L₁ᵀ, the rows of C become Wᵀ = C L₁⁻ᵀ and D₂ + C H⁻¹ Cᵀ = L₂L₂ᵀ; it is
// the LDLᵀ of factor_natural with L = G·diag(1/gᵢᵢ) and D = S·diag(gᵢᵢ²), written into the same
// record (record.hpp), with the acceptance test and the growth of factor_natural. The tile
// products are Eigen's; the triangular solves are SIMD across rows (solve_lower_transpose_right).
// The tiles of one step may be shared among threads with the same bits for any thread count.
// Nothing here allocates (beyond Eigen's fixed blocks), throws, or knows about Python.
#pragma once

// clang-format off
#include "fastkkt/interleave.hpp"  // first: it includes <immintrin.h> before Eigen does (see there)
// clang-format on
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>

#include "fastkkt/ldlt_lanes.hpp"
#include "fastkkt/threads.hpp"

namespace fastkkt {

// Tile size of factor_natural_blocked.
#ifndef FASTKKT_TILE
#define FASTKKT_TILE 64
#endif
constexpr index_t kTile = FASTKKT_TILE;

// X ← X G⁻ᵀ for an r×c block X (row stride ldx) and a lower triangular c×c block G (row stride
// ldg), c ≤ kTile: each row x of X is replaced by the solution of G xᵀ = xᵀ, by forward
// substitution,
//     xⱼ ← (xⱼ − Σ_{l<j} Gⱼₗ xₗ) / Gⱼⱼ,   the sum over l = 0, 1, … in order.
// W = lanes<T>() rows at a time, copied into the interleaved layout (row w of the group in lane
// w) so that each step is one SIMD operation across W rows with Gⱼₗ broadcast; four j at a time
// share each load of xₗ. (Eigen's triangular solve did this part of the tiled Cholesky in
// scalar loops and took as long as all the tile products, perf at 32×512×128.)
template <class T>
void solve_lower_transpose_right(const T* G, index_t ldg, T* X, index_t ldx, index_t r, index_t c) {
  constexpr int W = lanes<T>();
  T buf[kTile * W];
  const T* src[W];
  for (index_t r0 = 0; r0 < r; r0 += W) {
    const index_t rows = std::min<index_t>(W, r - r0);
    for (int w = 0; w < W; ++w) src[w] = X + (r0 + std::min<index_t>(w, rows - 1)) * ldx;
    interleave_rows<T, W>(src, 1, c, buf);
    index_t j = 0;
    for (; j + 4 <= c; j += 4) {
      const T *G0 = G + j * ldg, *G1 = G0 + ldg, *G2 = G1 + ldg, *G3 = G2 + ldg;
      T s0[W] = {}, s1[W] = {}, s2[W] = {}, s3[W] = {};
      for (index_t l = 0; l < j; ++l) {
        const T* xl = buf + l * W;
#pragma omp simd
        for (int w = 0; w < W; ++w) {
          s0[w] = fmadd(G0[l], xl[w], s0[w]);
          s1[w] = fmadd(G1[l], xl[w], s1[w]);
          s2[w] = fmadd(G2[l], xl[w], s2[w]);
          s3[w] = fmadd(G3[l], xl[w], s3[w]);
        }
      }
      T* x = buf + j * W;
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        const T a = (x[w] - s0[w]) / G0[j];
        const T b = (x[W + w] - fmadd(G1[j], a, s1[w])) / G1[j + 1];
        const T c2 = (x[2 * W + w] - fmadd(G2[j + 1], b, fmadd(G2[j], a, s2[w]))) / G2[j + 2];
        const T d =
            (x[3 * W + w] - fmadd(G3[j + 2], c2, fmadd(G3[j + 1], b, fmadd(G3[j], a, s3[w])))) /
            G3[j + 3];
        x[w] = a;
        x[W + w] = b;
        x[2 * W + w] = c2;
        x[3 * W + w] = d;
      }
    }
    for (; j < c; ++j) {
      const T* Gj = G + j * ldg;
      T s[W] = {};
      for (index_t l = 0; l < j; ++l)
#pragma omp simd
        for (int w = 0; w < W; ++w) s[w] = fmadd(Gj[l], buf[l * W + w], s[w]);
#pragma omp simd
      for (int w = 0; w < W; ++w) buf[j * W + w] = (buf[j * W + w] - s[w]) / Gj[j];
    }
    // back to rows (lanes past the end repeat row r − 1 and write the same values into it)
    T* dst[W];
    for (int w = 0; w < W; ++w) dst[w] = X + (r0 + std::min<index_t>(w, rows - 1)) * ldx;
    deinterleave_row<T, W>(buf, c, dst);
  }
}

// The same natural-order factorization computed tile by tile with Eigen's blocked, vectorized
// kernels, for large N where the row-oriented loops above run out of cache. The result is
//     K = G S Gᵀ,   G lower triangular,   S = diag(I, −I)  (n and m entries),
// i.e. Q = L₁L₁ᵀ, the rows of A become Wᵀ = A L₁⁻ᵀ and A Q⁻¹ Aᵀ = L₂L₂ᵀ; it is the LDLᵀ of
// factor_natural with L = G·diag(1/gᵢᵢ) and D = S·diag(gᵢᵢ²). The acceptance test and the
// growth are those of factor_natural.
// K is cut into tiles of kTile rows and columns, with a tile boundary at n so that every tile t
// has one sign sₜ. A right-looking tiled Cholesky with signs, for k = 0, 1, …:
//     G_kk = chol(s_k · K_kk)                       (Eigen's LLT on the tile)
//     G_ik = s_k · K_ik G_kk⁻ᵀ            i > k      (triangular solves, one per tile)
//     K_ij ← K_ij − s_k · G_ik G_jkᵀ      k < j ≤ i  (matrix products, one per tile row)
// The solves of one step, and the tile rows of one step's products, are independent and are
// shared among `nthreads` threads. Every tile receives the same operations in the same order
// (k ascending, tiles and tile rows of a fixed size) whatever the number of threads, so the
// factorization is bitwise the same for any thread count. Q positive definite makes every s_k·K_kk positive definite; when
// one is not, the natural order gives up (returns false) as factor_natural does; `pivot_tol` as
// in factor_natural_lanes.
template <class T>
bool factor_natural_blocked(Factor<T> F, index_t n, T kmax, T knorm, int nthreads = 1,
                            T pivot_tol = T(-1)) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const index_t N = F.N;
  Eigen::Map<Mat> K(F.L, N, N);
  const index_t nq = (n + kTile - 1) / kTile;           // tiles of the Q part
  const index_t nt = nq + (N - n + kTile - 1) / kTile;  // all tiles
  const auto start = [&](index_t t) { return t < nq ? t * kTile : n + (t - nq) * kTile; };
  const auto size = [&](index_t t) {
    return std::min(t < nq ? n : N, start(t) + kTile) - start(t);
  };
  const auto tile = [&](index_t i, index_t j) {
    return K.block(start(i), start(j), size(i), size(j));
  };
  bool failed = false;
  // (a team of one when nthreads = 1: no OpenMP region, see threads.hpp)
  parallel_region(nthreads, [&] {
    for (index_t k = 0; k < nt; ++k) {
      const bool neg = k >= nq;  // s_k = −1
#pragma omp single
      {
        auto Gkk = tile(k, k);
        if (neg) Gkk.template triangularView<Eigen::Lower>() *= T(-1);
        Eigen::LLT<Eigen::Ref<Mat>> llt(Gkk);  // in place on the lower triangle
        failed = llt.info() != Eigen::Success;
      }  // (barrier: every thread sees `failed` and the finished G_kk)
      if (failed) break;
#pragma omp for schedule(dynamic, 1)
      for (index_t i = k + 1; i < nt; ++i) {
        auto Gik = tile(i, k);
        solve_lower_transpose_right(F.L + start(k) * N + start(k), N, F.L + start(i) * N + start(k),
                                    N, size(i), size(k));
        if (neg) Gik *= T(-1);
      }
      // the trailing tiles (i, j), k < j ≤ i < nt, a tile row at a time (longest first): tiles
      // k+1 … i−1 of row i in one product, so that Eigen packs G_ik once per row rather than once
      // per tile (3–6% of the whole solve at n + m ≥ 640), and the diagonal tile by rankUpdate
#pragma omp for schedule(dynamic, 1)
      for (index_t i = nt - 1; i > k; --i) {
        if (i > k + 1) {
          const index_t c0 = start(k + 1), w = start(i) - c0;
          auto Ci = K.block(start(i), c0, size(i), w);
          auto Gj = K.block(c0, start(k), w, size(k));
          if (neg)
            Ci.noalias() += tile(i, k) * Gj.transpose();
          else
            Ci.noalias() -= tile(i, k) * Gj.transpose();
        }
        tile(i, i).template selfadjointView<Eigen::Lower>().rankUpdate(tile(i, k),
                                                                       neg ? T(1) : T(-1));
      }
    }
  });
  if (failed) return false;
  const T tol = pivot_tol >= 0 ? pivot_tol : static_cast<T>(N) * eps<T>();  // factor_natural_lanes
  T growth = 0, cancel = 0;
  for (index_t i = 0; i < N; ++i) {
    T* Li = F.L + i * N;
    // Σₖ Lᵢₖ² |dₖ| in the unit-diagonal form, = Σⱼ gᵢⱼ²: eight partial sums (a fixed order,
    // whatever the alignment), where one running sum waited on every addition (8% of the whole
    // solve at n + m = 640)
    T part[8] = {};
    index_t j = 0;
    for (; j + 8 <= i; j += 8)
#pragma omp simd
      for (int t = 0; t < 8; ++t) part[t] += Li[j + t] * Li[j + t];
    T cancelled = 0;
    for (int t = 0; t < 8; ++t) cancelled += part[t];
    for (; j < i; ++j) cancelled += Li[j] * Li[j];
    const T lii = Li[i];
    const T di = (i < n) ? lii * lii : -(lii * lii);
    if (!(std::abs(di) > tol * std::max(kmax, cancelled))) return false;
    F.d[i] = di;
    F.e[i] = T(1) / lii;  // scratch until the scaling below
    F.perm[i] = static_cast<T>(i);
    growth = std::max(growth, cancelled);
    cancel = std::max(cancel, cancelled / std::abs(di));
  }
  if (!(growth <= pivot_growth<T>() * knorm)) return false;
  // unit lower L: scale column j by 1/ℓⱼⱼ
  for (index_t i = 1; i < N; ++i) {
    T* Li = F.L + i * N;
    for (index_t j = 0; j < i; ++j) Li[j] *= F.e[j];
  }
  for (index_t i = 0; i < N; ++i) F.e[i] = 0;
  F.scale[0] = F.scale[1] = 0;
  *F.knorm = knorm;
  *F.flags = natural_flags(growth, cancel, knorm);
  return true;
}

}  // namespace fastkkt
