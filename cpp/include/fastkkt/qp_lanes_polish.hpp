// fastkkt/qp_lanes_polish.hpp — qp.hpp's active-set polish for the W problems of a lane group
// at once (qp_lanes.hpp), one problem per SIMD lane, and the answer written where it is accepted.
//
// Mathematics: ElementSolver::polish (qp.hpp's opening comment, "Polish"), for problems with no
// fixed coordinate and every h finite (qp_lanes.hpp's lane_load: reduced = full). From the
// iterate that met polish_try_tol in the lanes, guess the active set — rows with s < μ, bounds
// with t < ν (at both bounds the nearer) — fix the active bounds at their value v and solve the
// equality-constrained KKT system of the free coordinates F and the active rows R,
//
//     [ Q_FF   A_Fᵀ  G_RFᵀ ] [ z_F ]   [ −q_F − Q_F· v ]
//     [ A_F    0     0     ] [ λ   ] = [  c − A v      ]
//     [ G_RF   0     0     ] [ μ_R ]   [  h_R − G_R· v ]
//
// regularized (ρ on the first block, −δ on the others, qp.hpp's own ρ and δ) and refined
// against the unregularized system (at most kMaxRefinePolish steps to ε·max(1, ‖b‖∞), each
// kept only where it lowers the residual, the loop ending at a gain under half: qp_quasidefinite
// .hpp's refine rule, per lane). Every lane has its own F and R, so the system is kept at the
// full size N = n + m + p and the rest masked out: a fixed coordinate's row and column become
// those of the identity (pivot +1), an inactive row's those of −I (pivot −1), with right-hand
// side 0. The engine's natural-order LDLᵀ (factor_natural_lanes, Cholesky's acceptance: n
// positive pivots, then m + p negative ones) then leaves exact zeros in L off the masked rows and
// columns and solves them to 0: on F and R it is the factorization of the compacted system
// (the masked entries add exact zeros to its sums), at the cost of the masked rows.
//
// Acceptance, as ElementSolver::polish: the bound multipliers of the fixed coordinates from
// stationarity, ν = −(Qz + Aᵀλ + Gᵀμ + q); multipliers of the wrong sign beyond tol times the
// dual scale reject it, those within are clipped to zero; then the stopping rule on the problem
// at tol·kMargin (qp.hpp's `measure`). Accepted: z, λ, μ, ν, status 0 and the iteration count
// are the element's answer (and, for the backward pass, the adjoint's active set and, where the
// set is the polish's, its factorization compacted to qp_adjoint.hpp's packed form). Rejected
// (a wrong guess): the element goes to the scalar solver at that iterate, told that the polish
// there failed (it iterates on, as after its own failed polish). A factorization that breaks
// down or a non-finite solution: the scalar solver takes the element at that iterate as it
// would have (its polish retries a failed factorization with δ relative, qp_quasidefinite.hpp).
//
// Each lane's arithmetic is its own (no reduction across lanes, masks as selects), so a
// problem's result does not depend on its neighbours, the batch or the thread count, and a group
// of one (W = 1) gives the bits of a W-wide one. The sums are not in the scalar polish's order:
// the answer is the scalar polish's up to rounding, not bitwise.
//
// Measured (2026-11-29, one thread, calls alternated with the build before, 20th percentiles):
// the scalar polish of the handed-over elements, one after the other, was ~14% of an mpc call
// (perf); with this polish (and the PSD test in the lanes) mpc took 0.81× the time, scqpth_small
// 0.88×, answers within rounding (max |Δz| 1.8e-15, 5.8e-15), statuses unchanged.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "fastkkt/qp.hpp"
#include "fastkkt/qp_lanes.hpp"

namespace fastkkt {
namespace qp {

// The polish's buffers, sized once for (n, m, p) with the lane group.
template <class T, int W>
struct LanePolishBuffers {
  index_t N = 0;
  // masks (0/1 as T): free coordinate, active row; v: the fixed coordinates' values
  std::vector<T> fr, ar, v, ab;  // ab: −1 at an active lower bound, +1 upper, 0 free
  // K (N×N, interleaved, overwritten by L), D, the kernel's scratch; b, x, its save, residual
  std::vector<T> K, d, U, b, x, x0, r;
  // the answer: z, λ, μ, ν (n, m, p, n) and Qz + Aᵀλ + Gᵀμ
  std::vector<T> z, lam, mu, nu, st;

  LanePolishBuffers(index_t n, index_t m, index_t p) : N(n + m + p) {
    const size_t w = W;
    const auto sz = [&](index_t k) { return static_cast<size_t>(std::max<index_t>(k, 1)) * w; };
    fr.resize(sz(n));
    ab.resize(sz(n));
    v.resize(sz(n));
    ar.resize(sz(p));
    K.resize(static_cast<size_t>(N * N) * w);
    d.resize(sz(N));
    U.resize(5 * sz(N));
    for (auto* y : {&b, &x, &x0, &r}) y->resize(sz(N));
    z.resize(sz(n));
    nu.resize(sz(n));
    st.resize(sz(n));
    lam.resize(sz(m));
    mu.resize(sz(p));
  }
};

// Outcome per lane of LanePolish::run.
enum LanePolishOutcome : std::int8_t {
  kLaneNotPolished = 0,  // not tried here (not handed over, or breakdown): the scalar solver's
  kLaneAccepted = 1,     // the answer is in the buffers
  kLaneRejected = 2,     // tried and rejected: the scalar solver iterates on from the iterate
};

template <class T, int W>
class LanePolish {
 public:
  LanePolish(LaneGroup<T, W>& g, LanePolishBuffers<T, W>& pb, const QPSettings<T>& s)
      : g_(g), b_(pb), s_(s) {}

  // Polishes the lanes with g.done[l] = 1; outcome[l] as LanePolishOutcome.
  void run(std::int8_t* outcome) {
    for (int l = 0; l < W; ++l) {
      outcome[l] = kLaneNotPolished;
      live_[l] = g_.done[l] != 0;
    }
    bool any = false;
    for (int l = 0; l < W; ++l) any = any || live_[l];
    if (!any) return;
    guess();
    assemble();
    if (!factor()) return;
    refine();
    answer(outcome);
  }

 private:
  LaneGroup<T, W>& g_;  // its Qz, Atl, Gtm, Az, Gz are scratch here
  LanePolishBuffers<T, W>& b_;
  const QPSettings<T>& s_;
  bool live_[W];

  static const T* at(const std::vector<T>& v, index_t i) { return v.data() + i * W; }
  static T* at(std::vector<T>& v, index_t i) { return v.data() + i * W; }

  // the active set of the iterate (ElementSolver::ipm_active), the fixed values v
  void guess() {
    const auto& g = g_;
    for (index_t r = 0; r < g.p; ++r) {
      const T *s = at(g.sg, r), *mu = at(g.mu, r);
      T* a = at(b_.ar, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) a[l] = s[l] < mu[l] ? T(1) : T(0);
    }
    for (index_t i = 0; i < g.n; ++i) {
      const T *mL = at(g.mL, i), *mU = at(g.mU, i), *tl = at(g.tl, i), *nl = at(g.nl, i),
              *tu = at(g.tu, i), *nu = at(g.nu, i), *lo = at(g.lbz, i), *hi = at(g.ubz, i);
      T *ab = at(b_.ab, i), *fr = at(b_.fr, i), *v = at(b_.v, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        const bool a = mL[l] != 0 && tl[l] < nl[l];
        const bool b = mU[l] != 0 && tu[l] < nu[l];
        ab[l] = a && b ? (tl[l] <= tu[l] ? T(-1) : T(1)) : a ? T(-1) : b ? T(1) : T(0);
        fr[l] = ab[l] == 0 ? T(1) : T(0);
        v[l] = ab[l] < 0 ? lo[l] : ab[l] > 0 ? hi[l] : T(0);
      }
    }
  }

  // K_reg's lower triangle, masked, and the right-hand side b
  void assemble() {
    const auto& g = g_;
    const index_t n = g.n, m = g.m, p = g.p, N = b_.N;
    const T delta = ipm_reg<T>();
    T* K = b_.K.data();
    for (index_t i = 0; i < n; ++i) {
      const T* fi = at(b_.fr, i);
      for (index_t j = 0; j <= i; ++j) {
        T* c = K + (i * N + j) * W;
        const T *fj = at(b_.fr, j), *q = at(g.Q, i + j * n);
#pragma omp simd
        for (int l = 0; l < W; ++l) {
          const T diag = i == j ? T(1) : T(0);
          c[l] = fi[l] != 0 && fj[l] != 0 ? (i == j ? q[l] + g.rho[l] : q[l]) : diag;
        }
      }
    }
    for (index_t k = 0; k < m; ++k) {
      T* row = K + (n + k) * N * W;
      for (index_t j = 0; j < n; ++j) {
        const T *a = at(g.A, k + j * m), *fj = at(b_.fr, j);
#pragma omp simd
        for (int l = 0; l < W; ++l) row[j * W + l] = fj[l] != 0 ? a[l] : T(0);
      }
      for (index_t j = n; j < n + k; ++j)
#pragma omp simd
        for (int l = 0; l < W; ++l) row[j * W + l] = 0;
#pragma omp simd
      for (int l = 0; l < W; ++l) row[(n + k) * W + l] = -delta;
    }
    for (index_t r = 0; r < p; ++r) {
      T* row = K + (n + m + r) * N * W;
      const T* ar = at(b_.ar, r);
      for (index_t j = 0; j < n; ++j) {
        const T *gt = at(g.GT, j + r * n), *fj = at(b_.fr, j);
#pragma omp simd
        for (int l = 0; l < W; ++l) row[j * W + l] = ar[l] != 0 && fj[l] != 0 ? gt[l] : T(0);
      }
      for (index_t j = n; j < n + m + r; ++j)
#pragma omp simd
        for (int l = 0; l < W; ++l) row[j * W + l] = 0;
#pragma omp simd
      for (int l = 0; l < W; ++l) row[(n + m + r) * W + l] = ar[l] != 0 ? -delta : T(-1);
    }
    // b = [−q − Q v; c − A v; h − G v] on F and R, 0 elsewhere (v = 0 on F)
    const T zero[W] = {};
    T* b = b_.b.data();
    for (index_t i = 0; i < n; ++i) {
      T* bi = b + i * W;
      const T* q = at(g.q, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) bi[l] = -q[l];
    }
    lane_dots<W, true>(n, b, 1, b, 1, g.Q.data(), 1, n, b_.v.data(), 1, n);
    lane_dots<W, true>(m, b + n * W, 1, g.c.data(), 1, g.A.data(), 1, m, b_.v.data(), 1, n);
    lane_dots<W, true>(p, b + (n + m) * W, 1, g.h.data(), 1, g.GT.data(), n, 1, b_.v.data(), 1, n);
    for (index_t i = 0; i < n; ++i) {
      T* bi = b + i * W;
      const T* fr = at(b_.fr, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) bi[l] = fr[l] != 0 ? bi[l] : zero[l];
    }
    for (index_t r = 0; r < p; ++r) {
      T* br = b + (n + m + r) * W;
      const T* ar = at(b_.ar, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) br[l] = ar[l] != 0 ? br[l] : zero[l];
    }
  }

  bool factor() {
    const index_t N = b_.N;
    T kmax[W], knorm[W], flags[W];
    bool ok[W];
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      kmax[l] = 0;
      knorm[l] = std::numeric_limits<T>::infinity();
    }
    factor_natural_lanes<T, W>(b_.K.data(), b_.d.data(), N, g_.n, kmax, knorm, b_.U.data(), ok,
                               flags, T(0));
    bool any = false;
    for (int l = 0; l < W; ++l) {
      live_[l] = live_[l] && ok[l];
      any = any || live_[l];
    }
    return any;
  }

  // r = b − K x with the unregularized, masked K; returns ‖r‖∞ per lane in rn (NaN kept)
  void residual(T* rn) {
    const auto& g = g_;
    const index_t n = g.n, m = g.m, p = g.p;
    const T *b = b_.b.data(), *x = b_.x.data();
    T* r = b_.r.data();
    const T *y = x + n * W, *w = x + (n + m) * W;
    // Q x (x = 0 off F), Aᵀ y, Gᵀ w (w = 0 off R)
    lane_dots<W, true>(n, r, 1, b, 1, g.Q.data(), 1, n, x, 1, n);
    lane_dots<W, true>(n, r, 1, r, 1, g.A.data(), m, 1, y, 1, m);
    lane_dots<W, true>(n, r, 1, r, 1, g.GT.data(), 1, n, w, 1, p);
    lane_dots<W, true>(m, r + n * W, 1, b + n * W, 1, g.A.data(), 1, m, x, 1, n);
    lane_dots<W, true>(p, r + (n + m) * W, 1, b + (n + m) * W, 1, g.GT.data(), n, 1, x, 1, n);
#pragma omp simd
    for (int l = 0; l < W; ++l) rn[l] = 0;
    for (index_t i = 0; i < n; ++i) {
      T* ri = r + i * W;
      const T* fr = at(b_.fr, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        ri[l] = fr[l] != 0 ? ri[l] : T(0);
        rn[l] = nan_max(rn[l], std::abs(ri[l]));
      }
    }
    for (index_t k = 0; k < m; ++k) {
      const T* rk = r + (n + k) * W;
#pragma omp simd
      for (int l = 0; l < W; ++l) rn[l] = nan_max(rn[l], std::abs(rk[l]));
    }
    for (index_t q = 0; q < p; ++q) {
      T* rq = r + (n + m + q) * W;
      const T* ar = at(b_.ar, q);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        rq[l] = ar[l] != 0 ? rq[l] : T(0);
        rn[l] = nan_max(rn[l], std::abs(rq[l]));
      }
    }
  }

  // x = K_reg⁻¹ b, refined (qp_quasidefinite.hpp's refine, per lane)
  void refine() {
    const index_t N = b_.N;
    T* x = b_.x.data();
    for (index_t i = 0; i < N * W; ++i) x[i] = b_.b[i];
    solve_natural_lanes<T, W>(b_.K.data(), b_.d.data(), N, x);
    T best[W], atol[W], rn[W];
    bool go[W];
#pragma omp simd
    for (int l = 0; l < W; ++l) atol[l] = 1;
    for (index_t i = 0; i < N; ++i) {
      const T* bi = at(b_.b, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) atol[l] = lmax(atol[l], std::abs(bi[l]));
    }
    residual(best);
    for (int l = 0; l < W; ++l) {
      atol[l] *= std::numeric_limits<T>::epsilon();
      go[l] = live_[l] && best[l] > atol[l];
    }
    for (int it = 0; it < kMaxRefinePolish; ++it) {
      bool any = false;
      for (int l = 0; l < W; ++l) any = any || go[l];
      if (!any) break;
      T* e = b_.r.data();  // the correction, in place of the residual
      solve_natural_lanes<T, W>(b_.K.data(), b_.d.data(), N, e);
      T* x0 = b_.x0.data();
      for (index_t i = 0; i < N; ++i)
        for (int l = 0; l < W; ++l) {
          x0[i * W + l] = x[i * W + l];
          x[i * W + l] = go[l] ? x[i * W + l] + e[i * W + l] : x[i * W + l];
        }
      residual(rn);
      for (int l = 0; l < W; ++l) {
        if (!go[l]) continue;
        if (!(rn[l] < best[l])) {  // no progress (or NaN): back to the best iterate
          for (index_t i = 0; i < N; ++i) x[i * W + l] = x0[i * W + l];
          go[l] = false;
          continue;
        }
        const bool slow = rn[l] > best[l] / 2;
        best[l] = rn[l];
        go[l] = !slow && best[l] > atol[l];
      }
    }
  }

  // z, λ, μ, ν from x; the signs, the clip and the stopping rule; outcome per live lane
  void answer(std::int8_t* outcome) {
    const auto& g = g_;
    const index_t n = g.n, m = g.m, p = g.p;
    const T* x = b_.x.data();
    bool finite[W];
#pragma omp simd
    for (int l = 0; l < W; ++l) finite[l] = true;
    for (index_t i = 0; i < b_.N; ++i)
#pragma omp simd
      for (int l = 0; l < W; ++l) finite[l] = finite[l] && std::isfinite(x[i * W + l]);
    for (index_t i = 0; i < n; ++i) {
      T* z = at(b_.z, i);
      const T *fr = at(b_.fr, i), *v = at(b_.v, i), *xi = x + i * W;
#pragma omp simd
      for (int l = 0; l < W; ++l) z[l] = fr[l] != 0 ? xi[l] : v[l];
    }
    for (index_t i = 0; i < m * W; ++i) b_.lam[i] = x[n * W + i];
    for (index_t r = 0; r < p; ++r) {
      T* mu = at(b_.mu, r);
      const T *ar = at(b_.ar, r), *xr = x + (n + m + r) * W;
#pragma omp simd
      for (int l = 0; l < W; ++l) mu[l] = ar[l] != 0 ? xr[l] : T(0);
    }
    // stationarity Qz + Aᵀλ + Gᵀμ, the fixed coordinates' ν
    auto &Qz = g_.Qz, &Atl = g_.Atl, &Gtm = g_.Gtm, &Az = g_.Az, &Gz = g_.Gz;
    const T zero[W] = {};
    lane_dots<W, false>(n, Qz.data(), 1, zero, 0, g.Q.data(), 1, n, b_.z.data(), 1, n);
    lane_dots<W, false>(n, Atl.data(), 1, zero, 0, g.A.data(), m, 1, b_.lam.data(), 1, m);
    lane_dots<W, false>(n, Gtm.data(), 1, zero, 0, g.GT.data(), 1, n, b_.mu.data(), 1, p);
    lane_dots<W, false>(m, Az.data(), 1, zero, 0, g.A.data(), 1, m, b_.z.data(), 1, n);
    lane_dots<W, false>(p, Gz.data(), 1, zero, 0, g.GT.data(), n, 1, b_.z.data(), 1, n);
    T qmax[W] = {}, smax[W] = {};
    for (index_t i = 0; i < n; ++i) {
      T *st = at(b_.st, i), *nu = at(b_.nu, i);
      const T *a = at(Qz, i), *b = at(Atl, i), *c = at(Gtm, i), *q = at(g.q, i), *ab = at(b_.ab, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        st[l] = a[l] + b[l] + c[l];
        nu[l] = ab[l] != 0 ? -(st[l] + q[l]) : T(0);
        qmax[l] = lmax(qmax[l], std::abs(q[l]));
        smax[l] = lmax(smax[l], std::abs(st[l]));
      }
    }
    // signs to tol of the dual scale, then clipped
    const T tol = s_.tol;
    bool sign_ok[W];
    T lim[W];
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      sign_ok[l] = true;
      lim[l] = tol * (1 + lmax(qmax[l], smax[l]));
    }
    for (index_t r = 0; r < p; ++r) {
      T* mu = at(b_.mu, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        sign_ok[l] = sign_ok[l] && !(mu[l] < -lim[l]);
        mu[l] = lmax(mu[l], T(0));
      }
    }
    for (index_t i = 0; i < n; ++i) {
      T* nu = at(b_.nu, i);
      const T* ab = at(b_.ab, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        if (ab[l] < 0) {
          sign_ok[l] = sign_ok[l] && !(nu[l] > lim[l]);
          nu[l] = lmin(nu[l], T(0));
        } else if (ab[l] > 0) {
          sign_ok[l] = sign_ok[l] && !(nu[l] < -lim[l]);
          nu[l] = lmax(nu[l], T(0));
        }
      }
    }
    // the stopping rule on the problem (qp.hpp's measure), at tol·kMargin; Aᵀλ, Qz, Az, Gz do
    // not change with the clip, Gᵀμ does
    lane_dots<W, false>(n, Gtm.data(), 1, zero, 0, g.GT.data(), 1, n, b_.mu.data(), 1, p);
    T pres[W] = {}, pscale[W] = {}, dres[W] = {}, dsc[W] = {}, numax[W] = {}, bterm[W] = {},
      zQz[W] = {}, qz[W] = {}, cl[W] = {}, hm[W] = {};
    for (index_t k = 0; k < m; ++k) {
      const T *az = at(Az, k), *c = at(g.c, k), *lk = at(b_.lam, k);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        pscale[l] = max_of(pscale[l], std::abs(az[l]), std::abs(c[l]));
        pres[l] = lmax(pres[l], std::abs(az[l] - c[l]));
        cl[l] += c[l] * lk[l];
      }
    }
    for (index_t r = 0; r < p; ++r) {
      const T *gz = at(Gz, r), *h = at(g.h, r), *mu = at(b_.mu, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        pscale[l] = max_of(pscale[l], std::abs(gz[l]), std::abs(h[l]));
        pres[l] = lmax(pres[l], gz[l] - h[l]);
        hm[l] += h[l] * mu[l];
      }
    }
    for (index_t i = 0; i < n; ++i) {
      const T *z = at(b_.z, i), *nu = at(b_.nu, i), *mL = at(g.mL, i), *mU = at(g.mU, i),
              *lo = at(g.lbz, i), *hi = at(g.ubz, i), *a = at(Qz, i), *q = at(g.q, i),
              *b = at(Atl, i), *c = at(Gtm, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        pscale[l] = lmax(pscale[l], std::abs(z[l]));
        if (mL[l] != 0) pres[l] = lmax(pres[l], lo[l] - z[l]);
        if (mU[l] != 0) pres[l] = lmax(pres[l], z[l] - hi[l]);
        bterm[l] += nu[l] > 0 ? nu[l] * hi[l] : nu[l] < 0 ? nu[l] * lo[l] : T(0);
        dres[l] = lmax(dres[l], std::abs(a[l] + q[l] + b[l] + c[l] + nu[l]));
        numax[l] = lmax(numax[l], std::abs(nu[l]));
        dsc[l] = max_of(dsc[l], std::abs(a[l]), std::abs(q[l]), std::abs(b[l]), std::abs(c[l]));
        zQz[l] += z[l] * a[l];
        qz[l] += q[l] * z[l];
      }
    }
    for (int l = 0; l < W; ++l) {
      if (!live_[l]) continue;
      if (!finite[l]) continue;  // kLaneNotPolished: the scalar solver's own polish decides
      const Measures<T> M = lane_measures(pres[l], pscale[l], dres[l], dsc[l], numax[l], zQz[l],
                                          qz[l], cl[l], hm[l], bterm[l]);
      outcome[l] = sign_ok[l] && M.ok(s_.tol * T(kMargin)) ? kLaneAccepted : kLaneRejected;
    }
  }
};

// Writes lane l's accepted polish as element b's answer (solve_loaded's outputs), with the
// backward pass's state where out.active asks for it: the adjoint's active set of the answer
// and, where it is the polish's set, the polish's factorization compacted to F and R
// (qp_adjoint.hpp pack_factor's form: free coordinates, then A's rows, then the active rows).
// w: the element, loaded (for G, h, lb, ub).
template <class T, int W>
void lane_polish_store(const LaneGroup<T, W>& g, const LanePolishBuffers<T, W>& pb, int l,
                       const QPOutput<T>& out, index_t b, const QPWorkspace<T>& w) {
  const index_t n = g.n, m = g.m, p = g.p, N = pb.N;
  T* z = out.z + b * n;
  T* lam = out.lam + b * m;
  T* mu = out.mu + b * p;
  T* nu = out.nu + b * n;
  for (index_t j = 0; j < n; ++j) {
    z[j] = pb.z[j * W + l];
    nu[j] = pb.nu[j * W + l];
  }
  for (index_t k = 0; k < m; ++k) lam[k] = pb.lam[k * W + l];
  for (index_t r = 0; r < p; ++r) mu[r] = pb.mu[r * W + l];
  out.info[b] = kQPSolved;
  out.iterations[b] = g.it_done[l];
  if (out.active == nullptr) return;
  std::int8_t* act = out.active + b * (p + n + 1);
  adjoint_active_set<T>(n, p, MatMap<T>(const_cast<T*>(w.Gf.data()), p, n), w.hf.data(),
                        w.lbf.data(), w.ubf.data(), z, mu, nu, act);
  if (out.factor == nullptr) return;
  // the polish's set against the adjoint's; idx: the compacted system's rows in the lanes' K
  index_t n1 = 0, k = m, K1 = 0;
  for (index_t j = 0; j < n; ++j) {
    const bool fixed = pb.ab[j * W + l] != 0;
    if (fixed != (act[p + j] != 0)) return;
    n1 += fixed ? 0 : 1;
  }
  for (index_t r = 0; r < p; ++r) {
    const bool on = pb.ar[r * W + l] != 0;
    if (on != (act[r] != 0)) return;
    k += on ? 1 : 0;
  }
  if (k > n1) return;
  index_t idx[kMaxLaneN];
  for (index_t j = 0; j < n; ++j)
    if (pb.ab[j * W + l] == 0) idx[K1++] = j;
  for (index_t kk = 0; kk < m; ++kk) idx[K1++] = n + kk;
  for (index_t r = 0; r < p; ++r)
    if (pb.ar[r * W + l] != 0) idx[K1++] = n + m + r;
  T* o = out.factor + b * adjoint_factor_size(n, m, p);
  for (index_t a = 1; a < K1; ++a)
    for (index_t c = 0; c < a; ++c) o[packed_row(a) + c] = pb.K[(idx[a] * N + idx[c]) * W + l];
  for (index_t a = 0; a < K1; ++a) o[packed_size(K1) + a] = pb.d[idx[a] * W + l];
  act[p + n] = 1;
}

}  // namespace qp
}  // namespace fastkkt
