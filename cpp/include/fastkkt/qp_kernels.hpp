// fastkkt/qp_kernels.hpp — plain dense kernels for the QP solver's small matrices.
//
// The interior-point iterations of qp.hpp work on many small dense matrices (n ≈ 10–60 for most
// batched layers). Eigen's dynamic-size expressions (selfadjoint and general matrix–vector
// products, the rank-p update) pay a dispatch, blocking and packing cost per call that dominates
// at these sizes (measured on mpc, n = 12: ~60% of the solve, with the factorization then done
// by Eigen too). These kernels are the textbook loops on raw column-major storage with a leading
// dimension (the factorization and its solves are the engine's: qp_quasidefinite.hpp):
//
//   symv_lower      y ← y + α·H x with only H's lower triangle stored,
//   gemv_n/gemv_t   y ← y + α·A x / y ← y + α·Aᵀx,
//   syrk_lower_diag H ← H + G diag(w) Gᵀ on H's lower triangle (G n×p: the rank-p update GᵀWG
//                   of the QP, stored as its transpose).
//
// Every sum is in a fixed order that depends only on the sizes (dot products in four partial
// sums, combined pairwise), so results are bitwise reproducible for any thread count. The
// callers keep Eigen's blocked kernels for large matrices, where they are faster (the switch
// depends only on the problem's sizes). Nothing here allocates or throws.
#pragma once

#include <cmath>
#include <cstdint>

namespace fastkkt {
namespace qp {
namespace kern {

using idx = std::int64_t;

template <class T>
inline T dot(const T* a, const T* b, idx n) {
  T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  idx i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

// y += alpha·H x, H symmetric with its lower triangle stored.
template <class T>
inline void symv_lower(idx n, const T* H, idx ld, const T* x, T* y, T alpha) {
  for (idx j = 0; j < n; ++j) {
    const T* cj = H + j * ld;
    const T axj = alpha * x[j];
    for (idx i = j + 1; i < n; ++i) y[i] += cj[i] * axj;
    y[j] += alpha * (cj[j] * x[j] + dot(cj + j + 1, x + j + 1, n - j - 1));
  }
}

// y += alpha·A x, A rows×cols.
template <class T>
inline void gemv_n(idx rows, idx cols, const T* A, idx ld, const T* x, T* y, T alpha) {
  for (idx c = 0; c < cols; ++c) {
    const T* ac = A + c * ld;
    const T axc = alpha * x[c];
    for (idx r = 0; r < rows; ++r) y[r] += ac[r] * axc;
  }
}

// y += alpha·Aᵀx, A rows×cols (y has cols entries).
template <class T>
inline void gemv_t(idx rows, idx cols, const T* A, idx ld, const T* x, T* y, T alpha) {
  for (idx c = 0; c < cols; ++c) y[c] += alpha * dot(A + c * ld, x, rows);
}

// H += G diag(w) Gᵀ on the lower triangle, G n×p (column r: row r of the QP's G); four
// columns of G per pass over a column of H.
template <class T>
inline void syrk_lower_diag(idx n, idx p, const T* G, idx ldg, const T* w, T* H, idx ldh) {
  for (idx j = 0; j < n; ++j) {
    T* hj = H + j * ldh;
    idx r = 0;
    for (; r + 4 <= p; r += 4) {
      const T* g0 = G + r * ldg;
      const T* g1 = g0 + ldg;
      const T* g2 = g1 + ldg;
      const T* g3 = g2 + ldg;
      const T c0 = w[r] * g0[j], c1 = w[r + 1] * g1[j], c2 = w[r + 2] * g2[j],
              c3 = w[r + 3] * g3[j];
      for (idx i = j; i < n; ++i) hj[i] += (g0[i] * c0 + g1[i] * c1) + (g2[i] * c2 + g3[i] * c3);
    }
    for (; r < p; ++r) {
      const T* gr = G + r * ldg;
      const T c = w[r] * gr[j];
      for (idx i = j; i < n; ++i) hj[i] += gr[i] * c;
    }
  }
}

}  // namespace kern
}  // namespace qp
}  // namespace fastkkt
