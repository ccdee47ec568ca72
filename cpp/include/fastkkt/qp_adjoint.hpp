// fastkkt/qp_adjoint.hpp — the backward pass of the QP solver (qp.hpp): implicit
// differentiation of the KKT conditions at the solution, one more solve with the factorization
// that the solver's active-set polish already made.
//
// Each element solved minimize ½zᵀQz + qᵀz subject to Az = c, Gz ≤ h, lb ≤ z ≤ ub, with the
// Lagrangian L = ½zᵀQz + qᵀz + λᵀ(Az − c) + μᵀ(Gz − h) + ν_ubᵀ(z − ub) + ν_lbᵀ(lb − z) and the
// signed bound multiplier ν = ν_ub − ν_lb (Amos & Kolter, "OptNet", ICML 2017; only sym(Q) is
// read).
//
// The active set (the documented rule, applied to the returned solution, so that what it
// decides is what the forward pass returned):
// - row i of G is active iff μᵢ > max(hᵢ − Gᵢz, 0) (a weakly active row, μᵢ = 0 = hᵢ − Gᵢz,
//   is inactive: the gradient is that of the problem without it);
// - coordinate j is at its upper bound iff νⱼ > max(ubⱼ − zⱼ, 0), at its lower bound iff
//   −νⱼ > max(zⱼ − lbⱼ, 0) (νⱼ = 0: inactive); a fixed coordinate (lbⱼ = ubⱼ) is always
//   active, at its upper bound when νⱼ ≥ 0 and at its lower bound when νⱼ < 0.
// With 𝒜 the active rows, 𝔅 the active coordinates (value bⱼ = ubⱼ or lbⱼ) and F the free
// ones, the solution satisfies Qz + q + Aᵀλ + G_𝒜ᵀμ_𝒜 + E_𝔅ᵀν_𝔅 = 0, Az = c, G_𝒜z = h_𝒜,
// z_𝔅 = b_𝔅, and the inactive multipliers stay zero. Differentiating, for a loss ℓ with
// incoming gradients g = (g_z, g_λ, g_μ, g_ν), the adjoint d = −K⁻¹g of that system's
// (symmetric) matrix K gives
//
//     ∂ℓ/∂q = d_z                   ∂ℓ/∂Q = ½(d_z zᵀ + z d_zᵀ)
//     ∂ℓ/∂c = −d_λ                  ∂ℓ/∂A = d_λ zᵀ + λ d_zᵀ
//     ∂ℓ/∂h = −d_μ (on 𝒜, else 0)   ∂ℓ/∂G = d_μ zᵀ + μ_𝒜 d_zᵀ
//     ∂ℓ/∂ub_j = −d_ν,j (j at its upper bound),   ∂ℓ/∂lb_j = −d_ν,j (j at its lower bound)
//
// (dℓ = gᵀdx = −gᵀK⁻¹ ∂F/∂θ dθ = dᵀ ∂F/∂θ dθ with F the active KKT conditions and
// ∂F/∂θ dθ = (dQ z + dq + dAᵀλ + dG_𝒜ᵀμ_𝒜, dA z − dc, dG_𝒜 z − dh_𝒜, −db_𝔅)).
// The rows z_𝔅 = b_𝔅 give d_z,𝔅 = −g_ν,𝔅 at once; what is left is
//
//     [ Q_FF  C_Fᵀ ] [ d_F ]   [ −g_z,F − Q_F𝔅 d_z,𝔅 ]
//     [ C_F   0    ] [ d_y ] = [ −g_y   − C_𝔅 d_z,𝔅  ],    C = [A; G_𝒜], y = (λ, μ_𝒜),
//
// exactly the equality KKT system that the polish of qp.hpp factors for this active set (free
// coordinates in increasing order, then the rows of A and the active rows of G in increasing
// order); then d_ν,𝔅 = −g_z,𝔅 − (Q d_z + Aᵀd_λ + G_𝒜ᵀd_μ)_𝔅.
//
// The kept factorization. qp_quasidefinite.hpp factors K_reg = [H + ρI, Cᵀ; C, −δI] = L D Lᵀ
// in the natural order (the engine's kernels; N = n₁ + k rows). When the forward pass is asked to
// keep it (QPOutput::factor) and the active set of the rule is the one the accepted polish used,
// the strict lower triangle of the unit lower L (packed by rows) and D are stored in
// adjoint_factor_size(n, m, p) entries per element (N(N + 1)/2 used), and the state byte says so;
// otherwise (the IPM iterate was returned, the rule differs from the polish's guess at a
// degenerate point, or k > n₁ so that K is singular) the adjoint factors K_reg itself. The
// solve is refined against the unregularized K (qp_quasidefinite.hpp), as the polish's was.
// Measured on BENCH_QP.md's cases (2026-11-29): every solved element keeps it except 2 of 128
// on optnet, and there no polish was accepted (the returned point is the IPM iterate: no
// multiplier is exactly zero), so there is no factorization of any active set to reuse; the
// adjoint factors those afresh. No element was found whose accepted polish used a set other
// than the rule's. With the kept factorization the adjoint costs 3.5–4.1 µs per element on mpc
// (B = 4096, n = 12, m = 4, box) and 4.7–5.0 µs on scqpth_small copied to B = 3200 (n = 10,
// p = 20), one core, 2026-11-29; about half in phase 1's solve and its refinement (3 residuals),
// the rest reading Q, the kept factor and writing the gradients (memory: ~4.6 kB per element).
// Where K is singular (dependent active constraints, Q singular on their null space: z or the
// multipliers are not differentiable there) and the refinement does not bring the residual
// below √ε of the right-hand side, the system is solved in the least-squares sense, minimum
// norm (Eigen's complete orthogonal decomposition): finite and deterministic.
//
// Layout of the outputs and threads. Phase 1, one element per task in a per-thread workspace,
// writes d_z, d_λ, d_μ (zero off 𝒜), d_ν at upper and at lower bounds into per-element scratch;
// failed elements (info ≠ 0) write zeros and are skipped below, so they contribute exactly
// zero. Phase 2 forms each requested gradient summed over the batch elements that share it (a
// broadcast operand gets one gradient): every output entry is owned by one task, which adds the
// elements' contributions in increasing element order. Nothing depends on the thread count:
// results are bitwise identical for any number of threads. Nothing here knows about Python.
#pragma once

#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "fastkkt/kkt.hpp"
#include "fastkkt/qp_quasidefinite.hpp"
#include "fastkkt/threads.hpp"

namespace fastkkt {
namespace qp {

// Entries per element of a kept factorization: L's packed strict lower triangle and D of an N×N
// matrix, N(N + 1)/2, for N = n₁ + k ≤ min(2n, n + m + p) (kept only when k ≤ n₁ ≤ n).
inline index_t adjoint_factor_size(index_t n, index_t m, index_t p) {
  const index_t s = std::min(2 * n, n + m + p);
  return (s * s + s) / 2;
}

// The active set of the rule above into act (p + n + 1 entries): 1 for an active row of G,
// then per coordinate +1 at its upper bound, −1 at its lower bound, else 0; the last entry (the
// state) is set to 0 (no factorization kept). G (p×n, column-major), h, lb, ub, z, mu, nu of one
// element; infinite h, lb, ub are no constraint.
template <class T>
void adjoint_active_set(index_t n, index_t p, const Eigen::Ref<const Mat<T>>& G, const T* h,
                        const T* lb, const T* ub, const T* z, const T* mu, const T* nu,
                        std::int8_t* act) {
  for (index_t r = 0; r < p; ++r) {
    T gz = 0;
    for (index_t j = 0; j < n; ++j) gz += G(r, j) * z[j];
    const T slack = h[r] - gz;  // +inf for an absent row: never active
    act[r] = mu[r] > std::max(slack, T(0)) ? 1 : 0;
  }
  for (index_t j = 0; j < n; ++j) {
    std::int8_t a = 0;
    if (lb[j] == ub[j]) {
      a = nu[j] >= 0 ? 1 : -1;
    } else if (nu[j] > std::max(ub[j] - z[j], T(0))) {
      a = 1;
    } else if (-nu[j] > std::max(z[j] - lb[j], T(0))) {
      a = -1;
    }
    act[p + j] = a;
  }
  act[p + n] = 0;
}

// Stores the factorization of qd (sizes n₁, k; N = n₁ + k): the strict lower triangle of the unit
// lower L packed by rows (record.hpp's packed_row), then D: N(N + 1)/2 entries.
template <class T>
void pack_factor(const QuasiDefinite<T>& qd, T* out) {
  const index_t N = qd.size();
  for (index_t i = 1; i < N; ++i) {
    const T* Li = qd.row(i);
    T* o = out + packed_row(i);
    for (index_t j = 0; j < i; ++j) o[j] = Li[j];
  }
  for (index_t i = 0; i < N; ++i) out[packed_size(N) + i] = qd.d[i];
}

// The inverse of pack_factor into qd's L and D (qd.set_size(n₁, k) done): what its solves read.
template <class T>
void unpack_factor(const T* in, QuasiDefinite<T>& qd) {
  const index_t N = qd.size();
  for (index_t i = 1; i < N; ++i) {
    T* Li = qd.row(i);
    const T* o = in + packed_row(i);
    for (index_t j = 0; j < i; ++j) Li[j] = o[j];
  }
  for (index_t i = 0; i < N; ++i) qd.d[i] = in[packed_size(N) + i];
}

// The data of one adjoint call; operands and incoming gradients broadcast to `batch` (a null
// incoming gradient is zero), the forward outputs C-contiguous over the batch.
template <class T>
struct AdjointProblem {
  BatchShape batch;
  index_t n = 0, m = 0, p = 0;
  Strided<T> Q, A, G;
  const T *z = nullptr, *lam = nullptr, *mu = nullptr;
  const std::int32_t* info = nullptr;
  const std::int8_t* active = nullptr;  // B×(p + n + 1), adjoint_active_set's layout
  const T* factor = nullptr;            // B×factor_stride, or null (none kept)
  index_t factor_stride = 0;
  Strided<T> gz, glam, gmu, gnu;  // data null: zero
};

// One requested gradient: a C-contiguous array of nblocks blocks of rows×cols entries (the
// operand's own batch shape); element b adds into block offset(b) = Σ_d index_d(b)·bstride[d]
// (in blocks; 0 along broadcast dimensions). data null: not requested.
template <class T>
struct GradTarget {
  T* data = nullptr;
  index_t nblocks = 0;
  index_t bstride[kMaxBatchDims] = {};
};

template <class T>
struct AdjointGrads {
  GradTarget<T> Q, q, A, c, G, h, lb, ub;
};

template <class T>
struct AdjointWorkspace {
  index_t n, m, p;
  Vec<T> b1, b2, x, y, dz, tmp;
  std::vector<index_t> Fp, Bp, Rp;
  QuasiDefinite<T> qd;
  AdjointWorkspace(index_t n_, index_t m_, index_t p_) : n(n_), m(m_), p(p_) {
    const index_t N1 = std::max<index_t>(n, 1), K1 = std::max<index_t>(m + p, 1);
    for (Vec<T>* v : {&b1, &x, &dz, &tmp}) v->resize(N1);
    for (Vec<T>* v : {&b2, &y}) v->resize(K1);
    Fp.resize(N1);
    Bp.resize(N1);
    Rp.resize(std::max<index_t>(p, 1));
    qd.reserve(N1, K1);
  }
};

// Scratch per element: d_z (n), d_λ (m), d_μ (p), d_ν at upper bounds (n), at lower bounds (n).
inline index_t adjoint_scratch_width(index_t n, index_t m, index_t p) { return 3 * n + m + p; }

// How phase 1 solved an element's system (adjoint_one's return value; counted per call).
enum AdjointPath : std::int8_t {
  kAdjointSkipped = 0,   // failed element (or nothing to solve: n₁ + k = 0)
  kAdjointKept = 1,      // with the kept factorization
  kAdjointFactored = 2,  // K_reg factored afresh
  kAdjointLstsq = 3,     // the least-squares fallback (singular K)
};

// Phase 1 for element b: its adjoint vectors into d (adjoint_scratch_width entries).
template <class T>
AdjointPath adjoint_one(const AdjointProblem<T>& P, index_t b, AdjointWorkspace<T>& w, T* d) {
  const index_t n = P.n, m = P.m, p = P.p;
  std::fill(d, d + adjoint_scratch_width(n, m, p), T(0));
  if (P.info[b] != 0) return kAdjointSkipped;
  AdjointPath path = kAdjointSkipped;
  T* dz = d;
  T* dlam = d + n;
  T* dmu = d + n + m;
  T* dnu_up = d + n + m + p;
  T* dnu_lo = d + 2 * n + m + p;
  const std::int8_t* act = P.active + b * (p + n + 1);
  const T* Q = P.Q.at(P.batch, b);
  const T* A = P.A.at(P.batch, b);
  const T* G = P.G.at(P.batch, b);
  const index_t qs0 = P.Q.s0, qs1 = P.Q.s1, as0 = P.A.s0, as1 = P.A.s1, gs0 = P.G.s0, gs1 = P.G.s1;
  auto Aat = [&](index_t k, index_t j) { return A[k * as0 + j * as1]; };
  auto Gat = [&](index_t r, index_t j) { return G[r * gs0 + j * gs1]; };
  // the incoming gradients' element b (null: zero), located once
  struct In {
    const T* p;
    index_t s0;
  };
  auto locate = [&](const Strided<T>& s) {
    return In{s.data == nullptr ? nullptr : s.at(P.batch, b), s.s0};
  };
  const In in_z = locate(P.gz), in_lam = locate(P.glam), in_mu = locate(P.gmu),
           in_nu = locate(P.gnu);
  auto vec = [](const In& s, index_t i) -> T { return s.p == nullptr ? T(0) : s.p[i * s.s0]; };
  // entry (a, b) of sym(Q), as the forward pass reads it (qp.hpp load_element), where needed
  auto Qf = [&](index_t a, index_t b) {
    const index_t i = std::max(a, b), j = std::min(a, b);
    return Q[i * qs0 + j * qs1] / 2 + Q[j * qs0 + i * qs1] / 2;
  };
  index_t n1 = 0, nb = 0, pa = 0;
  for (index_t j = 0; j < n; ++j) {
    if (act[p + j] == 0) {
      w.Fp[n1++] = j;
    } else {
      w.Bp[nb++] = j;
      dz[j] = -vec(in_nu, j);
    }
  }
  for (index_t r = 0; r < p; ++r)
    if (act[r] != 0) w.Rp[pa++] = r;
  const index_t k = m + pa;
  // right-hand sides with the known d_z of the active coordinates moved over
  for (index_t i = 0; i < n1; ++i) {
    const index_t j = w.Fp[i];
    T s = -vec(in_z, j);
    for (index_t t = 0; t < nb; ++t) s -= Qf(j, w.Bp[t]) * dz[w.Bp[t]];
    w.b1[i] = s;
  }
  for (index_t kk = 0; kk < m; ++kk) {
    T s = -vec(in_lam, kk);
    for (index_t t = 0; t < nb; ++t) s -= Aat(kk, w.Bp[t]) * dz[w.Bp[t]];
    w.b2[kk] = s;
  }
  for (index_t r = 0; r < pa; ++r) {
    T s = -vec(in_mu, w.Rp[r]);
    for (index_t t = 0; t < nb; ++t) s -= Gat(w.Rp[r], w.Bp[t]) * dz[w.Bp[t]];
    w.b2[m + r] = s;
  }
  if (n1 + k > 0) {
    auto& qd = w.qd;
    qd.set_size(n1, k);
    auto H = qd.H();
    auto Ct = qd.Ct();
    T qmax = 0;
    for (index_t bb = 0; bb < n1; ++bb) {
      const index_t jb = w.Fp[bb];
      for (index_t a = bb; a < n1; ++a) {
        H(a, bb) = Qf(w.Fp[a], jb);
        qmax = std::max(qmax, std::abs(H(a, bb)));
      }
      for (index_t kk = 0; kk < m; ++kk) Ct(bb, kk) = Aat(kk, jb);
      for (index_t r = 0; r < pa; ++r) Ct(bb, m + r) = Gat(w.Rp[r], jb);
    }
    const bool kept = act[p + n] == 1 && P.factor != nullptr && k <= n1;
    bool ok = true;
    path = kept ? kAdjointKept : kAdjointFactored;
    if (kept) {
      unpack_factor(P.factor + b * P.factor_stride, qd);
    } else {
      // the polish's regularization (qp.hpp): ρ relative to Q's scale, δ absolute
      const T reg = std::is_same_v<T, float> ? T(1e-6) : T(1e-10);
      ok = qd.factor(reg * std::max(T(1), qmax), reg);
    }
    const T scale = std::max({inf_norm<T>(w.b1.head(n1)), inf_norm<T>(w.b2.head(k)), T(1)});
    if (ok) {
      const T res = qd.solve(w.b1.data(), w.b2.data(), w.x.data(), w.y.data(), 20,
                             std::numeric_limits<T>::epsilon() * scale);
      ok = res <= std::sqrt(std::numeric_limits<T>::epsilon()) * scale &&
           w.x.head(n1).allFinite() && w.y.head(k).allFinite();
    }
    if (!ok) {  // singular K (a degenerate point): the minimum-norm least-squares solution
      path = kAdjointLstsq;
      const index_t N = n1 + k;
      Mat<T> K = Mat<T>::Zero(N, N);
      K.topLeftCorner(n1, n1) = H.template selfadjointView<Eigen::Lower>();
      K.topRightCorner(n1, k) = Ct;
      K.bottomLeftCorner(k, n1) = Ct.transpose();
      Vec<T> rhs(N);
      rhs.head(n1) = w.b1.head(n1);
      rhs.tail(k) = w.b2.head(k);
      const Vec<T> sol = Eigen::CompleteOrthogonalDecomposition<Mat<T>>(K).solve(rhs);
      w.x.head(n1) = sol.head(n1);
      w.y.head(k) = sol.tail(k);
    }
    for (index_t i = 0; i < n1; ++i) dz[w.Fp[i]] = w.x[i];
    for (index_t kk = 0; kk < m; ++kk) dlam[kk] = w.y[kk];
    for (index_t r = 0; r < pa; ++r) dmu[w.Rp[r]] = w.y[m + r];
  }
  // d_ν of the active coordinates from their stationarity rows
  for (index_t t = 0; t < nb; ++t) {
    const index_t j = w.Bp[t];
    T s = 0;
    for (index_t i = 0; i < n; ++i) s += Qf(j, i) * dz[i];
    for (index_t kk = 0; kk < m; ++kk) s += Aat(kk, j) * dlam[kk];
    for (index_t r = 0; r < pa; ++r) s += Gat(w.Rp[r], j) * dmu[w.Rp[r]];
    const T dnu = -vec(in_z, j) - s;
    (act[p + j] > 0 ? dnu_up : dnu_lo)[j] = dnu;
  }
  return path;
}

// Elements grouped by the gradient block they add into, each group in increasing element order.
struct BlockGroups {
  std::vector<index_t> start, order;
};

inline BlockGroups group_blocks(const BatchShape& batch, const index_t* bstride, index_t nblocks) {
  const index_t B = batch.size();
  std::vector<index_t> block(static_cast<size_t>(B));
  for (index_t b = 0; b < B; ++b) {
    index_t off = 0, rest = b;
    for (int d = batch.ndim - 1; d >= 0; --d) {
      off += (rest % batch.shape[d]) * bstride[d];
      rest /= batch.shape[d];
    }
    block[static_cast<size_t>(b)] = off;
  }
  BlockGroups g;
  g.start.assign(static_cast<size_t>(nblocks + 1), 0);
  for (index_t b = 0; b < B; ++b) ++g.start[static_cast<size_t>(block[static_cast<size_t>(b)] + 1)];
  for (index_t o = 0; o < nblocks; ++o)
    g.start[static_cast<size_t>(o + 1)] += g.start[static_cast<size_t>(o)];
  g.order.resize(static_cast<size_t>(B));
  std::vector<index_t> fill(g.start.begin(), g.start.end() - 1);
  for (index_t b = 0; b < B; ++b)
    g.order[static_cast<size_t>(fill[static_cast<size_t>(block[static_cast<size_t>(b)])]++)] = b;
  return g;
}

// Whether element b of `batch` adds into block b of t (an operand not broadcast: its own batch
// shape, C-contiguous), so that every block has one element.
template <class T>
bool one_block_per_element(const BatchShape& batch, const GradTarget<T>& t) {
  if (t.nblocks != batch.size()) return false;
  index_t stride = 1;
  for (int d = batch.ndim - 1; d >= 0; --d) {
    if (batch.shape[d] > 1 && t.bstride[d] != stride) return false;
    stride *= batch.shape[d];
  }
  return true;
}

// Phase 2: out[o, i, j] = Σ_{b in block o, info_b = 0} row(b, i, j), one task per (o, i); where
// each block has one element, one task per element (the same sum 0 + row(b, i, j), written where
// it is computed, without the grouping and a separate pass zeroing the whole output).
template <class T, class Row>
void reduce_target(const BatchShape& batch, const GradTarget<T>& t, index_t rows, index_t cols,
                   const std::int32_t* info, int nthreads, const Row& row) {
  if (t.data == nullptr) return;
  const index_t total = t.nblocks * rows * cols;
  const double work = static_cast<double>(batch.size()) * static_cast<double>(rows * cols) * 2;
  if (total > 0 && one_block_per_element(batch, t)) {
    const index_t B = batch.size();
    const int nt = threads_for(nthreads, B, work);
    parallel_for(0, B, nt, std::max<index_t>(B / (8 * std::max(nt, 1)), 1), [&](index_t b, int) {
      T* out = t.data + b * rows * cols;
      std::fill(out, out + rows * cols, T(0));
      if (info[b] != 0) return;
      for (index_t i = 0; i < rows; ++i) row(b, i, out + i * cols);
    });
    return;
  }
  std::fill(t.data, t.data + total, T(0));
  if (total == 0 || batch.size() == 0) return;
  const BlockGroups g = group_blocks(batch, t.bstride, t.nblocks);
  const index_t units = t.nblocks * rows;
  const int nt = threads_for(nthreads, units, work);
  parallel_for(0, units, nt, std::max<index_t>(units / (8 * std::max(nt, 1)), 1),
               [&](index_t u, int) {
                 const index_t o = u / rows, i = u % rows;
                 T* out = t.data + (o * rows + i) * cols;
                 for (index_t s = g.start[static_cast<size_t>(o)];
                      s < g.start[static_cast<size_t>(o + 1)]; ++s) {
                   const index_t b = g.order[static_cast<size_t>(s)];
                   if (info[b] != 0) continue;
                   row(b, i, out);
                 }
               });
}

// The whole adjoint: phase 1 for elements [0, B) on nthreads threads (in chunks [b0, b1) so that
// a caller can check for interrupts between them: adjoint_vectors; path[b] receives element b's
// AdjointPath), then phase 2 (adjoint_grads).
template <class T>
void adjoint_vectors(const AdjointProblem<T>& P, T* scratch, std::int8_t* path, index_t b0,
                     index_t b1, int nthreads) {
  const index_t count = b1 - b0;
  if (count <= 0) return;
  const double N = static_cast<double>(P.n + P.m + P.p);
  const double work = static_cast<double>(count) * (10.0 * N * N + 1.0);
  const int nt = threads_for(nthreads, count, work);
  std::vector<AdjointWorkspace<T>> ws;
  ws.reserve(static_cast<size_t>(nt));
  for (int t = 0; t < nt; ++t) ws.emplace_back(P.n, P.m, P.p);
  const index_t W = adjoint_scratch_width(P.n, P.m, P.p);
  parallel_for(b0, b1, nt, 1, [&](index_t b, int t) {
    path[b] = adjoint_one(P, b, ws[static_cast<size_t>(t)], scratch + b * W);
  });
}

template <class T>
void adjoint_grads(const AdjointProblem<T>& P, const T* scratch, const AdjointGrads<T>& out,
                   int nthreads) {
  const index_t n = P.n, m = P.m, p = P.p;
  const index_t W = adjoint_scratch_width(n, m, p);
  const BatchShape& bs = P.batch;
  const T* D = scratch;
  auto dz = [&](index_t b) { return D + b * W; };
  auto dlam = [&](index_t b) { return D + b * W + n; };
  auto dmu = [&](index_t b) { return D + b * W + n + m; };
  auto z = [&](index_t b) { return P.z + b * n; };
  reduce_target(bs, out.q, 1, n, P.info, nthreads, [&](index_t b, index_t, T* o) {
    const T* v = dz(b);
    for (index_t j = 0; j < n; ++j) o[j] += v[j];
  });
  reduce_target(bs, out.c, 1, m, P.info, nthreads, [&](index_t b, index_t, T* o) {
    const T* v = dlam(b);
    for (index_t j = 0; j < m; ++j) o[j] -= v[j];
  });
  reduce_target(bs, out.h, 1, p, P.info, nthreads, [&](index_t b, index_t, T* o) {
    const T* v = dmu(b);
    for (index_t j = 0; j < p; ++j) o[j] -= v[j];
  });
  reduce_target(bs, out.ub, 1, n, P.info, nthreads, [&](index_t b, index_t, T* o) {
    const T* v = D + b * W + n + m + p;
    for (index_t j = 0; j < n; ++j) o[j] -= v[j];
  });
  reduce_target(bs, out.lb, 1, n, P.info, nthreads, [&](index_t b, index_t, T* o) {
    const T* v = D + b * W + 2 * n + m + p;
    for (index_t j = 0; j < n; ++j) o[j] -= v[j];
  });
  // ½(d_z zᵀ + z d_zᵀ), row i
  reduce_target(bs, out.Q, n, n, P.info, nthreads, [&](index_t b, index_t i, T* o) {
    const T* u = dz(b);
    const T* v = z(b);
    const T ui = u[i] / 2, vi = v[i] / 2;
    for (index_t j = 0; j < n; ++j) o[j] += ui * v[j] + vi * u[j];
  });
  // d_λ zᵀ + λ d_zᵀ, row k
  reduce_target(bs, out.A, m, n, P.info, nthreads, [&](index_t b, index_t k, T* o) {
    const T dl = dlam(b)[k], l = P.lam[b * m + k];
    const T* u = dz(b);
    const T* v = z(b);
    for (index_t j = 0; j < n; ++j) o[j] += dl * v[j] + l * u[j];
  });
  // d_μ zᵀ + μ_𝒜 d_zᵀ, row r
  reduce_target(bs, out.G, p, n, P.info, nthreads, [&](index_t b, index_t r, T* o) {
    const T dm = dmu(b)[r];
    const T mr = P.active[b * (p + n + 1) + r] != 0 ? P.mu[b * p + r] : T(0);
    if (dm == 0 && mr == 0) return;
    const T* u = dz(b);
    const T* v = z(b);
    for (index_t j = 0; j < n; ++j) o[j] += dm * v[j] + mr * u[j];
  });
}

}  // namespace qp
}  // namespace fastkkt
