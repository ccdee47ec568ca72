// fastkkt/qp_quasidefinite.hpp — the regularized (quasi-definite) KKT solve of the QP solver:
// one factorization, many solves, iterative refinement against the unregularized system.
//
// The systems of the interior-point iterations and of the active-set polish (qp.hpp) are
//
//         [ H   Cᵀ ] [ x ]   [ b₁ ]        H (n₁×n₁) symmetric positive semidefinite,
//     K = [ C   0  ] [ y ] = [ b₂ ],       C (k×n₁), possibly without full row rank.
//
// K may be singular (H singular on the null space of C: a linear program; dependent rows of C).
// We factor instead the quasi-definite matrix (Vanderbei, SIAM J. Optim. 5 (1995))
//
//     K_reg = [ H + ρI   Cᵀ  ]
//             [ C       −δI  ],
//
// which has an LDLᵀ factorization in the natural order for any ρ, δ > 0: the Cholesky factor
// L Lᵀ = H + ρI, then X = L⁻¹Cᵀ and the Cholesky factor of the Schur complement
// S = C (H + ρI)⁻¹ Cᵀ + δI = XᵀX + δI. A solve is
//
//     u = L⁻¹b₁,  S y = Xᵀu − b₂,  x = L⁻ᵀ(u − X y).
//
// The regularization is then removed by iterative refinement, [x; y] ← [x; y] + K_reg⁻¹(b − K[x; y])
// with the residual of the unregularized K (as OSQP and QDLDL do, and Clarabel and PIQP with
// their static regularization): when K is nonsingular this converges to K⁻¹b at a rate of
// about ‖K_reg⁻¹(K_reg − K)‖ ~ max(ρ, δ)·‖K⁻¹‖; when K is singular but the system consistent it
// converges to one solution; otherwise it stops at the step of smallest residual. ρ is absolute
// (the caller scales it to Q); so is δ, unless XᵀX is numerically singular (dependent rows of
// C), where δ is taken relative to its largest diagonal entry. (Always relative stalled the
// refinement when H is singular: XᵀX ~ 1/ρ made δ ~ 1.)
//
// Storage: every matrix lives in a buffer sized once for the largest problem of a call (caller-
// owned, one per thread) and is used through column-major Eigen::Maps of the current sizes, so
// nothing is allocated per factorization. Eigen's blocked Cholesky (llt_inplace) factors in
// place. All sums are in a fixed order that does not depend on the thread, so results are
// bitwise reproducible. Nothing here throws or knows about Python.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

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

// Up to these sizes (n₁ and k) the plain kernels of qp_kernels.hpp are used, above them Eigen's
// blocked ones. Measured (thread CPU time, one core, n = p): Cholesky plain/Eigen 0.9 (n = 12),
// 0.7 (32–50), 1.0 (64–100), 1.7 (150); two triangular solves and a symmetric product 1.0
// (n ≤ 32), 1.5 (50), 2.0 (64–100); the rank-p update GᵀWG 1.0 (12), 2.4 (32), 3.3 (64): Eigen's.
constexpr index_t kSmallFactor = 64;
constexpr index_t kSmallSolve = 32;
constexpr index_t kSmallMax = kSmallFactor;  // matrix–vector products of the iteration (qp.hpp)

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
  // buffers (capacity) and their current views
  Vec<T> Hbuf, Lbuf, Ctbuf, Xbuf, Sbuf, SFbuf;
  Vec<T> u, e1, e2, x0, y0, dx, dy;
  Vec<T> Ldinv, Sdinv;  // reciprocal diagonals of the plain-kernel factors

  void reserve(index_t nmax, index_t kmax) {
    Hbuf.resize(std::max<index_t>(nmax * nmax, 1));
    Lbuf.resize(std::max<index_t>(nmax * nmax, 1));
    Ctbuf.resize(std::max<index_t>(nmax * kmax, 1));
    Xbuf.resize(std::max<index_t>(nmax * kmax, 1));
    Sbuf.resize(std::max<index_t>(kmax * kmax, 1));
    SFbuf.resize(std::max<index_t>(kmax * kmax, 1));
    for (Vec<T>* v : {&u, &e1, &x0, &dx, &Ldinv}) v->resize(std::max<index_t>(nmax, 1));
    for (Vec<T>* v : {&e2, &y0, &dy, &Sdinv}) v->resize(std::max<index_t>(kmax, 1));
  }
  void set_size(index_t n1_, index_t k_) {
    n1 = n1_;
    k = k_;
  }
  // H: only its lower triangle is read. Ct = Cᵀ (n₁×k).
  MatMap<T> H() { return MatMap<T>(Hbuf.data(), n1, n1); }
  MatMap<T> Ct() { return MatMap<T>(Ctbuf.data(), n1, k); }
  MatMap<T> L() { return MatMap<T>(Lbuf.data(), n1, n1); }
  MatMap<T> X() { return MatMap<T>(Xbuf.data(), n1, k); }
  MatMap<T> S() { return MatMap<T>(Sbuf.data(), k, k); }
  MatMap<T> Sfactor() { return MatMap<T>(SFbuf.data(), k, k); }

  // Factor K_reg from H and Ct; false if a Cholesky factorization breaks down (H + ρI not
  // numerically positive definite: H indefinite, or ρ too small for its rounding).
  bool small() const { return n1 <= kSmallFactor && k <= kSmallFactor; }
  bool small_solve() const { return n1 <= kSmallSolve && k <= kSmallSolve; }

  bool factor(T rho, T delta) {
    if (small()) return factor_small(rho, delta);
    auto L_ = L();
    auto H_ = H();
    L_.template triangularView<Eigen::Lower>() = H_.template triangularView<Eigen::Lower>();
    L_.diagonal().array() += rho;
    if (n1 > 0 && Eigen::internal::llt_inplace<T, Eigen::Lower>::blocked(L_) != -1) return false;
    if (k == 0) return true;
    auto X_ = X();
    auto S_ = S();
    X_ = Ct();
    if (n1 > 0) L_.template triangularView<Eigen::Lower>().solveInPlace(X_);
    S_.setZero();
    if (n1 > 0) S_.template selfadjointView<Eigen::Lower>().rankUpdate(X_.transpose());
    // δ absolute first; if S = XᵀX (numerically singular: dependent rows of C) loses
    // definiteness, δ relative to its largest diagonal entry
    T dmax = 0;
    for (index_t i = 0; i < k; ++i) dmax = std::max(dmax, S_(i, i));
    for (int attempt = 0; attempt < 2; ++attempt) {
      delta_eff = attempt == 0 ? delta : delta * std::max(T(1), dmax);
      auto Sf = Sfactor();
      Sf.template triangularView<Eigen::Lower>() = S_.template triangularView<Eigen::Lower>();
      Sf.diagonal().array() += delta_eff;
      if (Eigen::internal::llt_inplace<T, Eigen::Lower>::blocked(Sf) == -1) return true;
    }
    return false;
  }

  // factor() with the plain kernels (same mathematics, same δ rule)
  bool factor_small(T rho, T delta) {
    T* Lp = Lbuf.data();
    const T* Hp = Hbuf.data();
    for (index_t j = 0; j < n1; ++j)
      for (index_t i = j; i < n1; ++i) Lp[i + j * n1] = Hp[i + j * n1];
    for (index_t j = 0; j < n1; ++j) Lp[j + j * n1] += rho;
    if (!kern::chol_lower<T>(n1, Lp, n1, Ldinv.data())) return false;
    if (k == 0) return true;
    T* Xp = Xbuf.data();
    const T* Cp = Ctbuf.data();
    for (index_t i = 0; i < n1 * k; ++i) Xp[i] = Cp[i];
    for (index_t c = 0; c < k; ++c) kern::trsv_lower<T>(n1, Lp, n1, Ldinv.data(), Xp + c * n1);
    T* Sp = Sbuf.data();
    T dmax = 0;
    for (index_t b = 0; b < k; ++b) {
      for (index_t a = b; a < k; ++a) Sp[a + b * k] = kern::dot<T>(Xp + a * n1, Xp + b * n1, n1);
      dmax = std::max(dmax, Sp[b + b * k]);
    }
    T* Fp = SFbuf.data();
    for (int attempt = 0; attempt < 2; ++attempt) {
      delta_eff = attempt == 0 ? delta : delta * std::max(T(1), dmax);
      for (index_t b = 0; b < k; ++b)
        for (index_t a = b; a < k; ++a) Fp[a + b * k] = Sp[a + b * k];
      for (index_t b = 0; b < k; ++b) Fp[b + b * k] += delta_eff;
      if (kern::chol_lower<T>(k, Fp, k, Sdinv.data())) return true;
    }
    return false;
  }

  // x, y ← K_reg⁻¹ [b₁; b₂] (b and x, y may not alias).
  void solve_reg(const T* b1, const T* b2, T* x, T* y) {
    if (small_solve()) {
      const T* Lp = Lbuf.data();
      for (index_t i = 0; i < n1; ++i) x[i] = b1[i];
      kern::trsv_lower<T>(n1, Lp, n1, Ldinv.data(), x);
      if (k > 0) {
        const T* Xp = Xbuf.data();
        for (index_t i = 0; i < k; ++i) y[i] = -b2[i];
        kern::gemv_t<T>(n1, k, Xp, n1, x, y, T(1));
        kern::trsv_lower<T>(k, SFbuf.data(), k, Sdinv.data(), y);
        kern::trsv_lower_t<T>(k, SFbuf.data(), k, Sdinv.data(), y);
        kern::gemv_n<T>(n1, k, Xp, n1, y, x, T(-1));
      }
      kern::trsv_lower_t<T>(n1, Lp, n1, Ldinv.data(), x);
      return;
    }
    VecMap<T> xv(x, n1), yv(y, k);
    auto uu = u.head(n1);
    uu = Eigen::Map<const Vec<T>>(b1, n1);
    auto L_ = L();
    if (n1 > 0) L_.template triangularView<Eigen::Lower>().solveInPlace(uu);
    if (k > 0) {
      auto X_ = X();
      yv.noalias() = X_.transpose() * uu;
      yv -= Eigen::Map<const Vec<T>>(b2, k);
      auto S_ = Sfactor();
      S_.template triangularView<Eigen::Lower>().solveInPlace(yv);
      S_.template triangularView<Eigen::Lower>().transpose().solveInPlace(yv);
      uu.noalias() -= X_ * yv;
    }
    if (n1 > 0) L_.template triangularView<Eigen::Lower>().transpose().solveInPlace(uu);
    xv = uu;
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
