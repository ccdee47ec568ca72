// fastkkt/ldlt.hpp — LDLᵀ factorizations of one dense symmetric KKT matrix, and the solve.
//
// The KKT matrix of   minimize ½zᵀQz + qᵀz  subject to  Az = c   is
//
//         [ Q  Aᵀ ]          n rows for z, m rows for λ,  N = n + m,
//     K = [ A  0  ]          K [z; λ] = [−q; c].
//
// K is symmetric and indefinite. When Q is positive definite on the null space of A and A has
// full row rank, K has exactly n positive and m negative eigenvalues (its inertia is (n, m, 0));
// by Sylvester's law of inertia the signs of D in any factorization P K Pᵀ = L D Lᵀ show that
// inertia, so the pivots certify a strict minimum for free.
//
// Two factorizations write the same record (`Factor`), so one solve serves both:
//
//  * `factor_natural`: LDLᵀ without pivoting in the natural order — the Q block first, then the
//    Schur complement −A Q⁻¹ Aᵀ. When Q is positive definite this is Cholesky on the Q block
//    and Cholesky of a negative definite matrix on the second block: no pivoting is needed and
//    the pivot signs are (+…+, −…−). It gives up (returns false) as soon as a pivot has the
//    wrong sign or is numerically zero, and the caller falls back to:
//  * `factor_bunch_kaufman`: symmetric indefinite LDLᵀ with Bunch–Kaufman partial pivoting and
//    1×1 / 2×2 diagonal blocks (Bunch & Kaufman, Math. Comp. 31 (1977); the unblocked
//    algorithm of LAPACK's xSYTF2, α = (1 + √17)/8 bounds the element growth). Valid for any
//    symmetric matrix; it reports singularity and the inertia.
//
// Storage: the record is caller memory of `record_size(N)` scalars, laid out as
//     L     N(N−1)/2  the strict lower triangle of the unit lower triangular L, packed by rows
//                     (row i at offset i(i−1)/2; entries inside a 2×2 block of D are 0);
//     d     N     the diagonal of D;
//     e     N     e[k] = D(k+1, k) when rows k, k+1 form a 2×2 block, else 0;
//     scale 2     the exponents s₁, s₂ of the equilibration D = diag(2^s₁ Iₙ, 2^s₂ Iₘ) when
//                 the factorization is of D K D (flag kScaled; equilibrate.hpp), else 0, 0;
//     perm  N     P as row indices: row k of P K Pᵀ is row perm[k] of K (stored as a scalar;
//                 −(p+1) marks the first row of a 2×2 block);
//     knorm 1     ‖K‖∞, for the backward error of iterative refinement;
//     flags 1     kRefine | kPivoted | kScaled bits (stored as a scalar).
// The factorizations work in place on a square N×N buffer (`Factor::L`, the caller's scratch)
// and `pack_factor` then copies L into the record.
// Nothing here allocates, throws, or knows about Python.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "fastkkt/interleave.hpp"
#include "fastkkt/threads.hpp"

namespace fastkkt {

using index_t = std::int64_t;

// Per-element status, as in the public API's `info`.
enum Status : std::int32_t {
  kSolved = 0,      // solved; the point is the strict minimum
  kSingular = 1,    // K is (numerically) singular
  kNotMinimum = 2,  // K is nonsingular but its inertia is not (n, m): not a strict minimum
  // Non-finite input (only when checking is on); the binding layer turns these into ValueError.
  kNonFiniteQ = 3,
  kNonFiniteq = 4,
  kNonFiniteA = 5,
  kNonFinitec = 6,
  // A stored factorization that no factorization of this library wrote (a corrupted record);
  // the binding layer turns it into ValueError. Checked before every solve with a record.
  kInvalidRecord = 7,
};

// Record flags.
enum : int { kRefine = 1, kPivoted = 2, kScaled = 4 };

inline index_t packed_size(index_t N) { return N * (N - 1) / 2; }
inline index_t packed_row(index_t i) { return i * (i - 1) / 2; }
inline index_t record_size(index_t N) { return packed_size(N) + 3 * N + 4; }

// A factorization being computed: L is the square N×N work buffer (row-major; its lower
// triangle holds K on entry and L on exit), the rest points into the record.
template <class T>
struct Factor {
  T* L;
  T* d;
  T* e;
  T* scale;
  T* perm;
  T* knorm;
  T* flags;
  index_t N;

  static Factor view(T* rec, index_t N, T* square) {
    const index_t P = packed_size(N);
    return {square,
            rec + P,
            rec + P + N,
            rec + P + 2 * N,
            rec + P + 2 * N + 2,
            rec + P + 3 * N + 2,
            rec + P + 3 * N + 3,
            N};
  }
};

// Copies the strict lower triangle of the square work buffer into the record's packed L.
template <class T>
void pack_factor(const T* square, index_t N, T* rec) {
  for (index_t i = 1; i < N; ++i) {
    const T* Si = square + i * N;
    T* Ri = rec + packed_row(i);
    for (index_t j = 0; j < i; ++j) Ri[j] = Si[j];
  }
}

// A finished factorization, read from a record (L packed).
template <class T>
struct ConstFactor {
  const T* L;
  const T* d;
  const T* e;
  const T* scale;
  const T* perm;
  T knorm;
  int flags;
  index_t N;

  static ConstFactor view(const T* rec, index_t N) {
    const index_t P = packed_size(N);
    return {rec,
            rec + P,
            rec + P + N,
            rec + P + 2 * N,
            rec + P + 2 * N + 2,
            rec[P + 3 * N + 2],
            static_cast<int>(rec[P + 3 * N + 3]),
            N};
  }
};

template <class T>
constexpr T eps() {
  return std::numeric_limits<T>::epsilon();
}

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

// a·b + c, fused into one rounding where the instruction set has FMA. The build uses
// -ffp-contract=off, so the compiler never fuses on its own: every kernel below performs the
// same operations in the same order whether it runs on one problem or on W interleaved ones,
// which is what makes `solve` and `factorize(...).solve` agree bit for bit.
template <class T>
inline T fmadd(T a, T b, T c) {
#if defined(__FMA__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
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
template <class T, int W, int R>
void natural_row_u(const T* C, index_t N, const T* Ci0, const T* Ci1, T* U0, T* U1, index_t jend) {
  index_t j = 0;
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
// U is 5N×W scratch.
template <class T, int W>
void factor_natural_lanes(T* C, T* d, index_t N, index_t n, const T* kmax, const T* knorm, T* U,
                          bool* ok, T* flags) {
  const T tol = static_cast<T>(N) * eps<T>();
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
    } else if (i + 1 < N) {
      T* Ci1 = Ci + N * W;
      natural_row_u<T, W, 2>(C, N, Ci, Ci1, U, U + N * W, i);
      finish_pair(i, Ci, Ci1, U, U + N * W);
      i += 2;
    } else {
      natural_row_u<T, W, 1>(C, N, Ci, Ci, U, U, i);
      finish_row(i, Ci, U);
      i += 1;
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
    for (index_t i = 0; i < j - 3; ++i)
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        T v = fmadd(-L0[i * JS + w * LS], yt[3 * W + w], y[i * W + w]);
        v = fmadd(-L1[i * JS + w * LS], yt[2 * W + w], v);
        v = fmadd(-L2[i * JS + w * LS], yt[W + w], v);
        y[i * W + w] = fmadd(-L3[i * JS + w * LS], yt[w], v);
      }
  }
  for (; j > 0; --j) {
    const T* Lj = row(j);
    for (index_t i = 0; i < j; ++i)
#pragma omp simd
      for (int w = 0; w < W; ++w)
        y[i * W + w] = fmadd(-Lj[i * JS + w * LS], y[j * W + w], y[i * W + w]);
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

// LDLᵀ without pivoting of one KKT matrix, in place on F.L (see factor_natural_lanes); returns
// false when it gives up. `u` is 5N scalars of scratch.
template <class T>
bool factor_natural(Factor<T> F, index_t n, T kmax, T knorm, T* u) {
  bool ok = false;
  T flags = 0;
  factor_natural_lanes<T, 1>(F.L, F.d, F.N, n, &kmax, &knorm, u, &ok, &flags);
  if (!ok) return false;
  for (index_t i = 0; i < F.N; ++i) {
    F.e[i] = 0;
    F.perm[i] = static_cast<T>(i);
  }
  F.scale[0] = F.scale[1] = 0;
  *F.knorm = knorm;
  *F.flags = flags;
  return true;
}

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
// one is not, the natural order gives up (returns false) as factor_natural does.
template <class T>
bool factor_natural_blocked(Factor<T> F, index_t n, T kmax, T knorm, int nthreads = 1) {
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
  const T tol = static_cast<T>(N) * eps<T>();
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

// Symmetric interchange of rows/columns p < r of the matrix whose lower triangle is stored in
// the N×N row-major L; columns < k0 hold finished columns of the factor L, whose rows are
// swapped too so that the result is P K Pᵀ = L D Lᵀ with one permutation.
template <class T>
void symmetric_swap(T* L, index_t N, index_t p, index_t r) {
  T* Lp = L + p * N;
  T* Lr = L + r * N;
  for (index_t j = 0; j < p; ++j) std::swap(Lp[j], Lr[j]);
  std::swap(Lp[p], Lr[r]);
  for (index_t j = p + 1; j < r; ++j) std::swap(L[j * N + p], Lr[j]);
  for (index_t i = r + 1; i < N; ++i) std::swap(L[i * N + p], L[i * N + r]);
}

// Bunch–Kaufman LDLᵀ in place on the lower triangle of F.L (which holds K). Returns the status:
// kSingular when a pivot column is numerically zero — all its entries at most
// N·ε·max(max|K|, max|entry of any Schur complement formed so far|) — else kSolved or
// kNotMinimum from the inertia of D. `w1`, `w2` are N scalars of scratch each.
template <class T>
Status factor_bunch_kaufman(Factor<T> F, index_t n, T kmax, T knorm, T* w1, T* w2) {
  const index_t N = F.N;
  T* L = F.L;
  const T alpha = static_cast<T>((1.0 + std::sqrt(17.0)) / 8.0);
  T scale = kmax;  // largest entry seen in K and in every Schur complement
  index_t npos = 0, nneg = 0;
  for (index_t i = 0; i < N; ++i) F.perm[i] = static_cast<T>(i);

  index_t k = 0;
  while (k < N) {
    const T tol = static_cast<T>(N) * eps<T>() * scale;
    const T absakk = std::abs(L[k * N + k]);
    index_t imax = k;
    T colmax = 0;
    for (index_t i = k + 1; i < N; ++i) {
      const T a = std::abs(L[i * N + k]);
      if (a > colmax) {
        colmax = a;
        imax = i;
      }
    }
    if (!(std::max(absakk, colmax) > tol)) return kSingular;  // also catches NaN

    index_t kp = k, kstep = 1;
    if (absakk < alpha * colmax) {
      // rowmax = largest off-diagonal entry in row/column imax of the active submatrix
      T rowmax = 0;
      for (index_t j = k; j < imax; ++j) rowmax = std::max(rowmax, std::abs(L[imax * N + j]));
      for (index_t i = imax + 1; i < N; ++i) rowmax = std::max(rowmax, std::abs(L[i * N + imax]));
      if (absakk >= alpha * colmax * (colmax / rowmax)) {
        kp = k;
      } else if (std::abs(L[imax * N + imax]) >= alpha * rowmax) {
        kp = imax;
      } else {
        kp = imax;
        kstep = 2;
      }
    }
    const index_t kk = k + kstep - 1;
    if (kp != kk) {
      symmetric_swap(L, N, kk, kp);
      std::swap(F.perm[kk], F.perm[kp]);
    }

    if (kstep == 1) {
      const T dk = L[k * N + k];
      F.d[k] = dk;
      F.e[k] = 0;
      (dk > 0 ? npos : nneg) += 1;
      for (index_t i = k + 1; i < N; ++i) w1[i] = L[i * N + k];
      for (index_t i = k + 1; i < N; ++i) {
        T* Li = L + i * N;
        const T li = w1[i] / dk;
        for (index_t j = k + 1; j <= i; ++j) {
          Li[j] -= li * w1[j];
          scale = std::max(scale, std::abs(Li[j]));
        }
        Li[k] = li;
      }
    } else {
      // 2×2 pivot D = [a b; b c] in rows k, k+1. Lᵢ = wᵢ D⁻¹ with wᵢ = (Kᵢₖ, Kᵢ,ₖ₊₁), computed
      // in LAPACK's scaled form to avoid overflow: with d11 = c/b, d22 = a/b, t = 1/(d11 d22 − 1),
      //   Lᵢₖ = (t/b)(d11 wᵢₖ − wᵢ,ₖ₊₁),   Lᵢ,ₖ₊₁ = (t/b)(d22 wᵢ,ₖ₊₁ − wᵢₖ).
      const T a = L[k * N + k], b = L[(k + 1) * N + k], c = L[(k + 1) * N + k + 1];
      F.d[k] = a;
      F.d[k + 1] = c;
      F.e[k] = b;
      F.e[k + 1] = 0;
      const T det = a * c - b * b;
      if (det < 0) {
        npos += 1;
        nneg += 1;
      } else {
        (a > 0 ? npos : nneg) += 2;
      }
      F.perm[k] = -(F.perm[k] + 1);  // marks the first row of a 2×2 block
      L[(k + 1) * N + k] = 0;
      const T d11 = c / b, d22 = a / b, t = T(1) / (d11 * d22 - T(1)), s = t / b;
      for (index_t i = k + 2; i < N; ++i) {
        w1[i] = L[i * N + k];
        w2[i] = L[i * N + k + 1];
      }
      for (index_t i = k + 2; i < N; ++i) {
        T* Li = L + i * N;
        const T l1 = s * (d11 * w1[i] - w2[i]);
        const T l2 = s * (d22 * w2[i] - w1[i]);
        for (index_t j = k + 2; j <= i; ++j) {
          Li[j] -= l1 * w1[j] + l2 * w2[j];
          scale = std::max(scale, std::abs(Li[j]));
        }
        Li[k] = l1;
        Li[k + 1] = l2;
      }
    }
    k += kstep;
  }
  F.scale[0] = F.scale[1] = 0;
  *F.knorm = knorm;
  *F.flags = static_cast<T>(kRefine | kPivoted);
  return (npos == n && nneg == N - n) ? kSolved : kNotMinimum;
}

// Whether `rec` can be a record of size N that the factorizations above wrote: a permutation
// of 0 … N−1 (each row index once, 2×2 markers never on the last row and always followed by a
// plain index), finite ‖K‖∞, known flags, and integer equilibration exponents, which are 0
// without kScaled. O(N) with `seen` (N bytes of scratch). The solve
// indexes memory through perm, so a record from elsewhere must never reach it unchecked.
template <class T>
bool valid_record(const T* rec, index_t N, unsigned char* seen) {
  const ConstFactor<T> F = ConstFactor<T>::view(rec, N);
  const T flags = rec[packed_size(N) + 3 * N + 3];
  const T base = flags >= T(kScaled) ? flags - T(kScaled) : flags;
  if (!std::isfinite(F.knorm) || !(base == 0 || base == kRefine || base == (kRefine | kPivoted)))
    return false;
  for (int k = 0; k < 2; ++k) {
    const T s = F.scale[k];
    if (!(std::abs(s) <= T(4096) && s == std::floor(s)) || (flags < T(kScaled) && s != 0))
      return false;
  }
  for (index_t k = 0; k < N; ++k) seen[k] = 0;
  for (index_t k = 0; k < N; ++k) {
    const T p = F.perm[k];
    const T idx = p < 0 ? -p - 1 : p;
    if (!(idx >= 0 && idx < static_cast<T>(N)) || idx != std::floor(idx)) return false;
    if (p < 0 && (k + 1 >= N || F.perm[k + 1] < 0)) return false;
    const auto i = static_cast<index_t>(idx);
    if (seen[i]) return false;
    seen[i] = 1;
  }
  return true;
}

// Solves K x = b with the factors: x = Pᵀ L⁻ᵀ D⁻¹ L⁻¹ P b. `b` (length N) is overwritten by x;
// `y` is N scalars of scratch.
template <class T>
void factor_solve(const ConstFactor<T>& F, T* b, T* y) {
  const index_t N = F.N;
  for (index_t k = 0; k < N; ++k) {
    const T p = F.perm[k];
    y[k] = b[static_cast<index_t>(p < 0 ? -p - 1 : p)];
  }
  const auto row = [&](index_t i) { return F.L + packed_row(i); };
  unit_lower_solve<T, 1>(row, N, y);  // L y' = y
  // D y'' = y'
  for (index_t k = 0; k < N;) {
    if (F.perm[k] < 0) {  // 2×2 block [a b; b c]
      const T a = F.d[k], b = F.e[k], c = F.d[k + 1];
      const T d11 = c / b, d22 = a / b, t = T(1) / (d11 * d22 - T(1));
      const T y1 = y[k] / b, y2 = y[k + 1] / b;
      y[k] = t * (d11 * y1 - y2);
      y[k + 1] = t * (d22 * y2 - y1);
      k += 2;
    } else {
      y[k] /= F.d[k];
      k += 1;
    }
  }
  unit_lower_transpose_solve<T, 1>(row, N, y);  // Lᵀ x' = y''
  for (index_t k = 0; k < N; ++k) {
    const T p = F.perm[k];
    b[static_cast<index_t>(p < 0 ? -p - 1 : p)] = y[k];
  }
}

}  // namespace fastkkt
