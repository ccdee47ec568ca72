// fastkkt/ldlt.hpp — LDLᵀ factorizations of one dense symmetric KKT matrix, and the solve.
//
// K = [[sym(Q) + D₁, Cᵀ], [C, −D₂]] is symmetric and indefinite. When sym(Q) + D₁ is positive
// definite on the null space of C and [C, D₂] has full row rank (D₂ = 0: C has full row rank),
// K has exactly n positive and m negative eigenvalues (its inertia is (n, m, 0)); by Sylvester's
// law of inertia the signs of D in any factorization P K Pᵀ = L D Lᵀ show that inertia, so the
// pivots certify a strict minimum of the QP for free. Status: kSolved for inertia (n, m, 0),
// kNotMinimum for any other inertia of a nonsingular K, kSingular for a numerically zero pivot.
//
//  * `factor_natural`: LDLᵀ without pivoting in the natural order (ldlt_lanes.hpp with W = 1; for
//    large N ldlt_tiled.hpp): valid when sym(Q) + D₁ is positive definite, it gives up otherwise,
//    and the caller falls back to:
//  * `factor_bunch_kaufman`: symmetric indefinite LDLᵀ with Bunch–Kaufman partial pivoting and
//    1×1 / 2×2 diagonal blocks (Bunch & Kaufman, Math. Comp. 31 (1977); the unblocked
//    algorithm of LAPACK's xSYTF2, α = (1 + √17)/8 bounds the element growth). Valid for any
//    symmetric matrix; it reports singularity and the inertia.
//  * `factor_solve`: x = Pᵀ L⁻ᵀ D⁻¹ L⁻¹ P b with any of their records (record.hpp).
// Nothing here allocates, throws, or knows about Python.
#pragma once

#include <algorithm>
#include <cmath>

#include "fastkkt/ldlt_lanes.hpp"
#include "fastkkt/record.hpp"

namespace fastkkt {

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
