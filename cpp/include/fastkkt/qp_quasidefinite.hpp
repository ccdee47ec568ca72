// fastkkt/qp_quasidefinite.hpp — the regularized (quasi-definite) KKT solve of the QP solver:
// one factorization by the engine's natural-order LDLᵀ, many solves, iterative refinement against
// the unregularized system.
//
// The systems of the interior-point iterations and of the active-set polish (qp.hpp), and of the
// backward pass (qp_adjoint.hpp), are
//
//         [ H   Cᵀ ] [ x ]   [ b₁ ]        H (n₁×n₁) symmetric positive semidefinite,
//     K = [ C   0  ] [ y ] = [ b₂ ],       C (k×n₁), possibly without full row rank.
//
// K may be singular (H singular on the null space of C: a linear program; dependent rows of C).
// We factor instead the quasi-definite matrix (Vanderbei, SIAM J. Optim. 5 (1995))
//
//     K_reg = [ H + ρI   Cᵀ  ]     (N = n₁ + k rows),
//             [ C       −δI  ]
//
// which has an LDLᵀ factorization in the natural order for any ρ, δ > 0 (no pivoting): D has n₁
// positive pivots, those of H + ρI = L₁D₁L₁ᵀ, then k negative ones, those of the Schur complement
// −S with S = δI + C (H + ρI)⁻¹ Cᵀ. This is the factorization of the KKT engine's equality-QP
// drivers (drivers.hpp): K_reg's lower triangle is assembled row-major into an N×N buffer and
// factored in place by factor_natural_lanes<T, 1> (ldlt_lanes.hpp, row-oriented, rows grouped
// for SIMD) for N < kQPBlockedFrom and by factor_natural_blocked (ldlt_tiled.hpp, tiled, Eigen's
// tile products) from there on, both leaving the unit lower L by rows in the buffer and D beside
// it; a solve is solve_natural_lanes<T, 1> (L⁻¹, D⁻¹, L⁻ᵀ). Both are called with pivot_tol = 0, kmax = 0,
// knorm = +∞: Cholesky's acceptance, every pivot of the right sign (n₁ positive, then k negative)
// is taken, however small, since ρ and δ regularize and the refinement below removes them; the
// engine's own N·ε test and growth limit, which send a general KKT matrix to Bunch–Kaufman, do
// not apply. The factorization fails (factor() returns false) when a pivot has the wrong sign or
// is not finite.
//
// δ. First δ absolute (the caller's). When the factorization fails in the C rows — H + ρI is
// positive definite but S is not numerically: dependent rows of C make C (H + ρI)⁻¹ Cᵀ singular
// up to rounding of the size ε·‖C (H + ρI)⁻¹ Cᵀ‖, which an absolute δ does not dominate — it is
// retried once with δ·max(1, s_max), s_max = maxᵣ (C (H + ρI)⁻¹ Cᵀ)ᵣᵣ = maxᵣ Σⱼ vⱼ²/dⱼ with
// v = L₁⁻¹cᵣ (cᵣ the r-th row of C, L₁, D₁ the first n₁ rows of the failed attempt, which are
// finished and valid whenever its first n₁ pivots are positive; the tiled factorization does not
// say where it failed, so there H + ρI is factored alone first). (Always relative stalled the
// refinement when H is singular: s_max ~ 1/ρ made δ ~ 1.)
//
// The regularization is then removed by iterative refinement,
// [x; y] ← [x; y] + K_reg⁻¹(b − K[x; y]) with the residual of the unregularized K (as OSQP and QDLDL do, and Clarabel and PIQP with
// their static regularization): when K is nonsingular this converges to K⁻¹b at a rate of
// about ‖K_reg⁻¹(K_reg − K)‖ ~ max(ρ, δ)·‖K⁻¹‖; when K is singular but the system consistent it
// converges to one solution; otherwise it stops at the step of smallest residual. ρ is absolute
// (the caller scales it to Q).
//
// Storage: the callers write H (lower triangle) and Cᵀ column-major into buffers sized once for
// the largest problem of a call (caller-owned, one per thread), kept for the residuals; K_reg, L,
// D and the engine's scratch live in buffers of the same kind, so nothing is allocated per
// factorization. All sums are in a fixed order that depends only on the sizes, not on the
// thread, so results are bitwise reproducible. Nothing here throws or knows about Python.
#pragma once

// clang-format off
#include "fastkkt/interleave.hpp"  // first: it includes <immintrin.h> before Eigen does (see there)
// clang-format on
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "fastkkt/ldlt_lanes.hpp"
#include "fastkkt/ldlt_tiled.hpp"
#include "fastkkt/qp_kernels.hpp"

namespace fastkkt {
namespace qp {

using index_t = std::int64_t;

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <class T>
using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T>
using MatMap = Eigen::Map<Mat<T>>;
template <class T>
using VecMap = Eigen::Map<Vec<T>>;

template <class T>
T inf_norm(const Eigen::Ref<const Vec<T>>& v) {
  return v.size() == 0 ? T(0) : v.template lpNorm<Eigen::Infinity>();
}

// Up to this size (n₁ and k) the residual's matrix–vector products are the plain loops of
// qp_kernels.hpp, above it Eigen's (measured: two triangular solves and a symmetric product,
// plain/Eigen 1.0 for n ≤ 32, 1.5 at 50, 2.0 at 64–100).
constexpr index_t kSmallSolve = 32;
// Up to this n the iteration's matrix–vector products are the plain loops (qp.hpp).
constexpr index_t kSmallMax = 64;

// From this N on the factorization is the tiled one. Not the engine's kBlockedFrom (176): one
// problem at a time, the row-oriented kernel groups rows for SIMD (natural_rows_u_simd, up to
// kRowsSimdMaxN) and stays ahead of the tiled one (thread CPU µs, one core, tiled → rows:
// N = 180: 329 → 214, 220: 483 → 355, 250: 369–660 → 322–459).
#ifndef FASTKKT_QP_BLOCKED_FROM
#define FASTKKT_QP_BLOCKED_FROM 256
#endif
constexpr index_t kQPBlockedFrom = FASTKKT_QP_BLOCKED_FROM;
static_assert(kQPBlockedFrom <= kRowsSimdMaxN + 1, "rows beyond kRowsSimdMaxN are not grouped");

// max that keeps a NaN (a NaN residual must never look small)
template <class T>
T nan_max(T a, T b) {
  return (b > a || b != b) && a == a ? b : a;
}

// Iterative refinement from a solution with residual `best`: while the residual is above `atol`
// (at most `max_refine` times), `step()` applies one correction and returns the new residual;
// a step that does not lower it (or gives NaN) is undone by `undo()`, and one that gains less
// than half ends the loop. Returns the residual of the solution kept. (Shared by the
// quasi-definite solve below and the Schur complement's, qp_schur.hpp.)
template <class T, class Step, class Undo>
T refine(T best, int max_refine, T atol, Step step, Undo undo) {
  for (int it = 0; it < max_refine && best > atol; ++it) {
    const T r = step();
    if (!(r < best)) {  // no progress (or NaN): back to the best iterate
      undo();
      break;
    }
    const bool slow = r > best / 2;
    best = r;
    if (slow) break;
  }
  return best;
}

template <class T>
struct QuasiDefinite {
  index_t n1 = 0, k = 0;
  T delta_eff = 0;
  // inputs of the current sizes (column-major): H's lower triangle, Ct = Cᵀ (n₁×k)
  Vec<T> Hbuf, Ctbuf;
  // the factorization: K_reg's lower triangle by rows (N×N, N = n₁ + k), overwritten by the unit
  // lower L; d = D; the engine's scratch (U: factor_natural_lanes; e, perm, misc:
  // factor_natural_blocked's record fields, unused here)
  Vec<T> Kbuf, d, U, ebuf, permbuf, misc;
  Vec<T> u, e1, e2, x0, y0, dx, dy;

  void reserve(index_t nmax, index_t kmax) {
    const index_t N = std::max<index_t>(nmax + kmax, 1);
    Hbuf.resize(std::max<index_t>(nmax * nmax, 1));
    Ctbuf.resize(std::max<index_t>(nmax * kmax, 1));
    Kbuf.resize(N * N);
    U.resize(5 * N);
    for (Vec<T>* v : {&d, &ebuf, &permbuf, &u}) v->resize(N);
    misc.resize(4);
    for (Vec<T>* v : {&e1, &x0, &dx}) v->resize(std::max<index_t>(nmax, 1));
    for (Vec<T>* v : {&e2, &y0, &dy}) v->resize(std::max<index_t>(kmax, 1));
  }
  void set_size(index_t n1_, index_t k_) {
    n1 = n1_;
    k = k_;
  }
  index_t size() const { return n1 + k; }
  bool small_solve() const { return n1 <= kSmallSolve && k <= kSmallSolve; }
  // H: only its lower triangle is read. Ct = Cᵀ (n₁×k).
  MatMap<T> H() { return MatMap<T>(Hbuf.data(), n1, n1); }
  MatMap<T> Ct() { return MatMap<T>(Ctbuf.data(), n1, k); }
  // row i of the factor L (entries j < i), N = n₁ + k
  T* row(index_t i) { return Kbuf.data() + i * size(); }
  const T* row(index_t i) const { return Kbuf.data() + i * size(); }

  // K_reg's lower triangle (rows 0 … nrows − 1 of it, by rows with row length nrows: nrows = N
  // for all of K_reg, n₁ for H + ρI alone) into Kbuf.
  void assemble(T rho, T delta, index_t nrows) {
    T* K = Kbuf.data();
    const T* Hp = Hbuf.data();
    const T* Cp = Ctbuf.data();
    // H's lower triangle (column-major) by rows
    const index_t nh = std::min(nrows, n1);
    for (index_t i = 0; i < nh; ++i) {
      T* Ki = K + i * nrows;
      for (index_t j = 0; j <= i; ++j) Ki[j] = Hp[i + j * n1];
    }
    for (index_t i = 0; i < nh; ++i) K[i * nrows + i] += rho;
    for (index_t r = 0; r < nrows - n1; ++r) {
      T* Ki = K + (n1 + r) * nrows;
      for (index_t j = 0; j < n1; ++j) Ki[j] = Cp[j + r * n1];
      for (index_t j = n1; j < n1 + r; ++j) Ki[j] = 0;
      Ki[n1 + r] = -delta;
    }
  }

  // The engine's natural-order LDLᵀ of the Nr×Nr matrix in Kbuf (first npos pivots positive,
  // the rest negative) with Cholesky's acceptance; false when a pivot has the wrong sign or is
  // not finite.
  bool factor_engine(index_t Nr, index_t npos) {
    const T inf = std::numeric_limits<T>::infinity();
    if (Nr >= kQPBlockedFrom) {
      const Factor<T> F{Kbuf.data(),    d.data(),        ebuf.data(),     misc.data(),
                        permbuf.data(), misc.data() + 2, misc.data() + 3, Nr};
      return factor_natural_blocked(F, npos, T(0), inf, 1, T(0));
    }
    const T zero = 0;
    bool ok = false;
    T flags = 0;
    factor_natural_lanes<T, 1>(Kbuf.data(), d.data(), Nr, npos, &zero, &inf, U.data(), &ok, &flags,
                               T(0));
    return ok;
  }

  // s_max = maxᵣ Σⱼ vⱼ²/dⱼ, v = L₁⁻¹cᵣ, from the first n₁ rows of Kbuf (row length ld) and d.
  T schur_diag_max(index_t ld) {
    const auto rowf = [&](index_t i) -> const T* { return Kbuf.data() + i * ld; };
    T smax = 0;
    T* v = u.data();
    for (index_t r = 0; r < k; ++r) {
      const T* c = Ctbuf.data() + r * n1;
      for (index_t j = 0; j < n1; ++j) v[j] = c[j];
      unit_lower_solve<T, 1>(rowf, n1, v);
      T s = 0;
      for (index_t j = 0; j < n1; ++j) s += v[j] * v[j] / d[j];
      smax = nan_max(smax, s);
    }
    return smax;
  }

  // Factor K_reg from H and Ct; false if it breaks down (H + ρI not numerically positive
  // definite: H indefinite, or ρ too small for its rounding; or S not, even with δ relative).
  bool factor(T rho, T delta) {
    const index_t N = size();
    delta_eff = delta;
    assemble(rho, delta, N);
    if (factor_engine(N, n1)) return true;
    if (k == 0) return false;
    // where did it fail? The row-oriented factorization stops at the first wrong pivot, so
    // positive pivots 0 … n₁ − 1 mean that H + ρI = L₁D₁L₁ᵀ is finished in the first n₁ rows;
    // the tiled one does not say, so H + ρI is factored alone
    index_t ld = N;
    if (N >= kQPBlockedFrom) {
      assemble(rho, delta, n1);
      if (!factor_engine(n1, n1)) return false;
      ld = n1;
    } else {
      for (index_t i = 0; i < n1; ++i)
        if (!(d[i] > 0)) return false;
    }
    const T rel = delta * std::max(T(1), schur_diag_max(ld));
    if (!(rel > delta) || !std::isfinite(rel)) return false;  // the same δ would fail again
    delta_eff = rel;
    assemble(rho, rel, N);
    return factor_engine(N, n1);
  }

  // x, y ← K_reg⁻¹ [b₁; b₂] (b and x, y may not alias).
  void solve_reg(const T* b1, const T* b2, T* x, T* y) {
    const index_t N = size();
    T* v = u.data();
    for (index_t i = 0; i < n1; ++i) v[i] = b1[i];
    for (index_t i = 0; i < k; ++i) v[n1 + i] = b2[i];
    solve_natural_lanes<T, 1>(Kbuf.data(), d.data(), N, v);
    for (index_t i = 0; i < n1; ++i) x[i] = v[i];
    for (index_t i = 0; i < k; ++i) y[i] = v[n1 + i];
  }

  // [r₁; r₂] = b − K [x; y] with the unregularized K; returns max(‖r₁‖∞, ‖r₂‖∞).
  T residual(const T* b1, const T* b2, const T* x, const T* y, T* r1, T* r2) {
    if (small_solve()) {
      T rmax = 0;
      for (index_t i = 0; i < n1; ++i) r1[i] = b1[i];
      kern::symv_lower<T>(n1, Hbuf.data(), n1, x, r1, T(-1));
      if (k > 0) {
        const T* Cp = Ctbuf.data();
        kern::gemv_n<T>(n1, k, Cp, n1, y, r1, T(-1));
        for (index_t i = 0; i < k; ++i) r2[i] = b2[i];
        kern::gemv_t<T>(n1, k, Cp, n1, x, r2, T(-1));
        for (index_t i = 0; i < k; ++i) rmax = nan_max(rmax, std::abs(r2[i]));
      }
      for (index_t i = 0; i < n1; ++i) rmax = nan_max(rmax, std::abs(r1[i]));
      return rmax;
    }
    Eigen::Map<const Vec<T>> xv(x, n1), yv(y, k);
    VecMap<T> r1v(r1, n1), r2v(r2, k);
    r1v = Eigen::Map<const Vec<T>>(b1, n1);
    r1v.noalias() -= H().template selfadjointView<Eigen::Lower>() * xv;
    if (k > 0) {
      r1v.noalias() -= Ct() * yv;
      r2v = Eigen::Map<const Vec<T>>(b2, k);
      r2v.noalias() -= Ct().transpose() * xv;
    }
    return std::max(inf_norm<T>(r1v), inf_norm<T>(r2v));
  }

  // Solve K [x; y] = b by K_reg and at most `max_refine` refinement steps, stopping once the
  // residual is at most `atol` or stops decreasing by half; x, y hold the iterate of smallest
  // residual, which is returned.
  // max_refine = 0: the regularized solution alone, no residual computed (returns 0).
  T solve(const T* b1, const T* b2, T* x, T* y, int max_refine, T atol) {
    solve_reg(b1, b2, x, y);
    if (max_refine == 0) return T(0);
    VecMap<T> xv(x, n1), yv(y, k);
    const T best = residual(b1, b2, x, y, e1.data(), e2.data());
    return refine<T>(
        best, max_refine, atol,
        [&] {
          x0.head(n1) = xv;
          y0.head(k) = yv;
          solve_reg(e1.data(), e2.data(), dx.data(), dy.data());
          xv += dx.head(n1);
          yv += dy.head(k);
          return residual(b1, b2, x, y, e1.data(), e2.data());
        },
        [&] {
          xv = x0.head(n1);
          yv = y0.head(k);
        });
  }
};

}  // namespace qp
}  // namespace fastkkt
