// fastkkt/ldlt_lanes.hpp — the natural-order LDLᵀ of W KKT matrices at once, and its solves.
//
// In the natural order (no pivoting) the (1,1) block H = sym(Q) + D₁ comes first, then the Schur
// complement −(D₂ + C H⁻¹ Cᵀ). When H is positive definite this is Cholesky on the first block
// and Cholesky of a negative definite matrix on the second: the pivots have the signs
// (+…+, −…−), which by Sylvester's law of inertia certify the inertia (n, m, 0) of a strict
// minimum. The factorization gives up as soon as a pivot has the wrong sign, is numerically zero
// (|dᵢ| at most N·ε times what was cancelled to form it) or the growth exceeds pivot_growth();
// the caller then falls back to Bunch–Kaufman pivoting (ldlt.hpp). A factorization that holds
// but grew or cancelled much asks for iterative refinement (natural_flags: kRefineGrowth,
// kRefineCancellation).
//
// W problems are stored interleaved ("compact" layout, interleave.hpp): entry (i, j) of problem
// w at C[(i·N + j)·W + w], so that every step of the elimination is one SIMD operation across
// the W problems, branch-free; W = 1 is the ordinary row-major layout of one problem, and
// factor_natural (ldlt.hpp) is this kernel with W = 1. Per problem the operations and their
// order are the same for every W (explicit fmadd, sums over k = 0, 1, … in order), so a lane
// gets bitwise what the one-problem path gives. With W = 1 (one problem: factor_natural, the QP
// solver's systems) the sums cannot be vectorized along k without changing their order; instead
// the rows are taken in groups of lanes<T>(), whose u-values for the columns before the group
// are formed SIMD across the rows (natural_rows_u_simd), each row with its own operations in
// its own order, so the bits are again those of the row-by-row path. The triangular solves
// (unit_lower_solve, unit_lower_transpose_solve) serve W interleaved right-hand sides with W factorizations, or
// many right-hand sides with one shared factorization, with the operations of factor_solve.
// Nothing here allocates, throws, or knows about Python.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "fastkkt/common.hpp"
#include "fastkkt/interleave.hpp"
#include "fastkkt/record.hpp"

namespace fastkkt {

// Growth above which a natural-order factorization is followed by iterative refinement: with
// g = maxᵢ Σₖ |Lᵢₖ|² |dₖ| / ‖K‖∞ the computed factors satisfy L D Lᵀ = K + ΔK with
// ‖ΔK‖∞ ≲ N·ε·g·‖K‖∞ (Higham, Accuracy and Stability of Numerical Algorithms, §10.4 / §11.1).
// The bound is pessimistic: on the benchmark problems (g up to a few tens) the unrefined backward
// error stays within a few ε, while ill-conditioned Q (g ≳ 10⁴) needs refinement; 64 separates
// the two (measured: refinement would cost ~25% on the benchmark problems and gain nothing).
constexpr double kRefineGrowth = 64.0;

// Refinement also follows when some pivot is formed with heavy cancellation, Σₖ |uₖ Lᵢₖ| above
// this multiple of |dᵢ| (nearly dependent rows of A, ill-conditioned Q): the relative error of
// such a pivot is that multiple of ε, though the growth stays small.
constexpr double kRefineCancellation = 1e3;

// Growth beyond which the natural order is abandoned for Bunch–Kaufman pivoting: at g ≳ 1/√ε
// refinement with an unpivoted factor no longer converges reliably (measured: cond(Q) = 1e12).
template <class T>
T pivot_growth() {
  return T(1) / std::sqrt(std::numeric_limits<T>::epsilon());
}

template <class T>
T natural_flags(T growth, T cancel, T knorm);

// uⱼ = Kᵢⱼ − Σ_{k<j} uₖ Lⱼₖ (k in order) for one column j of `rows` rows (Ci[r], into Ur[r]):
// the tail of natural_row_u / natural_row_u4, and the columns left between the row pairs of a
// four-row pass.
template <class T, int W>
void natural_column_u(const T* C, index_t N, const T* const* Ci, T* const* Ur, int rows,
                      index_t j) {
  const T* Cj = C + j * N * W;
  for (int r = 0; r < rows; ++r) {
    const T* U = Ur[r];
    T a[W] = {};
    for (index_t k = 0; k < j; ++k)
#pragma omp simd
      for (int w = 0; w < W; ++w) a[w] = fmadd(U[k * W + w], Cj[k * W + w], a[w]);
#pragma omp simd
    for (int w = 0; w < W; ++w) Ur[r][j * W + w] = Ci[r][j * W + w] - a[w];
  }
}

// Whether the interleaved factorization takes four rows per pass: with 32 vector registers.
#if defined(__AVX512F__)
constexpr bool kFourRows = true;
#else
constexpr bool kFourRows = false;
#endif

// The small triangle k ∈ [j, j+3) of a four-column block for one row (Ci, into Ur): with sₜ
// holding Σ_{k<j} uₖ L_{j+t,k} for t = 0 … 3, each uⱼ₊ₜ = Kᵢ,ⱼ₊ₜ − sₜ is formed and added into
// the sums of the columns after it, so every sum stays in the order k = 0, 1, ….
template <class T, int W>
void block_triangle(const T* Ci, const T* C1, const T* C2, const T* C3, index_t j, T* s0, T* s1,
                    T* s2, T* s3, T* Ur) {
#pragma omp simd
  for (int w = 0; w < W; ++w) {
    const T u0 = Ci[j * W + w] - s0[w];
    s1[w] = fmadd(u0, C1[j * W + w], s1[w]);
    s2[w] = fmadd(u0, C2[j * W + w], s2[w]);
    s3[w] = fmadd(u0, C3[j * W + w], s3[w]);
    const T u1 = Ci[(j + 1) * W + w] - s1[w];
    s2[w] = fmadd(u1, C2[(j + 1) * W + w], s2[w]);
    s3[w] = fmadd(u1, C3[(j + 1) * W + w], s3[w]);
    const T u2 = Ci[(j + 2) * W + w] - s2[w];
    s3[w] = fmadd(u2, C3[(j + 2) * W + w], s3[w]);
    const T u3 = Ci[(j + 3) * W + w] - s3[w];
    Ur[j * W + w] = u0;
    Ur[(j + 1) * W + w] = u1;
    Ur[(j + 2) * W + w] = u2;
    Ur[(j + 3) * W + w] = u3;
  }
}

// The u-values of R = 1 or 2 rows (Ci0, Ci1 of the interleaved C, into U0, U1) for the
// columns j < jend:  uⱼ = Kᵢⱼ − Σ_{k<j} uₖ Lⱼₖ, summed over k in order. Four columns at a time
// share each load of uₖ, and with R = 2 each load of Lⱼₖ serves both rows.
// With jstart > 0 (a multiple of 4) the u-values of the columns j < jstart are already in U0, U1
// (natural_rows_u_simd) and the loop starts there.
template <class T, int W, int R>
void natural_row_u(const T* C, index_t N, const T* Ci0, const T* Ci1, T* U0, T* U1, index_t jend,
                   index_t jstart = 0) {
  index_t j = jstart;
  for (; j + 4 <= jend; j += 4) {
    const T* C0 = C + j * N * W;
    const T* C1 = C0 + N * W;
    const T* C2 = C1 + N * W;
    const T* C3 = C2 + N * W;
    T a0[W] = {}, a1[W] = {}, a2[W] = {}, a3[W] = {};  // row 0
    T b0[W] = {}, b1[W] = {}, b2[W] = {}, b3[W] = {};  // row 1
    for (index_t k = 0; k < j; ++k) {
      const T* Uk = U0 + k * W;
      const T* Vk = U1 + k * W;
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        const T l0 = C0[k * W + w], l1 = C1[k * W + w], l2 = C2[k * W + w], l3 = C3[k * W + w];
        a0[w] = fmadd(Uk[w], l0, a0[w]);
        a1[w] = fmadd(Uk[w], l1, a1[w]);
        a2[w] = fmadd(Uk[w], l2, a2[w]);
        a3[w] = fmadd(Uk[w], l3, a3[w]);
        if (R == 2) {
          b0[w] = fmadd(Vk[w], l0, b0[w]);
          b1[w] = fmadd(Vk[w], l1, b1[w]);
          b2[w] = fmadd(Vk[w], l2, b2[w]);
          b3[w] = fmadd(Vk[w], l3, b3[w]);
        }
      }
    }
    // the small triangle k ∈ [j, j+3) of the block, row by row
    block_triangle<T, W>(Ci0, C1, C2, C3, j, a0, a1, a2, a3, U0);
    if (R == 2) block_triangle<T, W>(Ci1, C1, C2, C3, j, b0, b1, b2, b3, U1);
  }
  const T* Ci[2] = {Ci0, Ci1};
  T* Ur[2] = {U0, U1};
  for (; j < jend; ++j) natural_column_u<T, W>(C, N, Ci, Ur, R, j);
}

// natural_row_u for four rows at once (Ci[r], into Ur[r]): each load of Lⱼₖ serves four rows
// and each load of uₖ four columns, sixteen independent sums. Every sum runs over k in the
// same order as in natural_row_u, so the u-values are bitwise the same. Needs 16 + 8 vector
// registers: for instruction sets with 32 of them (kFourRows).
template <class T, int W>
void natural_row_u4(const T* C, index_t N, const T* const* Ci, T* const* Ur, index_t jend) {
  index_t j = 0;
  for (; j + 4 <= jend; j += 4) {
    const T* C0 = C + j * N * W;
    const T* C1 = C0 + N * W;
    const T* C2 = C1 + N * W;
    const T* C3 = C2 + N * W;
    T a0[W] = {}, a1[W] = {}, a2[W] = {}, a3[W] = {};  // row 0, columns j … j+3
    T b0[W] = {}, b1[W] = {}, b2[W] = {}, b3[W] = {};  // row 1
    T c0[W] = {}, c1[W] = {}, c2[W] = {}, c3[W] = {};  // row 2
    T e0[W] = {}, e1[W] = {}, e2[W] = {}, e3[W] = {};  // row 3
    const T *U0 = Ur[0], *U1 = Ur[1], *U2 = Ur[2], *U3 = Ur[3];
    for (index_t k = 0; k < j; ++k) {
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        const T l0 = C0[k * W + w], l1 = C1[k * W + w], l2 = C2[k * W + w], l3 = C3[k * W + w];
        const T u0 = U0[k * W + w], u1 = U1[k * W + w], u2 = U2[k * W + w], u3 = U3[k * W + w];
        a0[w] = fmadd(u0, l0, a0[w]);
        a1[w] = fmadd(u0, l1, a1[w]);
        a2[w] = fmadd(u0, l2, a2[w]);
        a3[w] = fmadd(u0, l3, a3[w]);
        b0[w] = fmadd(u1, l0, b0[w]);
        b1[w] = fmadd(u1, l1, b1[w]);
        b2[w] = fmadd(u1, l2, b2[w]);
        b3[w] = fmadd(u1, l3, b3[w]);
        c0[w] = fmadd(u2, l0, c0[w]);
        c1[w] = fmadd(u2, l1, c1[w]);
        c2[w] = fmadd(u2, l2, c2[w]);
        c3[w] = fmadd(u2, l3, c3[w]);
        e0[w] = fmadd(u3, l0, e0[w]);
        e1[w] = fmadd(u3, l1, e1[w]);
        e2[w] = fmadd(u3, l2, e2[w]);
        e3[w] = fmadd(u3, l3, e3[w]);
      }
    }
    // the small triangle k ∈ [j, j+3) of the block, row by row
    block_triangle<T, W>(Ci[0], C1, C2, C3, j, a0, a1, a2, a3, Ur[0]);
    block_triangle<T, W>(Ci[1], C1, C2, C3, j, b0, b1, b2, b3, Ur[1]);
    block_triangle<T, W>(Ci[2], C1, C2, C3, j, c0, c1, c2, c3, Ur[2]);
    block_triangle<T, W>(Ci[3], C1, C2, C3, j, e0, e1, e2, e3, Ur[3]);
  }
  for (; j < jend; ++j) natural_column_u<T, W>(C, N, Ci, Ur, 4, j);
}

// One problem (W = 1): the u-values of R = lanes<T>() consecutive rows r0 … r0 + R − 1 for the
// columns jfrom ≤ j < jend (multiples of 4; rows < jend of L finished, V's columns < jfrom
// filled), SIMD across the rows (row r0 + w in lane w, Lⱼₖ broadcast), into V (V[j·R + w]).
// Lanes of rows < jend compute values nobody reads. Per row these are the
// operations of natural_row_u, in the same order (four-column blocks, sums over k = 0, 1, …,
// then block_triangle), so the values are bitwise those of the row-by-row path: one problem's
// sums run over k in a fixed order and cannot be vectorized along k, but R rows need the same
// Lⱼₖ at every step (as solve_lower_transpose_right does in ldlt_tiled.hpp).
template <class T, int R>
void natural_rows_u_simd(const T* C, index_t N, index_t r0, index_t jfrom, index_t jend, T* V) {
  for (index_t j = jfrom; j + 4 <= jend; j += 4) {
    const T* C0 = C + j * N;
    const T* C1 = C0 + N;
    const T* C2 = C1 + N;
    const T* C3 = C2 + N;
    T a0[R] = {}, a1[R] = {}, a2[R] = {}, a3[R] = {};
    for (index_t k = 0; k < j; ++k) {
      const T l0 = C0[k], l1 = C1[k], l2 = C2[k], l3 = C3[k];
      const T* v = V + k * R;
#pragma omp simd
      for (int w = 0; w < R; ++w) {
        a0[w] = fmadd(v[w], l0, a0[w]);
        a1[w] = fmadd(v[w], l1, a1[w]);
        a2[w] = fmadd(v[w], l2, a2[w]);
        a3[w] = fmadd(v[w], l3, a3[w]);
      }
    }
    T x0[R], x1[R], x2[R], x3[R];  // Kᵢⱼ … Kᵢ,ⱼ₊₃ of the R rows (past row N − 1: row N − 1 again)
    for (int w = 0; w < R; ++w) {
      const T* Ci = C + std::min<index_t>(r0 + w, N - 1) * N + j;
      x0[w] = Ci[0];
      x1[w] = Ci[1];
      x2[w] = Ci[2];
      x3[w] = Ci[3];
    }
    T* Vj = V + j * R;
#pragma omp simd
    for (int w = 0; w < R; ++w) {  // block_triangle
      const T u0 = x0[w] - a0[w];
      a1[w] = fmadd(u0, C1[j], a1[w]);
      a2[w] = fmadd(u0, C2[j], a2[w]);
      a3[w] = fmadd(u0, C3[j], a3[w]);
      const T u1 = x1[w] - a1[w];
      a2[w] = fmadd(u1, C2[j + 1], a2[w]);
      a3[w] = fmadd(u1, C3[j + 1], a3[w]);
      const T u2 = x2[w] - a2[w];
      a3[w] = fmadd(u2, C3[j + 2], a3[w]);
      Vj[w] = u0;
      Vj[R + w] = u1;
      Vj[2 * R + w] = u2;
      Vj[3 * R + w] = x3[w] - a3[w];
    }
  }
}

// Largest N for which the one-problem factorization takes natural_rows_u_simd (its V lives on
// the stack: R·N scalars, 16 KB).
constexpr index_t kRowsSimdMaxN = 256;

// LDLᵀ without pivoting of W problems at once, in the interleaved ("compact") layout: entry
// (i, j) of problem w is C[(i·N + j)·W + w], so each step below is one SIMD operation across
// the W problems (W = 1 is the ordinary row-major layout). The lower triangle of C holds the W
// KKT matrices (the first n rows belong to Q) and is overwritten by L; d (N×W) receives D.
// Row-oriented ("left-looking") form: for row i,
//     uⱼ = Kᵢⱼ − Σ_{k<j} uₖ Lⱼₖ,   Lᵢⱼ = uⱼ · (1/dⱼ)  (j < i),
//     dᵢ = Kᵢᵢ − Σ_{k<i} uₖ Lᵢₖ,
// so it only reads finished rows. ok[w] says whether problem w has the sign pattern of a strict
// minimum — dᵢ > 0 for i < n, dᵢ < 0 for i ≥ n — with every |dᵢ| above N·ε times the size of
// what was cancelled to form it, max(max|K|, Σₖ |uₖ Lᵢₖ|), and growth g = maxᵢ Σₖ Lᵢₖ²|dₖ| at
// most ‖K‖∞·pivot_growth(); flags[w] is the record's kRefine flag (see natural_flags). Lanes
// that fail go on computing garbage that the caller ignores (it refactors them with pivoting).
// U is 5N×W scratch. `pivot_tol` replaces the N·ε of the acceptance test where the caller has
// its own: the QP solver's regularized systems (qp_quasidefinite.hpp, qp_lanes.hpp) pass 0 with
// kmax = 0 and knorm = +∞, so that every pivot of the right sign is accepted, as by Cholesky.
template <class T, int W>
void factor_natural_lanes(T* C, T* d, index_t N, index_t n, const T* kmax, const T* knorm, T* U,
                          bool* ok, T* flags, T pivot_tol = T(-1)) {
  const T tol = pivot_tol >= 0 ? pivot_tol : static_cast<T>(N) * eps<T>();
  T growth[W], cancel[W];  // max Σₖ |uₖ Lᵢₖ|, and max over i of that sum / |dᵢ|
  T failed[W];             // 1 once a pivot has been rejected (a T, so the test vectorizes)
#pragma omp simd           // lanes are independent: vectorizes exactly
  for (int w = 0; w < W; ++w) {
    failed[w] = 0;
    growth[w] = 0;
    cancel[w] = 0;
  }
  // Lᵢⱼ = uⱼ·(1/dⱼ) and dᵢ from the u-values of row i, with the acceptance test. One division
  // per pivot (rd holds 1/dⱼ) instead of one per entry, as LAPACK's xPOTF2 scales by 1/ℓⱼⱼ:
  // dividing cost as much as all the multiply-adds at n + m = 40 (perf). The sums run in two
  // interleaved halves (even and odd j) so that consecutive additions do not wait on each other.
  T* rd = U + 4 * N * W;
  auto finish_row = [&](index_t i, T* Ci, const T* Ui) {
    T s0[W] = {}, s1[W] = {}, c0[W] = {}, c1[W] = {};
    index_t j = 0;
    for (; j + 2 <= i; j += 2)
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        const T l0 = Ui[j * W + w] * rd[j * W + w];
        const T l1 = Ui[(j + 1) * W + w] * rd[(j + 1) * W + w];
        Ci[j * W + w] = l0;
        Ci[(j + 1) * W + w] = l1;
        const T p0 = Ui[j * W + w] * l0, p1 = Ui[(j + 1) * W + w] * l1;
        s0[w] += p0;
        s1[w] += p1;
        c0[w] += std::abs(p0);
        c1[w] += std::abs(p1);
      }
    if (j < i)
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        const T l0 = Ui[j * W + w] * rd[j * W + w];
        Ci[j * W + w] = l0;
        const T p0 = Ui[j * W + w] * l0;
        s0[w] += p0;
        c0[w] += std::abs(p0);
      }
    // dᵢ has the right sign and |dᵢ| > tol·max(…)  ⇔  sgn·dᵢ > tol·max(…) ≥ 0 (false for NaN)
    const T sgn = i < n ? T(1) : T(-1);
#pragma omp simd
    for (int w = 0; w < W; ++w) {
      const T cancelled = c0[w] + c1[w];
      const T di = Ci[i * W + w] - (s0[w] + s1[w]);
      failed[w] = sgn * di > tol * std::max(kmax[w], cancelled) ? failed[w] : T(1);
      d[i * W + w] = di;
      rd[i * W + w] = T(1) / di;
      growth[w] = std::max(growth[w], cancelled);
      cancel[w] = std::max(cancel[w], cancelled / std::abs(di));
    }
  };
  // Rows i and i+1 from their u-values for the columns j < i: row i is finished, the last
  // column of row i+1 uses it, and row i+1 is finished.
  auto finish_pair = [&](index_t i, T* Ci, T* Ci1, T* U0, T* U1) {
    finish_row(i, Ci, U0);
    T t0[W] = {}, t1[W] = {};  // even and odd k, as in finish_row
    index_t k = 0;
    for (; k + 2 <= i; k += 2)
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        t0[w] = fmadd(U1[k * W + w], Ci[k * W + w], t0[w]);
        t1[w] = fmadd(U1[(k + 1) * W + w], Ci[(k + 1) * W + w], t1[w]);
      }
    if (k < i)
#pragma omp simd
      for (int w = 0; w < W; ++w) t0[w] = fmadd(U1[k * W + w], Ci[k * W + w], t0[w]);
#pragma omp simd
    for (int w = 0; w < W; ++w) U1[i * W + w] = Ci1[i * W + w] - (t0[w] + t1[w]);
    finish_row(i + 1, Ci1, U1);
  };
  // Rows two at a time: both rows' u-values for the columns j < i read the same finished rows
  // of L, so each load of Lⱼₖ feeds two FMAs (and each load of uₖ four). Where there are 32
  // vector registers, four rows at a time (each load of Lⱼₖ feeds four FMAs: half the traffic
  // through the caches, which is what limits n + m ≳ 100), finished as two pairs, with the two
  // columns between the pairs computed in between. Every sum runs in the same order either
  // way: the order is fixed by N alone, the same for W = 1 and for W lanes, two rows or four.
  // one problem (W = 1): the rows in groups of R1 for natural_rows_u_simd (g0: the group's first
  // row, −1 before the first)
  constexpr int R1 = W == 1 ? lanes<T>() : 1;
  T V[W == 1 ? R1 * kRowsSimdMaxN : 1];
  index_t g0 = -1;
  index_t i = 0;
  while (i < N) {
    T* Ci = C + i * N * W;
    if (kFourRows && W > 1 && i + 3 < N) {
      T* Cr[4] = {Ci, Ci + N * W, Ci + 2 * N * W, Ci + 3 * N * W};
      T* Ur[4] = {U, U + N * W, U + 2 * N * W, U + 3 * N * W};
      natural_row_u4<T, W>(C, N, Cr, Ur, i);
      finish_pair(i, Cr[0], Cr[1], Ur[0], Ur[1]);
      natural_column_u<T, W>(C, N, Cr + 2, Ur + 2, 2, i);
      natural_column_u<T, W>(C, N, Cr + 2, Ur + 2, 2, i + 1);
      finish_pair(i + 2, Cr[2], Cr[3], Ur[2], Ur[3]);
      i += 4;
    } else {
      index_t jstart = 0;
      if constexpr (W == 1 && R1 >= 4) {
        // one problem: the columns before a group of R1 rows for all of them at once
        // (and, within the group, the four columns before each fourth row), the rows of each
        // pair then from there on
        if (N <= kRowsSimdMaxN && i % R1 == 0 && i >= 8) {
          natural_rows_u_simd<T, R1>(C, N, i, 0, i, V);
          g0 = i;
        } else if (g0 >= 0 && i < g0 + R1 && i % 4 == 0) {
          natural_rows_u_simd<T, R1>(C, N, g0, i - 4, i, V);
        }
        if (g0 >= 0 && i < g0 + R1) {
          const index_t r = i - g0;
          jstart = i - i % 4;
          for (index_t j = 0; j < jstart; ++j) U[j] = V[j * R1 + r];
          if (i + 1 < N)
            for (index_t j = 0; j < jstart; ++j) U[N + j] = V[j * R1 + r + 1];
        }
      }
      if (i + 1 < N) {
        T* Ci1 = Ci + N * W;
        natural_row_u<T, W, 2>(C, N, Ci, Ci1, U, U + N * W, i, jstart);
        finish_pair(i, Ci, Ci1, U, U + N * W);
        i += 2;
      } else {
        natural_row_u<T, W, 1>(C, N, Ci, Ci, U, U, i, jstart);
        finish_row(i, Ci, U);
        i += 1;
      }
    }
    if (W == 1 && failed[0] != 0) {
      ok[0] = false;
      return;
    }
  }
  for (int w = 0; w < W; ++w) {
    ok[w] = failed[w] == 0 && growth[w] <= pivot_growth<T>() * knorm[w];
    flags[w] = natural_flags(growth[w], cancel[w], knorm[w]);
  }
}

// The kRefine flag of a natural-order factorization with growth maxᵢ Σₖ Lᵢₖ²|dₖ|, cancellation
// maxᵢ Σₖ Lᵢₖ²|dₖ| / |dᵢ| and ‖K‖∞ (see kRefineGrowth, kRefineCancellation).
template <class T>
T natural_flags(T growth, T cancel, T knorm) {
  const bool refine = growth > static_cast<T>(kRefineGrowth) * knorm ||
                      cancel > static_cast<T>(kRefineCancellation);
  return static_cast<T>(refine ? kRefine : 0);
}

// y ← L⁻¹y for a unit lower triangular L, W interleaved problems at once: entry (i, j) of
// problem w is row(i)[j·W + w] and y is N×W (or, with Shared, one L for all W columns of y:
// entry (i, j) is row(i)[j], broadcast across the lanes). Row i is yᵢ − Σ_{j<i} Lᵢⱼ yⱼ with the sum taken over
// j = 0, 1, … in order; four rows are formed together, so each load of yⱼ serves four
// independent sums (one sum alone waits on its own multiply-add at every step), and the small
// triangle among the four rows finishes them in the same order.
template <class T, int W, class Row, bool Shared = false>
void unit_lower_solve(const Row& row, index_t N, T* y) {
  constexpr index_t JS = Shared ? 1 : W, LS = Shared ? 0 : 1;  // L(i, j) of lane w: j·JS + w·LS
  index_t i = 1;
  for (; i + 4 <= N; i += 4) {
    const T *L0 = row(i), *L1 = row(i + 1), *L2 = row(i + 2), *L3 = row(i + 3);
    T s0[W] = {}, s1[W] = {}, s2[W] = {}, s3[W] = {};
    for (index_t j = 0; j < i; ++j)
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        const T yj = y[j * W + w];
        s0[w] = fmadd(L0[j * JS + w * LS], yj, s0[w]);
        s1[w] = fmadd(L1[j * JS + w * LS], yj, s1[w]);
        s2[w] = fmadd(L2[j * JS + w * LS], yj, s2[w]);
        s3[w] = fmadd(L3[j * JS + w * LS], yj, s3[w]);
      }
    T* y0 = y + i * W;
#pragma omp simd
    for (int w = 0; w < W; ++w) {
      const T a = y0[w] - s0[w];
      s1[w] = fmadd(L1[i * JS + w * LS], a, s1[w]);
      const T b = y0[W + w] - s1[w];
      s2[w] = fmadd(L2[(i + 1) * JS + w * LS], b, fmadd(L2[i * JS + w * LS], a, s2[w]));
      const T c = y0[2 * W + w] - s2[w];
      s3[w] = fmadd(L3[(i + 2) * JS + w * LS], c,
                    fmadd(L3[(i + 1) * JS + w * LS], b, fmadd(L3[i * JS + w * LS], a, s3[w])));
      y0[w] = a;
      y0[W + w] = b;
      y0[2 * W + w] = c;
      y0[3 * W + w] -= s3[w];
    }
  }
  for (; i < N; ++i) {
    const T* Li = row(i);
    T s[W] = {};
    for (index_t j = 0; j < i; ++j)
#pragma omp simd
      for (int w = 0; w < W; ++w) s[w] = fmadd(Li[j * JS + w * LS], y[j * W + w], s[w]);
#pragma omp simd
    for (int w = 0; w < W; ++w) y[i * W + w] -= s[w];
  }
}

// y ← L⁻ᵀy (same layout): for j = N−1, …, 1, yᵢ ← yᵢ − Lⱼᵢ yⱼ for all i < j, so each yᵢ receives
// its updates in the order j = N−1, N−2, …. Four columns j are applied together — first among
// themselves, then to every yᵢ below them with one load and one store of yᵢ — in that same order.
template <class T, int W, class Row, bool Shared = false>
void unit_lower_transpose_solve(const Row& row, index_t N, T* y) {
  constexpr index_t JS = Shared ? 1 : W, LS = Shared ? 0 : 1;  // as in unit_lower_solve
  index_t j = N - 1;
  for (; j >= 4; j -= 4) {
    const T *L0 = row(j), *L1 = row(j - 1), *L2 = row(j - 2), *L3 = row(j - 3);
    T* yt = y + (j - 3) * W;  // y_{j−3} … y_j
#pragma omp simd
    for (int w = 0; w < W; ++w) {
      const T a = yt[3 * W + w];
      const T b = fmadd(-L0[(j - 1) * JS + w * LS], a, yt[2 * W + w]);
      const T c =
          fmadd(-L1[(j - 2) * JS + w * LS], b, fmadd(-L0[(j - 2) * JS + w * LS], a, yt[W + w]));
      yt[2 * W + w] = b;
      yt[W + w] = c;
      yt[w] =
          fmadd(-L2[(j - 3) * JS + w * LS], c,
                fmadd(-L1[(j - 3) * JS + w * LS], b, fmadd(-L0[(j - 3) * JS + w * LS], a, yt[w])));
    }
    if constexpr (W == 1) {
      // one right-hand side: the yᵢ are independent, SIMD along i (the compiler cannot see
      // that y and the rows of L do not overlap); each yᵢ gets the same operations
      const T a = yt[3], b = yt[2], c = yt[1], e = yt[0];
#pragma omp simd
      for (index_t i = 0; i < j - 3; ++i) {
        T v = fmadd(-L0[i], a, y[i]);
        v = fmadd(-L1[i], b, v);
        v = fmadd(-L2[i], c, v);
        y[i] = fmadd(-L3[i], e, v);
      }
    } else {
      for (index_t i = 0; i < j - 3; ++i)
#pragma omp simd
        for (int w = 0; w < W; ++w) {
          T v = fmadd(-L0[i * JS + w * LS], yt[3 * W + w], y[i * W + w]);
          v = fmadd(-L1[i * JS + w * LS], yt[2 * W + w], v);
          v = fmadd(-L2[i * JS + w * LS], yt[W + w], v);
          y[i * W + w] = fmadd(-L3[i * JS + w * LS], yt[w], v);
        }
    }
  }
  for (; j > 0; --j) {
    const T* Lj = row(j);
    if constexpr (W == 1) {
      const T yj = y[j];
#pragma omp simd
      for (index_t i = 0; i < j; ++i) y[i] = fmadd(-Lj[i], yj, y[i]);
    } else {
      for (index_t i = 0; i < j; ++i)
#pragma omp simd
        for (int w = 0; w < W; ++w)
          y[i * W + w] = fmadd(-Lj[i * JS + w * LS], y[j * W + w], y[i * W + w]);
    }
  }
}

// Solves the W interleaved systems L D Lᵀ x = y of factor_natural_lanes in place (y is N×W).
// Per problem the operations are exactly those of factor_solve.
template <class T, int W>
void solve_natural_lanes(const T* C, const T* d, index_t N, T* y) {
  const auto row = [&](index_t i) { return C + i * N * W; };
  unit_lower_solve<T, W>(row, N, y);                 // L y' = y
  for (index_t i = 0; i < N * W; ++i) y[i] /= d[i];  // D y'' = y'
  unit_lower_transpose_solve<T, W>(row, N, y);       // Lᵀ x = y''
}

// Solves L D Lᵀ x = y for W interleaved right-hand sides (y is N×W, overwritten by x) with L
// packed by rows in the interleaved layout (entry (i, j) of lane w at (packed_row(i) + j)·W + w)
// and d (N×W): per lane exactly the operations of factor_solve for a plain record.
template <class T, int W>
void solve_packed_lanes(const T* L, const T* d, index_t N, T* y) {
  const auto row = [&](index_t i) { return L + packed_row(i) * W; };
  unit_lower_solve<T, W>(row, N, y);                 // L y' = y
  for (index_t i = 0; i < N * W; ++i) y[i] /= d[i];  // D y'' = y'
  unit_lower_transpose_solve<T, W>(row, N, y);       // Lᵀ x = y''
}

}  // namespace fastkkt
