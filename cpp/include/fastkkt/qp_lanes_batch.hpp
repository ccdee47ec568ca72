// fastkkt/qp_lanes_batch.hpp — the lane path's batch driver: a call's elements in groups of W,
// each group loaded into the lanes (qp_lanes.hpp), its Q tested for positive semidefiniteness,
// iterated, polished (qp_lanes_polish.hpp), and every element the lanes did not answer finished
// by qp.hpp's scalar solver; the per-thread workspaces kept from one call to the next.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "fastkkt/qp.hpp"
#include "fastkkt/qp_lanes.hpp"
#include "fastkkt/qp_lanes_polish.hpp"

namespace fastkkt {
namespace qp {

// Copies lane `from`'s data into lane `to` (a lane without a problem computes on a copy of a
// real one, never on stale or uninitialized values).
template <class T, int W>
void lane_copy(LaneGroup<T, W>& g, int from, int to) {
  for (auto* v : {&g.Q, &g.A, &g.GT, &g.q, &g.c, &g.h, &g.mL, &g.mU, &g.lbz, &g.ubz}) {
    const size_t len = v->size() / W;
    for (size_t i = 0; i < len; ++i) (*v)[i * W + to] = (*v)[i * W + from];
  }
  g.rho[to] = g.rho[from];
}

// ElementSolver::q_is_psd's test for the W lanes at once: the same factorization of
// sym(Q) + psd_shift·I (the engine's natural-order LDLᵀ with Cholesky's acceptance, whose
// per-lane operations are those of the one-problem kernel, ldlt_lanes.hpp), so the same verdict;
// psd[l] = 1 where it holds. Uses g.K, g.Kd, g.KU as scratch.
template <class T, int W>
void lane_psd(LaneGroup<T, W>& g, std::int8_t* psd) {
  const index_t n = g.n;
  T shift[W];
  for (int l = 0; l < W; ++l) shift[l] = 0;
  for (index_t i = 0; i < n * n; ++i) {
    const T* q = g.Q.data() + i * W;
#pragma omp simd
    for (int l = 0; l < W; ++l) shift[l] = lmax(shift[l], std::abs(q[l]));
  }
  for (int l = 0; l < W; ++l) shift[l] = psd_shift(shift[l]);
  T* C = g.K.data();
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j <= i; ++j) {
      T* c = C + (i * n + j) * W;
      const T* q = g.Q.data() + (i + j * n) * W;
#pragma omp simd
      for (int l = 0; l < W; ++l) c[l] = i == j ? q[l] + shift[l] : q[l];
    }
  T kmax[W], knorm[W], flags[W];
  bool ok[W];
  for (int l = 0; l < W; ++l) {
    kmax[l] = 0;
    knorm[l] = std::numeric_limits<T>::infinity();
  }
  factor_natural_lanes<T, W>(C, g.Kd.data(), n, n, kmax, knorm, g.KU.data(), ok, flags, T(0));
  for (int l = 0; l < W; ++l) psd[l] = ok[l] ? 1 : 0;
}

// Elements [g0, g1) (at most W) of P: the eligible ones (read straight into the lanes) whose Q
// passes the PSD test through the lanes and their polish; every element the polish did not
// answer loaded, one after the other, into the workspace w and finished by the scalar solver
// (warm where its lane met the rule, else from scratch; the PSD test not repeated where it
// passed, the polish not where it was rejected).
template <class T, int W>
void solve_group(const QPProblem<T>& P, const QPSettings<T>& S, const QPOutput<T>& out, index_t g0,
                 index_t g1, QPWorkspace<T>& w, LaneGroup<T, W>& g, LanePolishBuffers<T, W>& pb) {
  int first = -1;
  for (int l = 0; l < W; ++l) {
    g.run[l] = 0;
    g.done[l] = 0;
    if (g0 + l >= g1 || !lane_load(P, g0 + l, g, l)) continue;
    g.run[l] = 1;
    if (first < 0) first = l;
  }
  std::int8_t outcome[W] = {}, psd[W] = {};
  if (first >= 0) {
    for (int l = 0; l < W; ++l)
      if (g.run[l] == 0) lane_copy(g, first, l);
    lane_psd(g, psd);
    for (int l = 0; l < W; ++l) {
      if (g.run[l] == 0) {
        psd[l] = 0;  // (a copy's verdict is not the element's)
        continue;
      }
      g.run[l] = psd[l];  // not PSD: the scalar solver's own test reports it
    }
    LaneSolver<T, W>(g, S).run();
    LanePolish<T, W>(g, pb, S).run(outcome);
  }
  for (int l = 0; l < W && g0 + l < g1; ++l) {
    if (outcome[l] == kLaneAccepted) {
      if (out.active != nullptr) load_element(P, g0 + l, w);  // G, h, lb, ub for the adjoint
      lane_polish_store(g, pb, l, out, g0 + l, w);
      continue;
    }
    load_element(P, g0 + l, w);
    w.psd_known = psd[l] != 0;
    if (g.done[l] != 0) {
      lane_store(g, l, w);
      w.polish_failed_at_warm = outcome[l] == kLaneRejected;
      solve_loaded(P, S, out, g0 + l, w, g.it_done[l]);
    } else {
      solve_loaded(P, S, out, g0 + l, w);
    }
  }
}

// The lane path's workspaces, kept by the calling thread from one call to the next while the
// sizes stay the same: a call on one small problem (BENCH_QP.md's tiny, ~100 µs) spent ~15% of
// its time allocating and freeing them (perf). A workspace carries nothing from one element to
// the next (each thread's serves many elements in a call), so neither from one call to the next.
template <class T>
struct LaneScratch {
  index_t n = -1, m = -1, p = -1;
  std::vector<QPWorkspace<T>> ws;
  std::vector<LaneGroup<T>> gs;
  std::vector<LaneGroup<T, 1>> g1s;
  std::vector<LanePolishBuffers<T, LaneGroup<T>::W>> pbs;
  std::vector<LanePolishBuffers<T, 1>> pb1s;

  void fit(index_t n_, index_t m_, index_t p_, int nt, bool wide, bool one) {
    if (n_ != n || m_ != m || p_ != p) {
      ws.clear();
      gs.clear();
      g1s.clear();
      pbs.clear();
      pb1s.clear();
      n = n_;
      m = m_;
      p = p_;
    }
    const auto k = static_cast<size_t>(nt);
    while (ws.size() < k) ws.emplace_back(n, m, p);
    while (wide && gs.size() < k) gs.emplace_back(n, m, p);
    while (wide && pbs.size() < k) pbs.emplace_back(n, m, p);
    while (one && g1s.size() < k) g1s.emplace_back(n, m, p);
    while (one && pb1s.size() < k) pb1s.emplace_back(n, m, p);
  }
};

// solve_qp_batch (qp.hpp) with the lane path where the call's sizes take it (lanes_pay).
template <class T>
void solve_qp_batch_lanes(const QPProblem<T>& P, const QPSettings<T>& S, const QPOutput<T>& out,
                          index_t b0, index_t b1, int nthreads) {
  if (!lanes_pay(P.n, P.m, P.p)) {
    solve_qp_batch(P, S, out, b0, b1, nthreads);
    return;
  }
  constexpr int W = LaneGroup<T>::W;
  const index_t count = b1 - b0;
  if (count <= 0) return;
  const index_t groups = (count + W - 1) / W;
  const double work = static_cast<double>(count) * qp_element_flops(P.n, P.m, P.p);
  const int nt = threads_for(nthreads, groups, work);
  // full groups: W lanes; a group of one element (a batch of one, a tail of one): one lane, the
  // same per-lane arithmetic without W − 1 lanes of copies (qp_lanes.hpp's opening comment)
  static thread_local LaneScratch<T> scratch;
  scratch.fit(P.n, P.m, P.p, nt, count >= 2, count % W == 1 || W == 1);
  auto& ws = scratch.ws;
  auto& gs = scratch.gs;
  auto& g1s = scratch.g1s;
  auto& pbs = scratch.pbs;    // (the lambda below must not name the thread_local: on a pool
  auto& pb1s = scratch.pb1s;  // thread that would be that thread's own, empty, scratch)
  parallel_for(index_t(0), groups, nt, 1, [&](index_t gi, int t) {
    const index_t g0 = b0 + gi * W, g1 = std::min(b1, g0 + W);
    const auto ti = static_cast<size_t>(t);
    if (g1 - g0 == 1)
      solve_group(P, S, out, g0, g1, ws[ti], g1s[ti], pb1s[ti]);
    else
      solve_group(P, S, out, g0, g1, ws[ti], gs[ti], pbs[ti]);
  });
}

}  // namespace qp
}  // namespace fastkkt
