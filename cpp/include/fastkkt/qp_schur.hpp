// fastkkt/qp_schur.hpp — the dual Schur complement for the QP interior-point's Newton systems,
// where Q is positive definite (the qpth/OptNet factorization, Amos & Kolter, ICML 2017).
//
// Without equality constraints and bounds, every Newton system of qp.hpp is
//
//     H x = b,   H = Q + GᵀWG,   W = diag(μ/s) > 0   (G: the p finite rows, n columns).
//
// The default path (qp_quasidefinite.hpp) forms H every iteration (p·n² flops, a symmetric
// rank-p update) and factors it (n³/3). When Q ≻ 0 it can be factored once per element,
// L Lᵀ = Q, with M = L⁻¹Gᵀ (n×p) and K₀ = MᵀM = G Q⁻¹ Gᵀ (p×p) also computed once; by the
// Sherman–Morrison–Woodbury identity
//
//     H⁻¹ = Q⁻¹ − Q⁻¹Gᵀ S⁻¹ G Q⁻¹,   S = K₀ + W⁻¹   (the dual Schur complement, p×p, ≻ 0),
//
// so each iteration only adds the diagonal W⁻¹ = s/μ to K₀ and factors S (p³/3), and a solve is
//
//     u = L⁻¹b,   S y = Mᵀu,   x = L⁻ᵀ(u − M y)                (2n² + 2np + 2p² flops).
//
// This is exact (no regularization); the result is refined against H itself as the
// quasi-definite path does, r = b − Qx − Gᵀ(W(Gx)) (n² + 2np), x ← x + H_S⁻¹r, keeping the
// iterate of smallest residual, until the residual meets the caller's target or a backward
// error of τ/10 (below: ‖r‖∞ ≤ τ(‖b‖∞ + ‖H‖‖x‖∞), ‖H‖ estimated by max Hᵢᵢ, n·p flops per
// factorization); refinement here only removes rounding, so one step usually suffices.
//
// Conditioning and the fallback. W⁻¹ = s/μ spans many orders of magnitude near the end (→ 0 on
// active rows, → ∞ on inactive ones); K₀ is singular when p > n or the rows of G Q^{-1/2} are
// dependent. S is then nearly singular exactly when the active rows are (near-)degenerate, and a
// Cholesky pivot of S cancels against its own diagonal. The path is used for an element only if
//   * the element has no equality constraints and no finite bounds (m = 0 and Σ = 0: bounds would
//     add a diagonal to Q every iteration and need a refactorization of Q, which is the cost this
//     path avoids),
//   * L exists with a margin: Cholesky of Q succeeds and min Lᵢᵢ² ≥ √ε·max Qᵢᵢ (min Lᵢᵢ²/max Qᵢᵢ is
//     at least 1/κ(Q), so this rejects every Q with κ(Q) > 1/√ε; a too ill-conditioned Q makes M
//     inaccurate),
// and per iteration, only if Cholesky of S succeeds with every pivot dᵢ² ≥ 1000ε·Sᵢᵢ (not all
// digits cancelled), and per refined solve, only if its backward error is at most τ = 1e-11
// (float64) / 1e-5 (float32). Otherwise that iteration (from that solve on) is done by the default
// path: H formed and factored. (The predictor's solve is unrefined on both paths.) Every test depends only on the
// element's own data, so the choice, like the arithmetic, is bitwise identical for any thread
// count. The active-set polish and the adjoint's kept factorization stay on the default path.
//
// Choice by shape (measured). Per iteration the path saves forming and factoring H (pn² + n³/3
// flops, at blocked-kernel speed) and pays the p×p factorization (p³/3) plus, in every solve and
// residual, products with M and Gᵀ (2np–4np) and triangular solves with S (2p²) — memory-bound
// matrix–vector work, which at these sizes runs ~5–10× slower per flop than the blocked kernels.
// So the flop count alone (p³/3 < pn² + n³/3, i.e. p ≲ 1.4n) overstates the gain. Measured
// (2026-11-29, one thread, the 2-core machine shared with other jobs, OptNet's generator
// Q = LLᵀ + 1e-3·I, L uniform, h = Gz₀ + U(0,1); median of 5, interleaved; time off/on):
//     B×n×p         32×200×50  32×100×30  32×100×50  128×40×16  64×64×32  32×100×70
//     speedup         1.57       1.54       1.31       1.28       1.13      1.09
//     B×n×p        64×100×100 128×50×50  32×100×200 (scqpth_medium's shape)
//     speedup         0.94       0.80       0.61
// and on BENCH_QP.md's suite (scripts/qp_vs_piqp.py generators, one thread, median of 5, path
// off / forced on): optnet (128×100×100) 725 / 821 ms (0.88×) with z 2.6e-5 off on one element
// (the polish failed and the IPM point was returned; off: 4e-13 — the Schur directions are less
// accurate near the end when p ≥ n makes K₀ ill-conditioned), scqpth_medium 208 / 356 ms (0.58×).
// benchmarks/test_bench_qp_schur.py (32×200×50): 487 / 286 ms (1.7×), z to 1e-6 both.
// The accuracy above was the Schur iterations' own; since an element whose Schur iterations end
// without an accepted polish is solved again on the default path (qp.hpp run), z is as close to
// the polished Clarabel answer as the default path's on every element measured (before: ~1 in
// 50–200 elements off by up to 4e-5 at p = n/2 and 3n/4). Re-measured then (2026-11-29, one
// thread, load ~5.7, median of 7, path off/on interleaved; per-element Q, G / one Q, G shared):
//     B×n×p             128×100×50  128×100×75  32×200×150  128×80×60  128×64×48  128×100×100
//     per element          1.23        1.08        1.17        1.04       0.95        0.94
//     shared               1.51        1.19        1.24        1.20       1.09        1.03
// (and, earlier, per element 128×100×60 1.25, 32×200×120 1.26, 128×64×40 1.07). Hence the
// rule: m = 0 and either n ≥ 32, p ≤ n/2 or n ≥ 80, p ≤ 3n/4 — the same whether or not Q and G
// are shared, so that an element's path never depends on its batch; none of BENCH_QP.md's cases
// (optnet p = n, scqpth_medium p = 2n; the others have A or bounds) is routed. With Q and G
// shared, p = n (OptNet's layers) gains too little (1.03) to route by sharing — which would
// also need a test of sharing that every split of a batch keeps: in the core a batch (or a
// fastkkt.dask chunk) of one element has every operand "shared", so it would have to come from
// the form the caller gave Q and G in (unbatched), passed down from Python.
//
// Q and G shared by the batch (OptNet's layers: one Q and G, q and h per sample; operands
// broadcast over the batch reach the core with batch stride 0). qp.hpp's prepare_shared runs
// setup() once per call on sym(Q) and all rows of Gᵀ, and every element without fixed
// coordinates and with every h finite borrows its L, M, K₀ (share) instead of computing its own:
// the same function on the same values in buffers of the same size and alignment, so the bits
// are those of the element's own setup (reuse only: routing, arithmetic and results do not
// depend on sharing, the batch or the thread count; tests/test_qp_shared.py compares the
// broadcast call with materialized copies and fastkkt.dask's chunks bitwise). Measured
// (2026-11-29, one thread, load ~3.4 on the 2-core machine, OptNet's generator with one Q and G,
// median of 9, shared and materialized calls interleaved in one process; FASTKKT_QP_SCHUR=1):
//     B×n×p       128×100×50  32×200×50  64×64×32  128×40×16  32×100×30
//     speedup        1.31       1.26       1.24      1.26       1.20
// (the PSD test of Q, also shared, alone: 1.00–1.13 with the path off).
// The environment variable FASTKKT_QP_SCHUR (read by the bindings once per call, with the GIL
// held, into QPSettings::schur_mode; for tests and measurements)
// overrides the shape rule: "0" never, "1" wherever the element qualifies (m = 0, no bounds, Q
// with margin), "2" as "1" and a line per element on stderr (factorizations, fallbacks, polish).
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "fastkkt/qp_quasidefinite.hpp"

namespace fastkkt {
namespace qp {

// The shape rule (see the opening comment).
inline bool schur_pays(index_t n, index_t m, index_t p) {
  return m == 0 && p > 0 && ((n >= 32 && 2 * p <= n) || (n >= 80 && 4 * p <= 3 * n));
}

// -1: the shape rule, 0: never, 1: wherever an element qualifies (FASTKKT_QP_SCHUR).
inline int schur_mode_from_env() {
  const char* v = std::getenv("FASTKKT_QP_SCHUR");
  if (v == nullptr || v[0] == '\0') return -1;
  return v[0] == '0' ? 0 : v[0] == '1' ? 1 : v[0] == '2' ? 2 : -1;
}

inline bool schur_enabled(int mode, index_t n, index_t m, index_t p) {
  if (m != 0 || p == 0 || n == 0) return false;
  return mode >= 1 || (mode == -1 && schur_pays(n, m, p));
}

template <class T>
constexpr T kSchurPivot() {
  return std::is_same_v<T, float> ? T(1.2e-4) : T(2.2e-13);  // 1000ε
}
template <class T>
constexpr T kSchurResidual() {
  return std::is_same_v<T, float> ? T(1e-5) : T(1e-11);
}

template <class T>
struct DualSchur {
  index_t n = 0, p = 0;
  const T* Q = nullptr;   // n×n, both triangles (the caller's, kept alive)
  const T* GT = nullptr;  // n×p: Gᵀ
  const T* w = nullptr;   // p: W's diagonal, set by factor()
  T hmax = 0;             // max diagonal entry of H = Q + GᵀWG (its scale), set by factor()
  int n_factor = 0, n_factor_fail = 0, n_solve_fail = 0;  // counts, for FASTKKT_QP_SCHUR=2
  bool setup_ok = false;                                  // setup()'s result
  Vec<T> Lbuf, Mbuf, K0buf, SFbuf;
  Vec<T> u, y, e, x0, dx, gx;
  // L, M, K₀ in use: this object's buffers (setup) or a shared setup's (share)
  const T *Lp = nullptr, *Mp = nullptr, *K0p = nullptr;

  void reserve(index_t nmax, index_t pmax) {
    Lbuf.resize(std::max<index_t>(nmax * nmax, 1));
    Mbuf.resize(std::max<index_t>(nmax * pmax, 1));
    K0buf.resize(std::max<index_t>(pmax * pmax, 1));
    SFbuf.resize(std::max<index_t>(pmax * pmax, 1));
    for (Vec<T>* v : {&u, &e, &x0, &dx}) v->resize(std::max<index_t>(nmax, 1));
    for (Vec<T>* v : {&y, &gx}) v->resize(std::max<index_t>(pmax, 1));
  }
  // (mutable maps, as when the buffers were only this object's: the same expressions; the
  // solves only read them)
  MatMap<T> L() const { return MatMap<T>(const_cast<T*>(Lp), n, n); }
  MatMap<T> M() const { return MatMap<T>(const_cast<T*>(Mp), n, p); }
  MatMap<T> K0() const { return MatMap<T>(const_cast<T*>(K0p), p, p); }
  MatMap<T> SF() { return MatMap<T>(SFbuf.data(), p, p); }

  // L, M, K₀ of one element; false where Q is not positive definite with the margin.
  bool setup(index_t n_, index_t p_, const T* Q_, const T* GT_) {
    setup_ok = setup_own(n_, p_, Q_, GT_);
    return setup_ok;
  }

  // Borrows the L, M, K₀ of `s`, a setup() of the same (n, p, Q, Gᵀ) values (bitwise: setup's
  // arithmetic does not depend on where its buffers are), for the element whose Q and Gᵀ are
  // at Q_, GT_; returns s's result.
  bool share(const DualSchur& s, const T* Q_, const T* GT_) {
    n = s.n;
    p = s.p;
    Q = Q_;
    GT = GT_;
    Lp = s.Lp;
    Mp = s.Mp;
    K0p = s.K0p;
    setup_ok = s.setup_ok;
    return setup_ok;
  }

 private:
  bool setup_own(index_t n_, index_t p_, const T* Q_, const T* GT_) {
    n = n_;
    p = p_;
    Q = Q_;
    GT = GT_;
    Lp = Lbuf.data();
    Mp = Mbuf.data();
    K0p = K0buf.data();
    if (n == 0 || p == 0) return false;
    Eigen::Map<const Mat<T>> Qm(Q, n, n), GTm(GT, n, p);
    MatMap<T> L_(Lbuf.data(), n, n);
    L_.template triangularView<Eigen::Lower>() = Qm.template triangularView<Eigen::Lower>();
    T qmax = 0;
    for (index_t i = 0; i < n; ++i) qmax = std::max(qmax, Qm(i, i));
    if (!(qmax > 0) || !std::isfinite(qmax)) return false;
    if (Eigen::internal::llt_inplace<T, Eigen::Lower>::blocked(L_) != -1) return false;
    const T margin = std::sqrt(std::numeric_limits<T>::epsilon()) * qmax;
    for (index_t i = 0; i < n; ++i)
      if (!(L_(i, i) * L_(i, i) >= margin)) return false;
    MatMap<T> M_(Mbuf.data(), n, p);
    M_ = GTm;
    L_.template triangularView<Eigen::Lower>().solveInPlace(M_);
    MatMap<T> K(K0buf.data(), p, p);
    K.setZero();
    K.template selfadjointView<Eigen::Lower>().rankUpdate(M_.transpose());
    for (index_t i = 0; i < p; ++i)
      if (!std::isfinite(K(i, i))) return false;
    return true;
  }

 public:
  // S = K₀ + W⁻¹ and its Cholesky factor; false on breakdown or cancellation (see above).
  bool factor(const T* w_) {
    w = w_;
    ++n_factor;
    Eigen::Map<const Mat<T>> Qm(Q, n, n), GTm(GT, n, p);
    hmax = 0;
    for (index_t i = 0; i < n; ++i) {
      T d = Qm(i, i);
      for (index_t r = 0; r < p; ++r) d += GTm(i, r) * GTm(i, r) * w[r];
      hmax = nan_max(hmax, d);
    }
    auto Sf = SF();
    Sf.template triangularView<Eigen::Lower>() = K0().template triangularView<Eigen::Lower>();
    for (index_t i = 0; i < p; ++i) Sf(i, i) += T(1) / w[i];
    for (index_t i = 0; i < p; ++i) y[i] = Sf(i, i);  // the diagonal, for the pivot test
    bool ok = Eigen::internal::llt_inplace<T, Eigen::Lower>::blocked(Sf) == -1;
    for (index_t i = 0; i < p && ok; ++i) ok = Sf(i, i) * Sf(i, i) >= kSchurPivot<T>() * y[i];
    if (!ok) ++n_factor_fail;
    return ok;
  }

  // x ← (Q + GᵀWG)⁻¹ b through the factors (b and x may not alias).
  void solve_reg(const T* b, T* x) {
    auto uu = u.head(n);
    uu = Eigen::Map<const Vec<T>>(b, n);
    auto L_ = L();
    L_.template triangularView<Eigen::Lower>().solveInPlace(uu);
    auto yy = y.head(p);
    auto M_ = M();
    yy.noalias() = M_.transpose() * uu;
    auto Sf = SF();
    Sf.template triangularView<Eigen::Lower>().solveInPlace(yy);
    Sf.template triangularView<Eigen::Lower>().transpose().solveInPlace(yy);
    uu.noalias() -= M_ * yy;
    L_.template triangularView<Eigen::Lower>().transpose().solveInPlace(uu);
    VecMap<T>(x, n) = uu;
  }

  // r = b − (Q + GᵀWG) x; returns ‖r‖∞ (NaN-propagating).
  T residual(const T* b, const T* x, T* r) {
    Eigen::Map<const Mat<T>> Qm(Q, n, n), GTm(GT, n, p);
    Eigen::Map<const Vec<T>> xv(x, n);
    VecMap<T> rv(r, n);
    auto g = gx.head(p);
    g.noalias() = GTm.transpose() * xv;
    for (index_t i = 0; i < p; ++i) g[i] *= w[i];
    rv = Eigen::Map<const Vec<T>>(b, n);
    rv.noalias() -= Qm * xv;
    rv.noalias() -= GTm * g;
    T rmax = 0;
    for (index_t i = 0; i < n; ++i) rmax = nan_max(rmax, std::abs(r[i]));
    return rmax;
  }

  // τ·(‖b‖∞ + ‖H‖‖x‖∞), ‖H‖ estimated by its largest diagonal entry: the residual of a
  // backward error τ.
  T backward_scale(const T* b, const T* x, T tau) const {
    T bmax = 0, xmax = 0;
    for (index_t i = 0; i < n; ++i) {
      bmax = std::max(bmax, std::abs(b[i]));
      xmax = std::max(xmax, std::abs(x[i]));
    }
    return tau * (bmax + hmax * xmax);
  }

  // Solve H x = b with at most max_refine refinement steps (as QuasiDefinite::solve), stopping
  // at a residual of atol or of backward error kSchurResidual/10 (the solve is exact: refinement
  // only removes rounding); returns the smallest residual, or 0 (not computed) for
  // max_refine = 0.
  T solve(const T* b, T* x, int max_refine, T atol) {
    solve_reg(b, x);
    if (max_refine == 0) return T(0);
    VecMap<T> xv(x, n);
    atol = std::max(atol, backward_scale(b, x, kSchurResidual<T>() / 10));
    const T best = residual(b, x, e.data());
    return refine<T>(
        best, max_refine, atol,
        [&] {
          x0.head(n) = xv;
          solve_reg(e.data(), dx.data());
          xv += dx.head(n);
          return residual(b, x, e.data());
        },
        [&] { xv = x0.head(n); });
  }
};

}  // namespace qp
}  // namespace fastkkt
