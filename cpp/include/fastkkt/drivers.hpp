// fastkkt/drivers.hpp — the batch drivers: factor, solve with iterative refinement, and solve
// with stored factorizations, for every element of a batch.
//
// For batch element b they solve K x = b (assemble.hpp; for the equality QP
//     [ sym(Q) Aᵀ ] [ z ]   [ −q ]
//     [ A      0  ] [ λ ] = [  c ] ). Per element:
//   1. assemble K into a record (per-thread scratch, or the caller's output array for
//      `factorize_batch`), with max|Kᵢⱼ| and ‖K‖∞;
//      when the units of its blocks are unbalanced, equilibrate it (D K D, equilibrate.hpp);
//   2. factor it in the natural order (fast path; ldlt_lanes.hpp, ldlt_tiled.hpp); if that
//      gives up, assemble again and factor with Bunch–Kaufman pivoting (ldlt.hpp);
//   3. solve, then refine when the factorization asks for it (pivoted, large growth or heavy
//      cancellation): x ← x + K⁻¹(b − Kx) with the residual computed from the original blocks
//      (kkt_residual) until the normwise backward error
//          ‖b − Kx‖∞ / (‖K‖∞‖x‖∞ + ‖b‖∞)
//      is at most ε or stops decreasing (cf. the stopping rule of LAPACK's xSYRFS / xGERFS).
// Which kernel runs, by size and sharing:
//   * N < kBlockedFrom, K varying over the batch (Problem::matrix_varies): W = lanes<T>()
//     problems at a time in the interleaved layout (solve_group, factorize_group,
//     solve_factored_group); problems that need pivoting or refinement finish on the one-problem
//     path;
//   * N ≥ kBlockedFrom: one problem at a time with the tiled factorization, whose tiles are
//     shared among the threads when the batch is too small to be split among them;
//   * one K for the whole batch: factored once; a plain factorization (natural order, no
//     refinement) solves kSharedRhs·W right-hand sides at a time (solve_shared_plain), any other
//     goes the one-problem path, where a thread keeps the factorization for consecutive
//     elements with the same K.
// Each problem's arithmetic is the same in every kernel that can run it (explicit FMAs, fixed
// summation order), so results do not depend on the thread count, on how the batch is grouped,
// or on whether the factorization was stored (factorize) or not (solve): bitwise.
// Nothing here allocates per element, throws inside a parallel region, or knows about Python.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "fastkkt/assemble.hpp"
#include "fastkkt/batch.hpp"
#include "fastkkt/equilibrate.hpp"
#include "fastkkt/ldlt.hpp"
#include "fastkkt/ldlt_lanes.hpp"
#include "fastkkt/ldlt_tiled.hpp"
#include "fastkkt/record.hpp"

namespace fastkkt {

constexpr int kMaxRefineSteps = 5;
// Refinement goes on while each step reduces the backward error to at most this fraction of
// the previous one (LAPACK's xSYRFS asks for ½; near ε the residual's own rounding makes
// progress uneven, and the steps only run for the few elements that ask for refinement).
constexpr double kRefineProgress = 0.9;
// An equilibrated element whose refined backward error stays above this many ε is solved
// again unscaled (solve_element).
constexpr double kScaledFallback = 64;

template <class T>
Status factor_pivoted(const ElementQA<T>& e, index_t n, index_t m, T* rec, Workspace<T>& ws,
                      bool scaled = true);

// Assembles and factors one KKT matrix into `rec`; returns its status.
template <class T>
Status factor_element(const ElementQA<T>& e, index_t n, index_t m, bool check_finite, T* rec,
                      Workspace<T>& ws) {
  const index_t N = n + m;
  Factor<T> F = Factor<T>::view(rec, N, ws.square.data());
  T kmax = 0, knorm = 0, blockmax[2];
  const Status st = assemble(e, n, m, check_finite, F.L, ws.rowsum.data(), kmax, knorm, blockmax);
  if (st != kSolved) return st;
  if (m > n && !e.D2) return kSingular;                                // rank C ≤ n < m and no D₂
  const Scaling sc = choose_scaling(blockmax[0], blockmax[1], n + m);  // unbalanced units: D K D
  if (sc.on) equilibrate(F.L, N, n, sc, ws.rowsum.data(), kmax, knorm);
  const bool natural = N >= kBlockedFrom ? factor_natural_blocked(F, n, kmax, knorm, ws.threads)
                                         : factor_natural(F, n, kmax, knorm, ws.natural_u.data());
  if (!natural) return factor_pivoted(e, n, m, rec, ws);
  pack_factor(F.L, N, rec);
  if (sc.on) mark_scaled(rec, N, sc);
  return kSolved;
}

// x ← K⁻¹b (ws.x from ws.b, N = n + m entries) with the factorization F of element e, refined
// when F asks for it (pivoted, large growth or heavy cancellation) or is of D K D: then x ←
// x + K⁻¹(b − Kx) with the residual of the original blocks (kkt_residual) until the normwise
// backward error is at most ε or stops decreasing. Returns the backward error of the x kept:
// for D K D the larger of the scaled one and the one in the caller's units; NaN where K x
// overflows for the first x; 0 where no refinement ran (not measured).
template <class T>
acc_t<T> solve_refined(const ConstFactor<T>& F, const ElementQA<T>& e, index_t n, index_t m,
                       Workspace<T>& ws) {
  using Acc = acc_t<T>;
  const index_t N = n + m;
  const T* b = ws.b.data();
  T* x = ws.x.data();
  for (index_t i = 0; i < N; ++i) x[i] = b[i];
  const Scaling sc = scaling_of(F);
  if (sc.on) scale_vector(x, n, N, sc, 1);  // D b
  factor_solve(F, x, ws.y.data());
  if (sc.on) scale_vector(x, n, N, sc, 1);  // x = D x'
  // An equilibrated factorization is also held to the backward error in the caller's units:
  // the scaled solve is backward stable for D K D, but when D b is dominated by one block (a
  // right-hand side not in the units of its block, e.g. Q ~ 1e-16 beside q ~ 1 and A ~ 1), the
  // other block's components come out of a cancellation (‖r‖/(‖K‖‖x‖ + ‖b‖) ~ 1e-2 measured),
  // and one refinement step with the original residual repairs them.
  if (!((F.flags & kRefine) || sc.on)) return Acc(0);
  T bnorm = 0;
  for (index_t i = 0; i < N; ++i) bnorm = std::max(bnorm, std::abs(b[i]));
  const T bnorm0 = bnorm;
  const T knorm0 = sc.on ? kkt_norm_inf(e, n, m) : T(0);
  if (sc.on) bnorm = scaled_max(b, n, N, sc, 1);
  Acc prev = std::numeric_limits<Acc>::infinity();
  T* dx = ws.dx.data();
  for (int it = 0; it <= kMaxRefineSteps; ++it) {
    Acc rn = kkt_residual(e, n, m, b, x, ws.r.data(), ws.rlo.data());
    if (!(rn == rn)) {         // K x overflowed: x solves nothing (the first solve) or the last
      if (it == 0) return rn;  // correction spoiled it (back to the previous x)
      for (index_t i = 0; i < N; ++i) x[i] = ws.xprev[i];
      return prev;
    }
    T xn = 0;
    for (index_t i = 0; i < N; ++i) xn = std::max(xn, std::abs(x[i]));
    Acc berr0 = 0;  // in the caller's units
    if (sc.on) {    // D r, D⁻¹ x
      berr0 = rn / (Acc(knorm0) * Acc(xn) + Acc(bnorm0));
      scale_vector(ws.r.data(), n, N, sc, 1);
      rn = scaled_max(ws.r.data(), n, N, sc, 0);
      xn = scaled_max(x, n, N, sc, -1);
    }
    const Acc berr = std::max(rn / (Acc(F.knorm) * Acc(xn) + Acc(bnorm)), berr0);
    if (!(berr > Acc(eps<T>()))) return berr;  // converged (or 0/0 for a zero problem)
    if (berr > Acc(kRefineProgress) * prev) {  // stagnated: keep the better of the last two
      if (!(berr > prev)) return berr;
      for (index_t i = 0; i < N; ++i) x[i] = ws.xprev[i];
      return prev;
    }
    if (it == kMaxRefineSteps) return berr;
    prev = berr;
    for (index_t i = 0; i < N; ++i) {
      ws.xprev[i] = x[i];
      dx[i] = static_cast<T>(ws.r[i]);
    }
    factor_solve(F, dx, ws.y.data());
    if (sc.on) scale_vector(dx, n, N, sc, 1);
    for (index_t i = 0; i < N; ++i) x[i] += dx[i];
  }
  return prev;  // (not reached)
}

// Solves for x = [z; λ] with the factorization `rec` of element e and the right-hand side
// b = [−q; c] (the equality QP's), or b = [q; c] when `negate_q` is false (any right-hand side).
// Returns kSolved, kSingular (below) or a kNonFinite code for q / c. A factorization of D K D
// (equilibrate.hpp) solves x = D (DKD)⁻¹ D b and refines with the scaled residual and norms
// (solve_refined).
// Where that refinement leaves a backward error above kScaledFallback·ε (in the caller's units
// or the scaled ones), the unscaled K is factored with Bunch–Kaufman pivoting (per-thread
// scratch) and the system solved and refined again, and the better of the two answers is
// kept. The case: an equilibrated factorization is backward stable for D K D, not for K, and
// when D b is many orders of magnitude larger in one block than in the other (Q ~ 1e-35 beside
// q, A, c ~ 1: D₁ ~ 1e17, D₂ ~ 1e-17) the natural order's first pivots absorb the small block
// of D b entirely, in the refinement's corrections as in the solve (z = −64 for −1.066, status
// 0, until 2026-11-29); K itself is well conditioned there. The decision depends only on the
// element's factorization and right-hand side, so the stored-factorization path (factorize,
// then solve) gives the same bits as solve. An element whose refined answer still has a backward
// error above √ε (or one that is not a number: K x overflows) solves no nearby system; it is
// reported singular (in T's range), as a non-finite answer is (reject_nonfinite), never solved.
template <class T>
Status solve_element(const T* rec, const ElementQA<T>& e, index_t n, index_t m, const T* q,
                     index_t qs, const T* c, index_t cs, bool check_finite, T* z, T* lam,
                     Workspace<T>& ws, bool negate_q = true) {
  using Acc = acc_t<T>;
  const index_t N = n + m;
  const ConstFactor<T> F = ConstFactor<T>::view(rec, N);
  T* b = ws.b.data();
  T* x = ws.x.data();
  bool finite = true;
  for (index_t i = 0; i < n; ++i) {
    b[i] = negate_q ? -q[i * qs] : q[i * qs];
    if (check_finite) finite &= static_cast<bool>(std::isfinite(b[i]));
  }
  if (!finite) return kNonFiniteq;
  for (index_t k = 0; k < m; ++k) {
    b[n + k] = c[k * cs];
    if (check_finite) finite &= static_cast<bool>(std::isfinite(b[n + k]));
  }
  if (!finite) return kNonFinitec;
  // (a backward error that is not a number — an overflow in K x — counts as +∞)
  const auto measured = [](Acc v) { return v == v ? v : std::numeric_limits<Acc>::infinity(); };
  Acc berr = measured(solve_refined(F, e, n, m, ws));
  if (scaling_of(F).on && berr > Acc(kScaledFallback) * Acc(eps<T>())) {
    // the unscaled K, pivoted (lazily sized scratch: only such elements pay for it)
    ws.fallback_rec.resize(static_cast<size_t>(record_size(N)));
    ws.xkeep.assign(x, x + N);
    bool better = false;
    if (factor_pivoted(e, n, m, ws.fallback_rec.data(), ws, false) == kSolved) {
      const Acc berr2 =
          measured(solve_refined(ConstFactor<T>::view(ws.fallback_rec.data(), N), e, n, m, ws));
      better = berr2 < berr;
      if (better) berr = berr2;
    }
    if (!better)
      for (index_t i = 0; i < N; ++i) x[i] = ws.xkeep[i];
  }
  // an answer that solves no nearby system is not "solved": K is singular in T's range
  if (!(berr <= std::sqrt(Acc(eps<T>())))) return kSingular;
  for (index_t i = 0; i < n; ++i) z[i] = x[i];
  for (index_t k = 0; k < m; ++k) lam[k] = x[n + k];
  return kSolved;
}

template <class T>
void fill_nan(T* z, index_t n, T* lam, index_t m) {
  for (index_t i = 0; i < n; ++i) z[i] = quiet_nan<T>();
  for (index_t k = 0; k < m; ++k) lam[k] = quiet_nan<T>();
}

// A solution that is not finite is never "solved": elements [b0, b1) of z (B×n) and lam (B×m)
// with info 0 and a NaN or ±Inf entry get info kSingular and NaN throughout. From finite input
// this is an overflow: the solution is not representable in T (K is singular in T's range);
// from non-finite input (unchecked) the same. x − x is 0 for finite x and NaN otherwise, so one
// sum per element tells (any order: only whether it is NaN matters).
template <class T>
void reject_nonfinite(T* z, T* lam, std::int32_t* info, index_t n, index_t m, index_t b0,
                      index_t b1) {
  for (index_t b = b0; b < b1; ++b) {
    if (info[b] != kSolved) continue;
    T* zb = z + b * n;
    T* lb = lam + b * m;
    T acc = 0;
#pragma omp simd reduction(+ : acc)
    for (index_t i = 0; i < n; ++i) acc += zb[i] - zb[i];
#pragma omp simd reduction(+ : acc)
    for (index_t k = 0; k < m; ++k) acc += lb[k] - lb[k];
    if (acc == acc) continue;
    fill_nan(zb, n, lb, m);
    info[b] = kSingular;
  }
}

// Packs the KKT matrices of elements b0 … b0+cnt−1 into the W lanes of ws.C (unused lanes
// repeat the last element); st, kmax and knorm per lane, as `assemble` gives them, and whether
// the lane is to be equilibrated (equilibrate.hpp): such lanes take the one-problem path.
template <class T>
void pack_group(const Problem<T>& P, index_t b0, int cnt, Workspace<T>& ws, Status* st, T* kmax,
                T* knorm, bool* scaled) {
  constexpr int W = lanes<T>();
  ElementQA<T> e[W];
  for (int w = 0; w < W; ++w) e[w] = P.qa(b0 + std::min(w, cnt - 1));
  T chkQ[W], chkA[W], qmax[W], amax[W];
  assemble_lanes<T, W>(e, P.n, P.m, ws.C.data(), ws.Crowsum.data(), kmax, knorm, chkQ, chkA, qmax,
                       amax);
  for (int w = 0; w < W; ++w) {
    st[w] = P.check_finite && chkQ[w] != 0   ? kNonFiniteQ
            : P.check_finite && chkA[w] != 0 ? kNonFiniteA
            : P.m > P.n && !P.D2.data        ? Status{kSingular}  // rank A ≤ n < m, no D₂
                                             : Status{kSolved};
    scaled[w] = choose_scaling(qmax[w], amax[w], P.n + P.m).on;
  }
}

// Lane w of the interleaved factorization as a one-problem record, as factor_natural makes it.
template <class T>
void unpack_lane(const Workspace<T>& ws, int w, index_t N, T knorm, T flags, T* rec) {
  constexpr int W = lanes<T>();
  Factor<T> F = Factor<T>::view(rec, N, nullptr);
  for (index_t i = 0; i < N; ++i) {
    T* Ri = rec + packed_row(i);
    for (index_t j = 0; j < i; ++j) Ri[j] = ws.C[(i * N + j) * W + w];
    F.d[i] = ws.Cd[i * W + w];
    F.e[i] = 0;
    F.perm[i] = static_cast<T>(i);
  }
  F.scale[0] = F.scale[1] = 0;
  *F.knorm = knorm;
  *F.flags = flags;
}

// All W lanes as records at once: recs[w] (a record of size N each; lanes without a use may all
// point to the same scratch record). Row i of L is one interleaved row of C, turned back into W
// rows by W×W transposes, so C is read once (lane by lane, unpack_lane reads every cache line
// of C W times).
template <class T>
void unpack_lanes(const Workspace<T>& ws, index_t N, const T* knorm, const T* flags,
                  T* const* recs) {
  constexpr int W = lanes<T>();
  T* dst[W];
  for (index_t i = 1; i < N; ++i) {
    for (int w = 0; w < W; ++w) dst[w] = recs[w] + packed_row(i);
    deinterleave_row<T, W>(ws.C.data() + i * N * W, i, dst);
  }
  for (int w = 0; w < W; ++w) {
    Factor<T> F = Factor<T>::view(recs[w], N, nullptr);
    for (index_t i = 0; i < N; ++i) {
      F.d[i] = ws.Cd[i * W + w];
      F.e[i] = 0;
      F.perm[i] = static_cast<T>(i);
    }
    F.scale[0] = F.scale[1] = 0;
    *F.knorm = knorm[w];
    *F.flags = flags[w];
  }
}

// The pivoted route of factor_element for a problem whose natural factorization gave up; with
// `scaled` false, of K as it is (solve_element's fallback for an equilibrated one).
template <class T>
Status factor_pivoted(const ElementQA<T>& e, index_t n, index_t m, T* rec, Workspace<T>& ws,
                      bool scaled) {
  Factor<T> F = Factor<T>::view(rec, n + m, ws.square.data());
  T kmax = 0, knorm = 0, blockmax[2];
  assemble(e, n, m, false, F.L, ws.rowsum.data(), kmax, knorm, blockmax);
  // as factor_element chose
  const Scaling sc = scaled ? choose_scaling(blockmax[0], blockmax[1], n + m) : Scaling{};
  if (sc.on) equilibrate(F.L, n + m, n, sc, ws.rowsum.data(), kmax, knorm);
  const Status st = factor_bunch_kaufman(F, n, kmax, knorm, ws.bk_w1.data(), ws.bk_w2.data());
  if (st == kSingular) return st;  // a singular factorization is not used
  pack_factor(F.L, n + m, rec);
  if (sc.on) mark_scaled(rec, n + m, sc);
  return st;
}

// The right-hand sides [∓q; c] of elements b0 … b0+cnt−1 (cnt ≤ W) into the interleaved y (N×W,
// lanes past cnt repeat the last element), as solve_element forms them, and per lane kSolved or
// the kNonFinite code solve_element would give (q is checked before c).
template <class T, int W = lanes<T>()>
void gather_rhs(const Problem<T>& P, index_t b0, int cnt, T* y, Status* rhs_st) {
  const index_t n = P.n, m = P.m;
  for (int w = 0; w < W; ++w) {
    const index_t b = b0 + std::min(w, cnt - 1);
    const T* qb = P.q.at(P.batch, b);
    const T* cb = P.c.at(P.batch, b);
    bool fq = true, fc = true;
    for (index_t i = 0; i < n; ++i) {
      y[i * W + w] = P.negate_q ? -qb[i * P.q.s0] : qb[i * P.q.s0];
      fq &= static_cast<bool>(std::isfinite(y[i * W + w]));
    }
    for (index_t k = 0; k < m; ++k) {
      y[(n + k) * W + w] = cb[k * P.c.s0];
      fc &= static_cast<bool>(std::isfinite(y[(n + k) * W + w]));
    }
    rhs_st[w] = !P.check_finite || (fq && fc) ? Status{kSolved} : (fq ? kNonFinitec : kNonFiniteq);
  }
}

// Where solve_batch keeps the factorizations it computes, for a later adjoint solve: records
// (B × record_size(N)) and their status finfo (B), contiguous over the flat batch; or nowhere.
// Every entry of both is written (records of failed elements are zero), so they may be
// uninitialized memory on entry.
template <class T>
struct Keep {
  T* records = nullptr;
  std::int32_t* finfo = nullptr;
};

// solve_batch for the group of elements b0 … b0+cnt−1 (cnt ≤ W): factor and solve all lanes at
// once; lanes that need pivoting or refinement finish on the one-problem path, which gives the
// same bits as factorize(...).solve.
template <class T>
void solve_group(const Problem<T>& P, index_t b0, int cnt, T* z, T* lam, std::int32_t* info,
                 Workspace<T>& ws, Keep<T> keep = {}) {
  constexpr int W = lanes<T>();
  const index_t n = P.n, m = P.m, N = n + m, R = record_size(N);
  Status st[W], rhs_st[W];
  T kmax[W], knorm[W], flags[W];
  bool ok[W], scaled[W];
  pack_group(P, b0, cnt, ws, st, kmax, knorm, scaled);
  factor_natural_lanes<T, W>(ws.C.data(), ws.Cd.data(), N, n, kmax, knorm, ws.CU.data(), ok, flags);
  for (int w = 0; w < W; ++w) ok[w] = ok[w] && !scaled[w];  // factored again below
  T* y = ws.Cy.data();
  gather_rhs(P, b0, cnt, y, rhs_st);
  solve_natural_lanes<T, W>(ws.C.data(), ws.Cd.data(), N, y);
  if (keep.records) {  // every lane's record (those that need pivoting are replaced below)
    T* recs[W];
    for (int w = 0; w < W; ++w) recs[w] = w < cnt ? keep.records + (b0 + w) * R : ws.rec.data();
    unpack_lanes(ws, N, knorm, flags, recs);
  }
  for (int w = 0; w < cnt; ++w) {
    const index_t b = b0 + w;
    T* zb = z + b * n;
    T* lb = lam + b * m;
    Status s = st[w];
    T* rec = keep.records ? keep.records + b * R : ws.rec.data();
    if (s == kSolved) {
      const ElementQA<T> e = P.qa(b);
      const T* qb = P.q.at(P.batch, b);
      const T* cb = P.c.at(P.batch, b);
      if (!ok[w]) {
        s = scaled[w] ? factor_element(e, n, m, false, rec, ws) : factor_pivoted(e, n, m, rec, ws);
        if (keep.finfo) keep.finfo[b] = s;
        if (s == kSolved)
          s = solve_element(rec, e, n, m, qb, P.q.s0, cb, P.c.s0, P.check_finite, zb, lb, ws,
                            P.negate_q);
      } else if (rhs_st[w] != kSolved) {
        s = rhs_st[w];
      } else if (flags[w] != 0) {
        if (!keep.records) unpack_lane(ws, w, N, knorm[w], flags[w], rec);
        s = solve_element(rec, e, n, m, qb, P.q.s0, cb, P.c.s0, P.check_finite, zb, lb, ws,
                          P.negate_q);
      } else {
        for (index_t i = 0; i < n; ++i) zb[i] = y[i * W + w];
        for (index_t k = 0; k < m; ++k) lb[k] = y[(n + k) * W + w];
      }
    }
    if (keep.finfo && (st[w] != kSolved || ok[w])) keep.finfo[b] = st[w];
    if (keep.records && keep.finfo[b] != kSolved) clear_record(rec, N);
    if (s != kSolved) fill_nan(zb, n, lb, m);
    info[b] = s;
  }
}

// factorize_batch for the group b0 … b0+cnt−1, with the records of factor_element.
template <class T>
void factorize_group(const Problem<T>& P, index_t b0, int cnt, T* records, std::int32_t* info,
                     Workspace<T>& ws) {
  constexpr int W = lanes<T>();
  const index_t n = P.n, m = P.m, N = n + m, R = record_size(N);
  Status st[W];
  T kmax[W], knorm[W], flags[W];
  bool ok[W], scaled[W];
  pack_group(P, b0, cnt, ws, st, kmax, knorm, scaled);
  factor_natural_lanes<T, W>(ws.C.data(), ws.Cd.data(), N, n, kmax, knorm, ws.CU.data(), ok, flags);
  T* recs[W];
  for (int w = 0; w < W; ++w) recs[w] = w < cnt ? records + (b0 + w) * R : ws.rec.data();
  unpack_lanes(ws, N, knorm, flags, recs);
  for (int w = 0; w < cnt; ++w) {
    const index_t b = b0 + w;
    Status s = st[w];
    if (s == kSolved && scaled[w])
      s = factor_element(P.qa(b), n, m, false, records + b * R, ws);
    else if (s == kSolved && !ok[w])
      s = factor_pivoted(P.qa(b), n, m, records + b * R, ws);
    info[b] = s;
  }
}

// Elements [b0, b1) that all have the one plain factorization `rec` (natural order, no
// refinement; see plain_record), WR = kSharedRhs·W right-hand sides at a time: a triangular
// solve with WR columns, each entry of L (read from the record, which stays in L1 or L2)
// broadcast across kSharedRhs registers of right-hand sides — where one right-hand side at a
// time would use one lane of each vector. Per element the operations are those of
// factor_solve, so the result is bitwise what the one-problem path gives. Writes z, lam, info
// like solve_batch.
template <class T>
void solve_shared_plain(const Problem<T>& P, const T* rec, T* z, T* lam, std::int32_t* info,
                        index_t b0, index_t b1, int nthreads, WorkspacePool<T>& pool) {
  constexpr int W = lanes<T>();
  constexpr int WR = static_cast<int>(kSharedRhs) * W;
  const index_t n = P.n, m = P.m, N = n + m;
  const T* d = rec + packed_size(N);
  const auto row = [&](index_t i) { return rec + packed_row(i); };
  const index_t groups = (b1 - b0 + WR - 1) / WR;
  parallel_over<T>(
      pool, 0, groups, nthreads, N, false, true,
      [&](index_t g, Workspace<T>& ws) {
        const index_t g0 = b0 + g * WR;
        const int cnt = static_cast<int>(std::min<index_t>(WR, b1 - g0));
        T* y = ws.Cr.data();
        Status rhs_st[WR];
        gather_rhs<T, WR>(P, g0, cnt, y, rhs_st);
        unit_lower_solve<T, WR, decltype(row), true>(row, N, y);  // L y' = y
        for (index_t i = 0; i < N; ++i)                           // D y'' = y'
#pragma omp simd
          for (int w = 0; w < WR; ++w) y[i * WR + w] /= d[i];
        unit_lower_transpose_solve<T, WR, decltype(row), true>(row, N, y);  // Lᵀ x = y''
        for (int w = 0; w < cnt; ++w) {
          const index_t b = g0 + w;
          if (rhs_st[w] != kSolved) {
            fill_nan(z + b * n, n, lam + b * m, m);
          } else {
            for (index_t i = 0; i < n; ++i) z[b * n + i] = y[i * WR + w];
            for (index_t k = 0; k < m; ++k) lam[b * m + k] = y[(n + k) * WR + w];
          }
          info[b] = rhs_st[w];
        }
      },
      solve_flops(N) * static_cast<double>(kSharedRhs));
}

// solve: z (B×n), lam (B×m), info (B) contiguous over the flat batch; elements [b0, b1).
// With `keep`, every element's factorization is also stored there (exactly what factorize_batch
// computes), so a backward pass can reuse it; then no two elements may share Q and A.
// Scratch comes from `pool` (the caller's, kept across calls) or, without one, a pool of this
// call's own; likewise for the other drivers below.
template <class T>
void solve_batch(const Problem<T>& P, T* z, T* lam, std::int32_t* info, index_t b0, index_t b1,
                 int nthreads, Keep<T> keep = {}, WorkspacePool<T>* pool = nullptr) {
  WorkspacePool<T> own;
  WorkspacePool<T>& wp = pool ? *pool : own;
  const index_t n = P.n, m = P.m, N = n + m, R = record_size(N);
  if (!keep.records && N > 0 && N < kBlockedFrom && b1 - b0 >= 2 && !P.matrix_varies()) {
    // one K for all: factor it once; a plain factorization solves W right-hand sides at a
    // time, any other goes the one-problem path below (which holds it per thread)
    Workspace<T>& ws = wp.shared(N);
    if (factor_element(P.qa(b0), n, m, P.check_finite, ws.rec.data(), ws) == kSolved &&
        plain_record(ws.rec.data(), N)) {
      solve_shared_plain(P, ws.rec.data(), z, lam, info, b0, b1, nthreads, wp);
      return;
    }
  }
  over_batch(
      P, wp, b0, b1, nthreads, true,
      [&](index_t g0, int cnt, Workspace<T>& ws) {
        solve_group(P, g0, cnt, z, lam, info, ws, keep);
      },
      [&](index_t b, Workspace<T>& ws) {
        const ElementQA<T> e = P.qa(b);
        T* rec = ws.rec.data();
        if (keep.records) {
          rec = keep.records + b * R;
          ws.status = factor_element(e, n, m, P.check_finite, rec, ws);
          keep.finfo[b] = ws.status;
          if (ws.status != kSolved) clear_record(rec, n + m);
        } else if (!(ws.held && ws.Qp == e.Q && ws.Ap == e.A && ws.D1p == e.D1 && ws.D2p == e.D2)) {
          ws.status = factor_element(e, n, m, P.check_finite, rec, ws);
          ws.held = true;
          ws.Qp = e.Q;
          ws.Ap = e.A;
          ws.D1p = e.D1;
          ws.D2p = e.D2;
        }
        Status st = ws.status;
        if (st == kSolved)
          st = solve_element(rec, e, n, m, P.q.at(P.batch, b), P.q.s0, P.c.at(P.batch, b), P.c.s0,
                             P.check_finite, z + b * n, lam + b * m, ws, P.negate_q);
        if (st != kSolved) fill_nan(z + b * n, n, lam + b * m, m);
        info[b] = st;
      });
}

// factorize: records (B × record_size(N)) and info (B) contiguous; elements [b0, b1).
// Only the matrix operands of P (Q, A, D₁, D₂) are used.
template <class T>
void factorize_batch(const Problem<T>& P, T* records, std::int32_t* info, index_t b0, index_t b1,
                     int nthreads, WorkspacePool<T>* pool = nullptr) {
  WorkspacePool<T> own;
  const index_t N = P.n + P.m, R = record_size(N);
  over_batch(
      P, pool ? *pool : own, b0, b1, nthreads, false,
      [&](index_t g0, int cnt, Workspace<T>& ws) {
        factorize_group(P, g0, cnt, records, info, ws);
      },
      [&](index_t b, Workspace<T>& ws) {
        info[b] = factor_element(P.qa(b), P.n, P.m, P.check_finite, records + b * R, ws);
      });
}

// One element of solve_factored_batch, on the one-problem path.
template <class T>
void solve_factored_element(const Problem<T>& P, const Strided<T>& records,
                            const Strided<std::int32_t>& finfo, T* z, T* lam, std::int32_t* info,
                            index_t b, Workspace<T>& ws) {
  const index_t n = P.n, m = P.m, N = n + m;
  const std::int32_t fi = *finfo.at(P.batch, b);
  const T* rec = records.at(P.batch, b);
  Status st = static_cast<Status>(fi);
  if (fi < kSolved || fi > kNonFinitec)
    st = kInvalidRecord;
  else if (st == kSolved && !valid_record(rec, N, ws.seen.data()))
    st = kInvalidRecord;
  if (st == kSolved)
    st = solve_element(rec, P.qa(b), n, m, P.q.at(P.batch, b), P.q.s0, P.c.at(P.batch, b), P.c.s0,
                       P.check_finite, z + b * n, lam + b * m, ws, P.negate_q);
  if (st != kSolved) fill_nan(z + b * n, n, lam + b * m, m);
  info[b] = st;
}

// solve_factored_batch for the elements b0 … b0+cnt−1 (cnt ≤ W) at once: the packed L and the d
// of the W records are copied into the interleaved layout (L as one long row per problem, row i
// of L at packed_row(i)·W) and solved by solve_natural_lanes, whose operations per problem are
// those of factor_solve, so every lane gets the bits of the one-problem path. Elements whose
// record is not plain (pivoted, refined, failed, invalid) or whose right-hand side is not
// finite go the one-problem path instead.
template <class T>
void solve_factored_group(const Problem<T>& P, const Strided<T>& records,
                          const Strided<std::int32_t>& finfo, T* z, T* lam, std::int32_t* info,
                          index_t b0, int cnt, Workspace<T>& ws) {
  constexpr int W = lanes<T>();
  const index_t n = P.n, m = P.m, N = n + m;
  const T* rec[W];
  bool plain[W];
  for (int w = 0; w < W; ++w) {
    const index_t b = b0 + std::min(w, cnt - 1);
    rec[w] = records.at(P.batch, b);
    plain[w] = w < cnt && *finfo.at(P.batch, b) == kSolved &&
               valid_record(rec[w], N, ws.seen.data()) && plain_record(rec[w], N);
  }
  // lanes without a plain record solve a copy of the first plain one (and are not written)
  int first = 0;
  while (first < W && !plain[first]) ++first;
  if (first == W) {
    for (int w = 0; w < cnt; ++w)
      solve_factored_element(P, records, finfo, z, lam, info, b0 + w, ws);
    return;
  }
  for (int w = 0; w < W; ++w)
    if (!plain[w]) rec[w] = rec[first];
  T* C = ws.C.data();
  T* d = ws.Cd.data();
  T* y = ws.Cy.data();
  interleave_rows<T, W>(rec, 1, packed_size(N), C);
  const T* drc[W];
  for (int w = 0; w < W; ++w) drc[w] = rec[w] + packed_size(N);
  interleave_rows<T, W>(drc, 1, N, d);
  Status rhs_st[W];
  gather_rhs(P, b0, cnt, y, rhs_st);
  solve_packed_lanes<T, W>(C, d, N, y);
  for (int w = 0; w < cnt; ++w) {
    const index_t b = b0 + w;
    if (!plain[w] || rhs_st[w] != kSolved) {  // the one-problem path, which names a bad q or c
      solve_factored_element(P, records, finfo, z, lam, info, b, ws);
      continue;
    }
    for (index_t i = 0; i < n; ++i) z[b * n + i] = y[i * W + w];
    for (index_t k = 0; k < m; ++k) lam[b * m + k] = y[(n + k) * W + w];
    info[b] = kSolved;
  }
}

// Solve with stored factorizations: `records` and `finfo` are strided views (batch strides
// only; a record is contiguous) broadcast to P.batch. Writes z, lam, info like solve_batch.
// Small systems go W elements at a time (solve_factored_group), the rest one by one.
template <class T>
void solve_factored_batch(const Problem<T>& P, const Strided<T>& records,
                          const Strided<std::int32_t>& finfo, T* z, T* lam, std::int32_t* info,
                          index_t b0, index_t b1, int nthreads, WorkspacePool<T>* pool = nullptr) {
  WorkspacePool<T> own;
  WorkspacePool<T>& wp = pool ? *pool : own;
  const index_t N = P.n + P.m;
  if (N > 0 && N < kBlockedFrom && b1 - b0 >= 2) {
    bool shared = true;  // one record for all elements
    for (int d = 0; d < P.batch.ndim; ++d)
      shared &= P.batch.shape[d] == 1 || (records.bstride[d] == 0 && finfo.bstride[d] == 0);
    if (shared) {
      const T* rec = records.at(P.batch, b0);
      if (*finfo.at(P.batch, b0) == kSolved && valid_record(rec, N, wp.shared(N).seen.data()) &&
          plain_record(rec, N)) {
        solve_shared_plain(P, rec, z, lam, info, b0, b1, nthreads, wp);
        return;
      }
    }
    constexpr index_t W = lanes<T>();
    const index_t groups = (b1 - b0 + W - 1) / W;
    parallel_over<T>(
        wp, 0, groups, nthreads, N, false, true,
        [&](index_t g, Workspace<T>& ws) {
          const index_t g0 = b0 + g * W;
          solve_factored_group(P, records, finfo, z, lam, info, g0,
                               static_cast<int>(std::min(W, b1 - g0)), ws);
        },
        solve_flops(N));
    return;
  }
  parallel_over<T>(
      wp, b0, b1, nthreads, N, false, false,
      [&](index_t b, Workspace<T>& ws) {
        solve_factored_element(P, records, finfo, z, lam, info, b, ws);
      },
      solve_flops(N));
}

}  // namespace fastkkt
