// fastkkt/qp_lanes.hpp — the interior-point iterations of W small QPs at once, one problem per
// SIMD lane: an accelerator in front of qp.hpp's per-element solver.
//
// Mathematics: exactly qp.hpp's primal-dual Mehrotra method (see its opening comment): the same
// start (CVXOPT's, W = I, slacks and multipliers shifted to be ≥ 1), each iteration the reduced
// system
//     [ H + ρI   Aᵀ  ] [ Δz ]           H = Q + GᵀWG + Σ,  W = diag(μ/s),
//     [ A       −δI  ] [ Δλ ] = …,      Σ = diag(ν_l/t_l + ν_u/t_u),
// factored by the engine's interleaved natural-order LDLᵀ (see "Factorization" below), the
// affine predictor (unrefined solve), σ = (μ̄_aff/μ̄)³, the
// corrector with the second-order term and one refinement step against the unregularized
// system, one step length α = min(1, 0.995·α_max) per lane (without qp.hpp's centrality
// safeguard: a lane that cycles ends at kLaneMaxIter and goes to the scalar solver from
// scratch, which has it); ρ, δ and the stopping rule
// (qp.hpp's reduced measures at the polish's trial tolerance polish_try_tol) are qp.hpp's own
// constants.
//
// Factorization. Each iteration assembles K_reg = [H + ρI, Aᵀ; A, −δI] of the W lanes in the
// engine's interleaved layout (entry (i, j) of lane w at ((i·N + j)·W + w), N = n + m) and
// factors it with factor_natural_lanes<T, W> (ldlt_lanes.hpp) with Cholesky's acceptance
// (pivot_tol = 0, kmax = 0, knorm = +∞: n positive pivots, then m negative ones, however small,
// as qp_quasidefinite.hpp does for one problem); the solves are solve_natural_lanes<T, W>. A
// lane whose factorization breaks down (a pivot of the wrong sign or not finite) stops and goes
// to the scalar solver from scratch. A group of one element runs the same kernels with W = 1,
// whose per-lane operations are those of the W-wide ones (ldlt_lanes.hpp; the ctest twins), so
// a problem gets the same bits in either. (Until 2026-11-29 the lanes had their own Cholesky of
// H + ρI, then of the Schur complement XᵀX + δI with X = L⁻¹Aᵀ: the same K_reg, other bits.)
//
// Layout: W = lanes<T>() problems (interleave.hpp: one vector register of T), every vector and
// matrix entry stored [index][lane], so each scalar operation of the scalar solver becomes one
// vector operation over W problems; the short dependent loops of a small problem (n ≈ 10:
// latency-bound, qp.hpp) then carry W independent problems each. A lane that has met the rule,
// failed, or run out of iterations is frozen (its updates masked); the group iterates while any
// lane does. Every lane's arithmetic is its own (no reduction across lanes, the same operations
// whichever lane a problem sits in and whatever its neighbours hold), so a problem's result does
// not depend on the group, the batch, or the thread count.
//
// Hand-off (qp_lanes_batch.hpp drives it). Before the lanes iterate, qp.hpp's PSD test of Q runs
// in the lanes (lane_psd: the same factorization, so the same verdict); a lane that fails it goes
// to the scalar solver, which reports status 2. A lane that meets the rule at iteration k is
// polished in the lanes (qp_lanes_polish.hpp: qp.hpp's active-set polish, W at a time); where
// that is accepted it is the element's answer. Otherwise the lane hands its iterate to the
// scalar ElementSolver (qp.hpp, ElementSolver::run with a warm start at iteration k), which does
// the rest exactly as for its own iterates: further iterations and polishes, the check on the
// full problem, the infeasibility certificates, max_iter and the statuses. A lane that does
// not meet the rule within kLaneMaxIter iterations (or max_iter), whose factorization breaks
// down, whose step length collapses or whose iterate goes non-finite — infeasible and unbounded
// problems among them — is solved by the scalar solver from scratch, as if the lanes had never
// seen it. Which problems take this path (lane_load): every coordinate free (lb < ub, no
// fixed coordinate to eliminate), every h finite (no row to drop), all data finite; and the
// call's sizes small (lanes_pay: n + m ≤ 32, p ≤ 64, whatever the batch size, so that an
// element's result never depends on its batch). Everything else is qp.hpp's path unchanged.
// The lane width is a template parameter: full groups run W = lanes<T>() lanes, a group of a
// single element (a batch of one, the tail of a batch of kW + 1) runs LaneGroup<T, 1> — the same
// per-lane operations in the same order (no FMA contraction, -ffp-contract=off; no reduction
// across lanes), so the same bits as in a W-wide group, without W − 1 lanes of copied work.
// BENCH_QP.md's tiny (B = 1, n = 10, p = 20; wall per call, 20000 calls, one thread, the W = 8
// build and this one alternately, PIQP in the same process, on the shared 2-core machine under a
// load of 4): 267–294 → 152–171 µs, 0.55–0.67× PIQP → 1.15–1.23×. A tail of 2 ≤ k < W elements
// still runs a full W group (a narrower instantiation would cost compile time per ISA variant).
//
// Measured (CPU time, one thread, medians of 3 runs on the shared 2-core avx512 machine, the
// main build 758c6ae side by side, PIQP in the same process): mpc (B = 4096, n = 12, m = 4,
// box) 251 → 121 ms, 2.0× PIQP → 4.3×; scqpth_small (B = 32, n = 10, p = 20) 2.19 → 1.80 ms,
// 2.4× → 3.3×. Iteration counts are those of the scalar path (mpc, scqpth_small: the same for
// every element). Since 2026-11-29 the PSD test and the polish run in the lanes too, each element
// is read once, and every lanewise loop is vectorized (#pragma omp simd; lmin/lmax: GCC had left
// the step-length test and much of step, newton and check as scalar code): mpc 2026-11-29
// d916691 → 991d706 about 0.53× the time (one thread, alternated, three steps multiplied),
// scqpth_small about 0.63×. What is left (perf, mpc): the iterations — the factorizations and
// solves of K_reg ~30%, the vector work of step, newton, residuals and check ~25% — and the
// lanes of a group idle once their problem is done (the group runs to its slowest problem:
// 6.55 iterations for a mean of 5.6 on mpc, 14% of lane iterations idle; 29% on scqpth_small). The size limits (feasible_qp, B = 256, CPU ms
// main → lanes): n, m, p = 8, 0, 8: 13.6 → 8.6; 20, 4, 30: 105 → 90; 30, 2, 20: 70 → 53;
// 30, 2, 60: 232 → 217; 24, 8, 64: 189 → 192 — GᵀWG's pn² takes over and the gain is gone.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "fastkkt/interleave.hpp"
#include "fastkkt/qp.hpp"

namespace fastkkt {
namespace qp {

constexpr int kLaneMaxIter = 40;  // iterations in lanes before a problem goes back to scratch

// The lane path's shapes: small enough that one problem's loops are latency-bound. By the shapes
// only, never the batch size: an element's result must not depend on the batch it came in
// (fastkkt.dask's chunks, of any size, give the NumPy function's bits; API.md).
inline bool lanes_pay(index_t n, index_t m, index_t p) { return n >= 1 && n + m <= 32 && p <= 64; }
constexpr index_t kMaxLaneN = 32 + 64;  // the largest n + m + p that lanes_pay admits

// std::max and std::min by value (the same results, NaN included: lmax(a, b) = a < b ? b : a,
// lmin(a, b) = b < a ? b : a), and std::max({a, b, …}) as their left fold (max_element's value).
// The lane loops vectorize with these; with std::max/std::min, which return a reference, a
// conditional one (x = c ? std::min(x, r) : x) stayed scalar compare-and-branch code, as did
// the initializer_list form.
template <class T>
inline T lmax(T a, T b) {
  return a < b ? b : a;
}
template <class T>
inline T lmin(T a, T b) {
  return b < a ? b : a;
}
template <class T>
inline T max_of(T a) {
  return a;
}
template <class T, class... R>
inline T max_of(T a, T b, R... r) {
  return max_of(lmax(a, b), r...);
}

// The stopping rule's measures (qp.hpp's Measures, as `measure` forms them) of one lane from its
// accumulated pieces: the largest primal and dual residuals and their scales, the largest |ν|,
// and the gap's terms zᵀQz, qᵀz, cᵀλ, hᵀμ and the bounds' term.
template <class T>
Measures<T> lane_measures(T pres, T pscale, T dres, T dscale, T numax, T zQz, T qz, T cl, T hm,
                          T bterm) {
  Measures<T> M{};
  M.pres = pres;
  M.pscale = 1 + pscale;
  M.dres = dres;
  M.dscale = 1 + lmax(dscale, numax);
  M.gap = std::abs(zQz + qz + cl + hm + bterm);
  M.gscale = 1 + std::abs(zQz / 2 + qz) +
             std::max({std::abs(zQz), std::abs(qz), std::abs(cl), std::abs(hm), std::abs(bterm)});
  return M;
}

// W problems interleaved [index][lane] (W = lanes<T>(), one vector register, or 1 for a group
// of one element); sized once per thread for (n, m, p).
template <class T, int W_ = lanes<T>()>
struct LaneGroup {
  static constexpr int W = W_;
  index_t n = 0, m = 0, p = 0;
  // data
  std::vector<T> Q, A, GT, q, c, h, mL, mU, lbz, ubz, rho;
  // iterate, steps, residuals
  std::vector<T> z, lam, sg, mu, tl, nl, tu, nu;
  std::vector<T> dz, dlam, dsg, dmu, dtl, dnl, dtu, dnu;
  std::vector<T> az, alam, asg, amu, atl, anl, atu, anu;
  std::vector<T> rd, rp, rg, rl, ru, rcg, rcl, rcu, b1, b2, e1, e2, x1, y1;
  std::vector<T> Qz, Atl, Gtm, Az, Gz, wg, tmp, GW;
  // H (lower, unregularized); K_reg = [H + ρI, Aᵀ; A, −δI] in the engine's interleaved layout
  // (ldlt_lanes.hpp), overwritten by its unit lower L, with D and the kernel's scratch; ys: a
  // right-hand side of K_reg (N×W, N = n + m)
  std::vector<T> H, K, Kd, KU, ys;
  // per lane: 1 while iterating; the outcome (0 scratch, 1 handed over at iteration it_done)
  std::vector<std::int8_t> run, done;
  std::vector<int> it_done;

  LaneGroup(index_t n_, index_t m_, index_t p_) : n(n_), m(m_), p(p_) {
    const size_t N = static_cast<size_t>(std::max<index_t>(n, 1)) * W;
    const size_t M = static_cast<size_t>(std::max<index_t>(m, 1)) * W;
    const size_t P = static_cast<size_t>(std::max<index_t>(p, 1)) * W;
    Q.resize(N * n);
    H.resize(N * n);
    A.resize(M * n);
    GT.resize(P * n);
    GW.resize(P * n);
    const size_t NK = static_cast<size_t>(n + m);
    K.resize(NK * NK * W);
    Kd.resize(NK * W);
    KU.resize(5 * NK * W);
    ys.resize(NK * W);
    for (auto* v :
         {&q,   &mL,  &mU,  &lbz, &ubz, &z,  &tl, &nl,  &tu,  &nu, &dz, &dtl, &dnl, &dtu, &dnu, &az,
          &atl, &anl, &atu, &anu, &rd,  &rl, &ru, &rcl, &rcu, &b1, &e1, &x1,  &Qz,  &Atl, &Gtm})
      v->resize(N);
    for (auto* v : {&c, &lam, &dlam, &alam, &rp, &b2, &e2, &y1, &Az}) v->resize(M);
    for (auto* v : {&h, &sg, &mu, &dsg, &dmu, &asg, &amu, &rg, &rcg, &Gz, &wg, &tmp}) v->resize(P);
    rho.resize(W);
    run.resize(W);
    done.resize(W);
    it_done.resize(W);
  }
};

// Copies element b of P into lane l of g — the values load_element gives the scalar solver
// (sym(Q) as Q_ij/2 + Q_ji/2) — and says whether it can take the lane path: every coordinate free
// (lb < ub), all data finite (h included: no row to drop). False: lane l holds a partial copy,
// which the caller overwrites.
template <class T, int W>
bool lane_load(const QPProblem<T>& P, index_t b, LaneGroup<T, W>& g, int l) {
  const index_t n = P.n, m = P.m, p = P.p;
  const T* lb = P.lb.at(P.batch, b);
  const T* ub = P.ub.at(P.batch, b);
  const T* q = P.q.at(P.batch, b);
  for (index_t j = 0; j < n; ++j) {
    const T lo = lb[j * P.lb.s0], hi = ub[j * P.ub.s0], qj = q[j * P.q.s0];
    if (!(lo < hi) || !std::isfinite(qj)) return false;  // (a NaN bound fails lo < hi)
    g.q[j * W + l] = qj;
    g.mL[j * W + l] = std::isfinite(lo) ? T(1) : T(0);
    g.mU[j * W + l] = std::isfinite(hi) ? T(1) : T(0);
    g.lbz[j * W + l] = std::isfinite(lo) ? lo : T(0);
    g.ubz[j * W + l] = std::isfinite(hi) ? hi : T(0);
  }
  const T* Q = P.Q.at(P.batch, b);
  T qmax = 0;
  bool fin = true;
  for (index_t j = 0; j < n; ++j)
    for (index_t i = j; i < n; ++i) {
      const T v = Q[i * P.Q.s0 + j * P.Q.s1] / 2 + Q[j * P.Q.s0 + i * P.Q.s1] / 2;
      g.Q[(i + j * n) * W + l] = v;
      g.Q[(j + i * n) * W + l] = v;
      fin = fin && std::isfinite(v);
      qmax = std::max(qmax, std::abs(v));
    }
  const T* A = P.A.at(P.batch, b);
  for (index_t k = 0; k < m; ++k)
    for (index_t j = 0; j < n; ++j) {
      const T v = A[k * P.A.s0 + j * P.A.s1];
      g.A[(k + j * m) * W + l] = v;
      fin = fin && std::isfinite(v);
    }
  const T* G = P.G.at(P.batch, b);
  for (index_t r = 0; r < p; ++r)
    for (index_t j = 0; j < n; ++j) {
      const T v = G[r * P.G.s0 + j * P.G.s1];
      g.GT[(j + r * n) * W + l] = v;
      fin = fin && std::isfinite(v);
    }
  const T* c = P.c.at(P.batch, b);
  for (index_t k = 0; k < m; ++k) {
    const T v = c[k * P.c.s0];
    g.c[k * W + l] = v;
    fin = fin && std::isfinite(v);
  }
  const T* h = P.h.at(P.batch, b);
  for (index_t r = 0; r < p; ++r) {
    const T v = h[r * P.h.s0];
    g.h[r * W + l] = v;
    fin = fin && std::isfinite(v);
  }
  g.rho[l] = ipm_reg<T>() * std::max(T(1), qmax);  // as ElementSolver::q_is_psd
  return fin;
}

// Copies lane l's iterate into the scalar workspace (reduced = full: no fixed coordinate, no
// dropped row), for ElementSolver::run's warm start.
template <class T, int W>
void lane_store(const LaneGroup<T, W>& g, int l, QPWorkspace<T>& w) {
  for (index_t i = 0; i < g.n; ++i) {
    w.z[i] = g.z[i * W + l];
    w.tl[i] = g.tl[i * W + l];
    w.nl[i] = g.nl[i * W + l];
    w.tu[i] = g.tu[i * W + l];
    w.nu[i] = g.nu[i * W + l];
  }
  for (index_t k = 0; k < g.m; ++k) w.lam[k] = g.lam[k * W + l];
  for (index_t r = 0; r < g.p; ++r) {
    w.sg[r] = g.sg[r * W + l];
    w.mu[r] = g.mu[r * W + l];
  }
}

// out = init ± Σₖ a[k·sa]∘b[k·sb] (k in order, lanewise; vectors of W lanes), accumulated in a
// local vector: out may alias init but not a or b, and the sum stays in a register.
template <int W, bool Sub, class T>
inline void lane_dot(T* out, const T* init, const T* a, index_t sa, const T* b, index_t sb,
                     index_t len) {
  T acc[W];
#pragma omp simd
  for (int l = 0; l < W; ++l) acc[l] = init[l];
  for (index_t k = 0; k < len; ++k) {
    const T* ak = a + k * sa * W;
    const T* bk = b + k * sb * W;
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      if constexpr (Sub)
        acc[l] -= ak[l] * bk[l];
      else
        acc[l] += ak[l] * bk[l];
    }
  }
#pragma omp simd
  for (int l = 0; l < W; ++l) out[l] = acc[l];
}

// lane_dot for `count` outputs o = 0, 1, …: out_o = init_o ± Σₖ a_o[k·sa]∘b[k·sb] with out_o at
// out + o·so·W, init_o at init + o·si·W (si = 0: one init for all) and a_o at a + o·ra·W. Four
// outputs at a time, so that four independent sums are in flight where one sum waited on each
// addition's latency (a small problem's loops are latency-bound, qp.hpp); each output gets
// lane_dot's operations in lane_dot's order, so the same bits. out_o may alias init_o only.
template <int W, bool Sub, class T>
inline void lane_dots(index_t count, T* out, index_t so, const T* init, index_t si, const T* a,
                      index_t ra, index_t sa, const T* b, index_t sb, index_t len) {
  constexpr int R = 4;
  index_t o = 0;
  for (; o + R <= count; o += R) {
    T acc[R][W];
    for (int r = 0; r < R; ++r)
#pragma omp simd
      for (int l = 0; l < W; ++l) acc[r][l] = init[(o + r) * si * W + l];
    for (index_t k = 0; k < len; ++k) {
      const T* bk = b + k * sb * W;
      for (int r = 0; r < R; ++r) {
        const T* ak = a + ((o + r) * ra + k * sa) * W;
#pragma omp simd
        for (int l = 0; l < W; ++l) {
          if constexpr (Sub)
            acc[r][l] -= ak[l] * bk[l];
          else
            acc[r][l] += ak[l] * bk[l];
        }
      }
    }
    for (int r = 0; r < R; ++r)
#pragma omp simd
      for (int l = 0; l < W; ++l) out[(o + r) * so * W + l] = acc[r][l];
  }
  for (; o < count; ++o)
    lane_dot<W, Sub>(out + o * so * W, init + o * si * W, a + o * ra * W, sa, b, sb, len);
}

template <class T, int W>
class LaneSolver {
  using L_t = T[W];

 public:
  LaneSolver(LaneGroup<T, W>& g, const QPSettings<T>& s) : g_(g), s_(s) {}

  // Iterates the lanes with g.run[l] = 1; on return g.done[l] = 1 where lane l met the rule
  // (at iteration g.it_done[l]), else 0.
  void run() {
    auto& g = g_;
#pragma omp simd
    for (int l = 0; l < W; ++l) g.done[l] = 0;
    start();
    const T try_tol = polish_try_tol(s_.tol);
    const int cap = std::min(s_.max_iter, kLaneMaxIter);
    for (int it = 0;; ++it) {
      residuals();
      check(it, try_tol, cap);
      bool any = false;
      for (int l = 0; l < W; ++l) any = any || g.run[l] != 0;
      if (!any) return;
      step();
    }
  }

 private:
  LaneGroup<T, W>& g_;
  const QPSettings<T>& s_;

  T* at(std::vector<T>& v, index_t i) { return v.data() + i * W; }

  // H = Q + GᵀWG + Σ (lower) from g.wg, and its factorization; lanes that break down stop.
  void build_factor() {
    auto& g = g_;
    const index_t n = g.n, m = g.m, p = g.p;
    for (index_t r = 0; r < p; ++r)
      for (index_t j = 0; j < n; ++j) {
        T* gw = at(g.GW, j + r * n);
        const T *wr = at(g.wg, r), *gj = at(g.GT, j + r * n);
#pragma omp simd
        for (int l = 0; l < W; ++l) gw[l] = wr[l] * gj[l];
      }
    // H_ij = Q_ij + Σ_r G_ri·(w_r·G_rj), with w_r·G_rj from GW = diag(w)G, i = j … n − 1
    for (index_t j = 0; j < n; ++j)
      lane_dots<W, false>(n - j, at(g.H, j + j * n), 1, at(g.Q, j + j * n), 1, at(g.GT, j), 1, n,
                          at(g.GW, j), n, p);
    for (index_t i = 0; i < n; ++i) {
      T* Hp = at(g.H, i + i * n);
      const T *mL = at(g.mL, i), *mU = at(g.mU, i), *nl = at(g.nl, i), *tl = at(g.tl, i),
              *nu = at(g.nu, i), *tu = at(g.tu, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) Hp[l] += mL[l] * nl[l] / tl[l] + mU[l] * nu[l] / tu[l];
    }
    // K_reg's lower triangle, row-major per lane, factored by the engine's natural-order LDLᵀ
    // with Cholesky's acceptance (pivot_tol = 0, kmax = 0, knorm = +∞: every pivot of the right
    // sign, n positive then m negative, is taken), as qp_quasidefinite.hpp does for one problem
    const index_t N = n + m;
    T* C = g.K.data();
    for (index_t i = 0; i < n; ++i)
      for (index_t j = 0; j <= i; ++j) {
        T* c = C + (i * N + j) * W;
        const T* h = at(g.H, i + j * n);
#pragma omp simd
        for (int l = 0; l < W; ++l) c[l] = h[l] + (i == j ? g.rho[l] : T(0));
      }
    const T delta = ipm_reg<T>();
    for (index_t k = 0; k < m; ++k) {
      T* row = C + (n + k) * N * W;
      for (index_t j = 0; j < n; ++j) {
        const T* a = at(g.A, k + j * m);
#pragma omp simd
        for (int l = 0; l < W; ++l) row[j * W + l] = a[l];
      }
      for (index_t j = n; j < n + k; ++j)
#pragma omp simd
        for (int l = 0; l < W; ++l) row[j * W + l] = 0;
#pragma omp simd
      for (int l = 0; l < W; ++l) row[(n + k) * W + l] = -delta;
    }
    T kmax[W], knorm[W], flags[W];
    bool ok[W];
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      kmax[l] = 0;
      knorm[l] = std::numeric_limits<T>::infinity();
    }
    factor_natural_lanes<T, W>(C, g.Kd.data(), N, n, kmax, knorm, g.KU.data(), ok, flags, T(0));
#pragma omp simd
    for (int l = 0; l < W; ++l)
      if (!ok[l] || !std::isfinite(g.rho[l])) g.run[l] = 0;
  }

  // [x; y] = K_reg⁻¹[b1; b2] with the factorization of build_factor.
  void solve_reg(const std::vector<T>& b1, const std::vector<T>& b2, std::vector<T>& x,
                 std::vector<T>& y) {
    auto& g = g_;
    const index_t n = g.n, m = g.m;
    T* v = g.ys.data();
    for (index_t i = 0; i < n * W; ++i) v[i] = b1[i];
    for (index_t i = 0; i < m * W; ++i) v[n * W + i] = b2[i];
    solve_natural_lanes<T, W>(g.K.data(), g.Kd.data(), n + m, v);
    for (index_t i = 0; i < n * W; ++i) x[i] = v[i];
    for (index_t i = 0; i < m * W; ++i) y[i] = v[n * W + i];
  }

  // Solve with `refine` steps of iterative refinement against the unregularized system.
  void solve(std::vector<T>& b1, std::vector<T>& b2, std::vector<T>& x, std::vector<T>& y,
             int refine) {
    auto& g = g_;
    const index_t n = g.n, m = g.m;
    solve_reg(b1, b2, x, y);
    for (int s = 0; s < refine; ++s) {
      // e = b − K[x; y], K = [H Aᵀ; A 0] with H's lower triangle
      for (index_t i = 0; i < n; ++i) {
        T* e = at(g.e1, i);
        // H's lower triangle: row i left of the diagonal, then column i from the diagonal down
        lane_dot<W, true>(e, b1.data() + i * W, at(g.H, i), n, x.data(), 1, i);
        lane_dot<W, true>(e, e, at(g.H, i + i * n), 1, at(x, i), 1, n - i);
        lane_dot<W, true>(e, e, at(g.A, i * m), 1, y.data(), 1, m);
      }
      lane_dots<W, true>(m, g.e2.data(), 1, b2.data(), 1, g.A.data(), 1, m, x.data(), 1, n);
      solve_reg(g.e1, g.e2, g.x1, g.y1);
      for (index_t i = 0; i < n * W; ++i) x[i] += g.x1[i];
      for (index_t k = 0; k < m * W; ++k) y[k] += g.y1[k];
    }
  }

  void start() {
    auto& g = g_;
    const index_t n = g.n, m = g.m, p = g.p;
    for (index_t i = 0; i < p * W; ++i) g.wg[i] = 1;
    for (index_t i = 0; i < n * W; ++i) {
      g.tl[i] = g.tu[i] = 1;
      g.nl[i] = g.mL[i];
      g.nu[i] = g.mU[i];
    }
    build_factor();
    for (index_t i = 0; i < n; ++i) {
      T* b = at(g.b1, i);
      const T *q = at(g.q, i), *mL = at(g.mL, i), *mU = at(g.mU, i), *lo = at(g.lbz, i),
              *hi = at(g.ubz, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) b[l] = -q[l];
      for (index_t r = 0; r < p; ++r) {
        const T *gt = at(g.GT, i + r * n), *hr = at(g.h, r);
#pragma omp simd
        for (int l = 0; l < W; ++l) b[l] += gt[l] * hr[l];
      }
#pragma omp simd
      for (int l = 0; l < W; ++l) b[l] += mL[l] * lo[l] + mU[l] * hi[l];
    }
    for (index_t k = 0; k < m * W; ++k) g.b2[k] = g.c[k];
    solve(g.b1, g.b2, g.z, g.lam, 2);
    L_t smin, snrm{}, smax;
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      smin[l] = std::numeric_limits<T>::infinity();
      smax[l] = -std::numeric_limits<T>::infinity();
    }
    for (index_t r = 0; r < p; ++r) {
      T* s = at(g.sg, r);
      const T* hr = at(g.h, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) s[l] = hr[l];
      for (index_t i = 0; i < n; ++i) {
        const T *gt = at(g.GT, i + r * n), *zi = at(g.z, i);
#pragma omp simd
        for (int l = 0; l < W; ++l) s[l] -= gt[l] * zi[l];
      }
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        smin[l] = lmin(smin[l], s[l]);
        smax[l] = lmax(smax[l], s[l]);
        snrm[l] = lmax(snrm[l], std::abs(s[l]));
      }
    }
    for (index_t i = 0; i < n; ++i) {
      T *tl = at(g.tl, i), *tu = at(g.tu, i);
      const T *zi = at(g.z, i), *mL = at(g.mL, i), *mU = at(g.mU, i), *lo = at(g.lbz, i),
              *hi = at(g.ubz, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        tl[l] = mL[l] != 0 ? zi[l] - lo[l] : T(1);
        tu[l] = mU[l] != 0 ? hi[l] - zi[l] : T(1);
        if (mL[l] != 0) {
          smin[l] = lmin(smin[l], tl[l]);
          smax[l] = lmax(smax[l], tl[l]);
          snrm[l] = lmax(snrm[l], std::abs(tl[l]));
        }
        if (mU[l] != 0) {
          smin[l] = lmin(smin[l], tu[l]);
          smax[l] = lmax(smax[l], tu[l]);
          snrm[l] = lmax(snrm[l], std::abs(tu[l]));
        }
      }
    }
    L_t sshift, dshift;
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      const T thr = T(1e-8) * lmax(T(1), snrm[l]);
      sshift[l] = smin[l] <= thr ? 1 - smin[l] : T(0);
      dshift[l] = smax[l] >= -thr ? 1 + smax[l] : T(0);
    }
    for (index_t r = 0; r < p; ++r) {
      T *s = at(g.sg, r), *mu = at(g.mu, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        const T v = s[l];
        s[l] = v + sshift[l];
        mu[l] = -v + dshift[l];
      }
    }
    for (index_t i = 0; i < n; ++i) {
      T *tl = at(g.tl, i), *tu = at(g.tu, i), *nl = at(g.nl, i), *nu = at(g.nu, i);
      const T *mL = at(g.mL, i), *mU = at(g.mU, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        const T a = tl[l], b = tu[l];
        tl[l] = mL[l] != 0 ? a + sshift[l] : T(1);
        nl[l] = mL[l] != 0 ? -a + dshift[l] : T(0);
        tu[l] = mU[l] != 0 ? b + sshift[l] : T(1);
        nu[l] = mU[l] != 0 ? -b + dshift[l] : T(0);
      }
    }
  }

  void residuals() {
    auto& g = g_;
    const index_t n = g.n, m = g.m, p = g.p;
    const T zero[W] = {};
    lane_dots<W, false>(n, g.Qz.data(), 1, zero, 0, g.Q.data(), 1, n, g.z.data(), 1, n);
    lane_dots<W, false>(n, g.Atl.data(), 1, zero, 0, g.A.data(), m, 1, g.lam.data(), 1, m);
    lane_dots<W, false>(n, g.Gtm.data(), 1, zero, 0, g.GT.data(), 1, n, g.mu.data(), 1, p);
    lane_dots<W, false>(m, g.Az.data(), 1, zero, 0, g.A.data(), 1, m, g.z.data(), 1, n);
    lane_dots<W, false>(p, g.Gz.data(), 1, zero, 0, g.GT.data(), n, 1, g.z.data(), 1, n);
    for (index_t i = 0; i < n; ++i) {
      const T *Qz = at(g.Qz, i), *Atl = at(g.Atl, i), *Gtm = at(g.Gtm, i);
      T *rd = at(g.rd, i), *rl = at(g.rl, i), *ru = at(g.ru, i);
      const T *q = at(g.q, i), *nl = at(g.nl, i), *nu = at(g.nu, i), *zi = at(g.z, i),
              *tl = at(g.tl, i), *tu = at(g.tu, i), *mL = at(g.mL, i), *mU = at(g.mU, i),
              *lo = at(g.lbz, i), *hi = at(g.ubz, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        rd[l] = Qz[l] + q[l] + Atl[l] + Gtm[l] - nl[l] + nu[l];
        rl[l] = mL[l] * (-zi[l] + tl[l] + lo[l]);
        ru[l] = mU[l] * (zi[l] + tu[l] - hi[l]);
      }
    }
    for (index_t k = 0; k < m; ++k) {
      const T* Az = at(g.Az, k);
      T* rp = at(g.rp, k);
      const T* c = at(g.c, k);
#pragma omp simd
      for (int l = 0; l < W; ++l) rp[l] = Az[l] - c[l];
    }
    for (index_t r = 0; r < p; ++r) {
      const T* Gz = at(g.Gz, r);
      T* rg = at(g.rg, r);
      const T *s = at(g.sg, r), *h = at(g.h, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) rg[l] = Gz[l] + s[l] - h[l];
    }
  }

  // ElementSolver::reduced_measures per lane; stops the lanes that meet the rule (done), fail
  // (non-finite) or run out of iterations.
  void check(int it, T try_tol, int cap) {
    auto& g = g_;
    const index_t n = g.n, m = g.m, p = g.p;
    L_t pres{}, pscale{}, dres{}, dscale{}, bterm{}, numax{}, zQz{}, qz{}, cl{}, hm{};
    for (index_t k = 0; k < m; ++k) {
      const T *rp = at(g.rp, k), *Az = at(g.Az, k), *c = at(g.c, k), *lk = at(g.lam, k);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        pres[l] = lmax(pres[l], std::abs(rp[l]));
        pscale[l] = max_of(pscale[l], std::abs(Az[l]), std::abs(c[l]));
        cl[l] += c[l] * lk[l];
      }
    }
    for (index_t r = 0; r < p; ++r) {
      const T *Gz = at(g.Gz, r), *h = at(g.h, r), *mr = at(g.mu, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        pres[l] = lmax(pres[l], Gz[l] - h[l]);
        pscale[l] = max_of(pscale[l], std::abs(Gz[l]), std::abs(h[l]));
        hm[l] += h[l] * mr[l];
      }
    }
    for (index_t i = 0; i < n; ++i) {
      const T *zi = at(g.z, i), *mL = at(g.mL, i), *mU = at(g.mU, i), *lo = at(g.lbz, i),
              *hi = at(g.ubz, i), *nl = at(g.nl, i), *nu = at(g.nu, i), *rd = at(g.rd, i),
              *Qz = at(g.Qz, i), *q = at(g.q, i), *Atl = at(g.Atl, i), *Gtm = at(g.Gtm, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        pscale[l] = lmax(pscale[l], std::abs(zi[l]));
        if (mL[l] != 0) pres[l] = lmax(pres[l], lo[l] - zi[l]);
        if (mU[l] != 0) pres[l] = lmax(pres[l], zi[l] - hi[l]);
        bterm[l] += hi[l] * nu[l] - lo[l] * nl[l];
        numax[l] = lmax(numax[l], std::abs(nu[l] - nl[l]));
        dres[l] = lmax(dres[l], std::abs(rd[l]));
        dscale[l] =
            max_of(dscale[l], std::abs(Qz[l]), std::abs(q[l]), std::abs(Atl[l]), std::abs(Gtm[l]));
        zQz[l] += zi[l] * Qz[l];
        qz[l] += q[l] * zi[l];
      }
    }
    for (int l = 0; l < W; ++l) {
      if (g.run[l] == 0) continue;
      const Measures<T> M = lane_measures(pres[l], pscale[l], dres[l], dscale[l], numax[l], zQz[l],
                                          qz[l], cl[l], hm[l], bterm[l]);
      if (!std::isfinite(M.pres + M.dres + M.gap)) {
        g.run[l] = 0;
      } else if (M.ok(try_tol)) {
        g.run[l] = 0;
        g.done[l] = 1;
        g.it_done[l] = it;
      } else if (it >= cap) {
        g.run[l] = 0;
      }
    }
  }

  // Newton direction for complementarity right-hand sides rc (ElementSolver::solve_newton).
  void newton(std::vector<T>& dz, std::vector<T>& dlam, std::vector<T>& dsg, std::vector<T>& dmu,
              std::vector<T>& dtl, std::vector<T>& dnl, std::vector<T>& dtu, std::vector<T>& dnu,
              int refine) {
    auto& g = g_;
    const index_t n = g.n, m = g.m, p = g.p;
    for (index_t r = 0; r < p; ++r) {
      T* t = at(g.tmp, r);
      const T *mu = at(g.mu, r), *rg = at(g.rg, r), *rc = at(g.rcg, r), *s = at(g.sg, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) t[l] = (mu[l] * rg[l] - rc[l]) / s[l];
    }
    for (index_t i = 0; i < n * W; ++i) g.b1[i] = -g.rd[i];
    lane_dots<W, true>(n, g.b1.data(), 1, g.b1.data(), 1, g.GT.data(), 1, n, g.tmp.data(), 1, p);
    for (index_t i = 0; i < n; ++i) {
      T* b = at(g.b1, i);
      const T *mL = at(g.mL, i), *mU = at(g.mU, i), *nl = at(g.nl, i), *nu = at(g.nu, i),
              *rl = at(g.rl, i), *ru = at(g.ru, i), *rcl = at(g.rcl, i), *rcu = at(g.rcu, i),
              *tl = at(g.tl, i), *tu = at(g.tu, i);
#pragma omp simd
      for (int l = 0; l < W; ++l)
        b[l] += mL[l] * (nl[l] * rl[l] - rcl[l]) / tl[l] - mU[l] * (nu[l] * ru[l] - rcu[l]) / tu[l];
    }
    for (index_t k = 0; k < m * W; ++k) g.b2[k] = -g.rp[k];
    solve(g.b1, g.b2, dz, dlam, refine);
    for (index_t r = 0; r < p * W; ++r) dsg[r] = -g.rg[r];
    lane_dots<W, true>(p, dsg.data(), 1, dsg.data(), 1, g.GT.data(), n, 1, dz.data(), 1, n);
    for (index_t r = 0; r < p; ++r) {
      const T* ds = at(dsg, r);
      T* dm = at(dmu, r);
      const T *rc = at(g.rcg, r), *mu = at(g.mu, r), *s = at(g.sg, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) dm[l] = (-rc[l] - mu[l] * ds[l]) / s[l];
    }
    for (index_t i = 0; i < n; ++i) {
      T *a = at(dtl, i), *b = at(dnl, i), *c = at(dtu, i), *d = at(dnu, i);
      const T *mL = at(g.mL, i), *mU = at(g.mU, i), *nl = at(g.nl, i), *nu = at(g.nu, i),
              *rl = at(g.rl, i), *ru = at(g.ru, i), *rcl = at(g.rcl, i), *rcu = at(g.rcu, i),
              *tl = at(g.tl, i), *tu = at(g.tu, i), *dzi = at(dz, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        a[l] = mL[l] * (-rl[l] + dzi[l]);
        b[l] = mL[l] * (-rcl[l] - nl[l] * a[l]) / tl[l];
        c[l] = mU[l] * (-ru[l] - dzi[l]);
        d[l] = mU[l] * (-rcu[l] - nu[l] * c[l]) / tu[l];
      }
    }
  }

  // (the quotient computed in every lane and selected, so that the loop is one vector operation;
  // where Δx ≥ 0 it is discarded)
  static void upd(T* __restrict a, const T* __restrict x, const T* __restrict dx) {
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      const T r = -x[l] / dx[l];
      a[l] = dx[l] < 0 ? lmin(a[l], r) : a[l];
    }
  }

  void max_step(T* a, const std::vector<T>& dsg, const std::vector<T>& dmu,
                const std::vector<T>& dtl, const std::vector<T>& dnl, const std::vector<T>& dtu,
                const std::vector<T>& dnu) {
    auto& g = g_;
#pragma omp simd
    for (int l = 0; l < W; ++l) a[l] = std::numeric_limits<T>::infinity();
    for (index_t r = 0; r < g.p; ++r) {
      upd(a, at(g.sg, r), dsg.data() + r * W);
      upd(a, at(g.mu, r), dmu.data() + r * W);
    }
    // masked bounds have Δt = Δν = 0 (their t = 1, ν = 0), so they never limit the step
    for (index_t i = 0; i < g.n; ++i) {
      upd(a, at(g.tl, i), dtl.data() + i * W);
      upd(a, at(g.nl, i), dnl.data() + i * W);
      upd(a, at(g.tu, i), dtu.data() + i * W);
      upd(a, at(g.nu, i), dnu.data() + i * W);
    }
  }

  void step() {
    auto& g = g_;
    const index_t n = g.n, m = g.m, p = g.p;
    for (index_t r = 0; r < p * W; ++r) g.wg[r] = g.mu[r] / g.sg[r];
    build_factor();
    L_t mubar{}, ncomp{};
    for (index_t r = 0; r < p; ++r) {
      T* rc = at(g.rcg, r);
      const T *s = at(g.sg, r), *mu = at(g.mu, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        rc[l] = s[l] * mu[l];
        mubar[l] += rc[l];
        ncomp[l] += 1;
      }
    }
    for (index_t i = 0; i < n; ++i) {
      T *rcl = at(g.rcl, i), *rcu = at(g.rcu, i);
      const T *mL = at(g.mL, i), *mU = at(g.mU, i), *tl = at(g.tl, i), *nl = at(g.nl, i),
              *tu = at(g.tu, i), *nu = at(g.nu, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        rcl[l] = tl[l] * nl[l] * mL[l];
        rcu[l] = tu[l] * nu[l] * mU[l];
        mubar[l] += rcl[l] + rcu[l];
        ncomp[l] += mL[l] + mU[l];
      }
    }
#pragma omp simd
    for (int l = 0; l < W; ++l) mubar[l] = ncomp[l] > 0 ? mubar[l] / ncomp[l] : T(0);
    newton(g.az, g.alam, g.asg, g.amu, g.atl, g.anl, g.atu, g.anu, 0);
    L_t aa, muaff{}, sigma;
    max_step(aa, g.asg, g.amu, g.atl, g.anl, g.atu, g.anu);
#pragma omp simd
    for (int l = 0; l < W; ++l) aa[l] = lmin(T(1), aa[l]);
    for (index_t r = 0; r < p; ++r) {
      const T *s = at(g.sg, r), *mu = at(g.mu, r), *ds = at(g.asg, r), *dm = at(g.amu, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) muaff[l] += (s[l] + aa[l] * ds[l]) * (mu[l] + aa[l] * dm[l]);
    }
    for (index_t i = 0; i < n; ++i) {
      const T *mL = at(g.mL, i), *mU = at(g.mU, i), *tl = at(g.tl, i), *nl = at(g.nl, i),
              *tu = at(g.tu, i), *nu = at(g.nu, i), *a = at(g.atl, i), *b = at(g.anl, i),
              *c = at(g.atu, i), *d = at(g.anu, i);
#pragma omp simd
      for (int l = 0; l < W; ++l)
        muaff[l] += mL[l] * ((tl[l] + aa[l] * a[l]) * (nl[l] + aa[l] * b[l])) +
                    mU[l] * ((tu[l] + aa[l] * c[l]) * (nu[l] + aa[l] * d[l]));
    }
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      const T ma = ncomp[l] > 0 ? muaff[l] / ncomp[l] : T(0);
      const T ratio = mubar[l] > 0 ? lmin(T(1), lmax(T(0), ma / mubar[l])) : T(0);
      sigma[l] = ncomp[l] > 0 ? ratio * ratio * ratio : T(0);
    }
    for (index_t r = 0; r < p; ++r) {
      T* rc = at(g.rcg, r);
      const T *ds = at(g.asg, r), *dm = at(g.amu, r);
#pragma omp simd
      for (int l = 0; l < W; ++l) rc[l] += ds[l] * dm[l] - sigma[l] * mubar[l];
    }
    for (index_t i = 0; i < n; ++i) {
      T *rcl = at(g.rcl, i), *rcu = at(g.rcu, i);
      const T *mL = at(g.mL, i), *mU = at(g.mU, i), *a = at(g.atl, i), *b = at(g.anl, i),
              *c = at(g.atu, i), *d = at(g.anu, i);
#pragma omp simd
      for (int l = 0; l < W; ++l) {
        rcl[l] += mL[l] * (a[l] * b[l] - sigma[l] * mubar[l]);
        rcu[l] += mU[l] * (c[l] * d[l] - sigma[l] * mubar[l]);
      }
    }
    newton(g.dz, g.dlam, g.dsg, g.dmu, g.dtl, g.dnl, g.dtu, g.dnu, 1);
    L_t alpha;
    max_step(alpha, g.dsg, g.dmu, g.dtl, g.dnl, g.dtu, g.dnu);
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      alpha[l] = lmin(T(1), T(0.995) * alpha[l]);
      if (!(alpha[l] > T(1e-12))) g.run[l] = 0;
      if (g.run[l] == 0) alpha[l] = 0;  // frozen lanes keep their iterate
    }
    auto move = [&alpha](std::vector<T>& x, const std::vector<T>& dx, index_t len) {
      T a[W];  // a local copy: stores to x cannot change it
#pragma omp simd
      for (int l = 0; l < W; ++l) a[l] = alpha[l];
      T* xp = x.data();
      const T* dp = dx.data();
      for (index_t i = 0; i < len; ++i, xp += W, dp += W)
#pragma omp simd
        for (int l = 0; l < W; ++l) xp[l] = a[l] > 0 ? xp[l] + a[l] * dp[l] : xp[l];
    };
    move(g.z, g.dz, n);
    move(g.lam, g.dlam, m);
    move(g.sg, g.dsg, p);
    move(g.mu, g.dmu, p);
    move(g.tl, g.dtl, n);
    move(g.nl, g.dnl, n);
    move(g.tu, g.dtu, n);
    move(g.nu, g.dnu, n);
    {  // masked bounds stay inert
      const T* __restrict mL = g.mL.data();
      const T* __restrict mU = g.mU.data();
      T* __restrict tl = g.tl.data();
      T* __restrict nl = g.nl.data();
      T* __restrict tu = g.tu.data();
      T* __restrict nu = g.nu.data();
#pragma omp simd
      for (index_t i = 0; i < n * W; ++i) {
        const bool lo = mL[i] == 0, hi = mU[i] == 0;
        tl[i] = lo ? T(1) : tl[i];
        nl[i] = lo ? T(0) : nl[i];
        tu[i] = hi ? T(1) : tu[i];
        nu[i] = hi ? T(0) : nu[i];
      }
    }
  }
};

}  // namespace qp
}  // namespace fastkkt
