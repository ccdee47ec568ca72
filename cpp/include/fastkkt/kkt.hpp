// fastkkt/kkt.hpp — the batched KKT solver: assembly, factorization with fallback, solve with
// iterative refinement, and the loops over a batch.
//
// For batch element b it solves
//     [ sym(Q) Aᵀ ] [ z ]   [ −q ]
//     [ A      0  ] [ λ ] = [  c ],     sym(Q) = (Q + Qᵀ)/2,
// where every operand is a strided view (`Strided`) broadcast to one batch shape: a stride of 0
// shares an operand across the batch without copying it. Per element:
//   1. assemble K from Q and A into a record (per-thread scratch, or the caller's output array
//      for `factorize_batch`), with max|Kᵢⱼ| and ‖K‖∞;
//   2. factor it in the natural order (fast path, Q positive definite); if that gives up,
//      assemble again and factor with Bunch–Kaufman pivoting (ldlt.hpp);
//   3. solve, then refine when the factorization asks for it (pivoted, large growth or heavy
//      cancellation): x ← x + K⁻¹(b − Kx) with the residual computed from the original Q and A
//      — in double for float32 input — until the normwise backward error
//          ‖b − Kx‖∞ / (‖K‖∞‖x‖∞ + ‖b‖∞)
//      is at most ε or stops decreasing (cf. the stopping rule of LAPACK's xSYRFS / xGERFS).
// Three kernels do steps 1–3, by size and sharing:
//   * N < kBlockedFrom, Q or A varying over the batch: W = lanes<T>() problems at a time in the
//     interleaved ("compact") layout — entry (i, j) of the W problems in one SIMD register —
//     so every step of the elimination is one vector operation across problems, branch-free;
//     problems that need pivoting or refinement finish on the one-problem path;
//   * N ≥ kBlockedFrom: one problem at a time with the tiled Cholesky of ldlt.hpp, whose tiles
//     are shared among the threads when the batch is too small to be split among them;
//   * Q and A shared: one problem at a time; consecutive elements with the same Q and A reuse
//     the factorization the thread holds.
// Each problem's arithmetic is the same in every kernel that can run it (explicit FMAs, fixed
// summation order), so results do not depend on the thread count, on how the batch is grouped,
// or on whether the factorization was stored (factorize) or not (solve): bitwise.
// Nothing here allocates per element, throws inside a parallel region, or knows about Python.
#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "fastkkt/interleave.hpp"
#include "fastkkt/ldlt.hpp"

#ifndef FASTKKT_BLOCKED_FROM
#define FASTKKT_BLOCKED_FROM 176
#endif

namespace fastkkt {

constexpr int kMaxBatchDims = 32;
constexpr int kMaxRefineSteps = 5;
// Refinement goes on while each step reduces the backward error to at most this fraction of
// the previous one (LAPACK's xSYRFS asks for ½; near ε the residual's own rounding makes
// progress uneven, and the steps only run for the few elements that ask for refinement).
constexpr double kRefineProgress = 0.9;
// From this size on the natural-order factorization is the tiled one (factor_natural_blocked).
constexpr index_t kBlockedFrom = FASTKKT_BLOCKED_FROM;

struct BatchShape {
  int ndim = 0;
  index_t shape[kMaxBatchDims] = {};

  index_t size() const {
    index_t s = 1;
    for (int d = 0; d < ndim; ++d) s *= shape[d];
    return s;
  }
};

// A batch of arrays of T broadcast to a BatchShape. Element b (flat, C order over the batch
// shape) starts at data + Σ_d index_d(b)·bstride[d]; inside an element, entry (i, j) is at
// i·s0 + j·s1 (a vector uses s0 only). Strides count elements and may be negative or zero.
template <class T>
struct Strided {
  const T* data = nullptr;
  index_t bstride[kMaxBatchDims] = {};
  index_t s0 = 0, s1 = 0;

  const T* at(const BatchShape& bs, index_t b) const {
    index_t off = 0;
    for (int d = bs.ndim - 1; d >= 0; --d) {
      const index_t i = b % bs.shape[d];
      b /= bs.shape[d];
      off += i * bstride[d];
    }
    return data + off;
  }
};

// Accumulation type of residuals: double for float (refinement in higher precision), else T.
template <class T>
using acc_t = std::conditional_t<std::is_same_v<T, float>, double, T>;

template <class T>
T quiet_nan() {
  return std::numeric_limits<T>::quiet_NaN();
}

// Right-hand sides solved together with one shared factorization, in SIMD registers' worth.
constexpr index_t kSharedRhs = 4;

// std::allocator that leaves the elements of a resized vector uninitialized (default- rather
// than value-initialized): for the large scratch buffers below, which every kernel writes before
// it reads them. Zeroing them cost ~2% of a call at n + m = 640 (perf: memset).
template <class T>
struct uninitialized_allocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = uninitialized_allocator<U>;
  };
  uninitialized_allocator() = default;
  template <class U>
  uninitialized_allocator(const uninitialized_allocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
template <class T>
using scratch = std::vector<T, uninitialized_allocator<T>>;

// The scratch of one thread for systems of size N, one named buffer per job (all written before
// they are read). Made by a WorkspacePool, which an iterative solver keeps across its calls.
template <class T>
struct Workspace {
  index_t N = 0;
  bool with_record = false, interleaved = false;
  // one-problem path
  scratch<T> rec;     // a record: the factorization held for elements that share K (or a scratch
                      // record for lanes without a use)
  scratch<T> square;  // the N×N work buffer of a factorization (Factor::L)
  std::vector<T> rowsum;              // N: absolute row sums of K (assemble)
  std::vector<T> natural_u;           // 5N: factor_natural's u
  std::vector<T> bk_w1, bk_w2;        // N each: factor_bunch_kaufman's columns
  std::vector<T> b, x, xprev, dx, y;  // right-hand side, solution, refinement, solve
  std::vector<acc_t<T>> r, rlo;       // a residual; its trailing parts (kkt_residual)
  std::vector<unsigned char> seen;    // for valid_record
  // factorization held in `rec`: for which (Q, A, D₁, D₂) and with which status
  const T* Qp = nullptr;
  const T* Ap = nullptr;
  const T* D1p = nullptr;
  const T* D2p = nullptr;
  bool held = false;
  Status status = kSolved;
  // threads one large factorization may use: the call's, when the batch is not split among them
  int threads = 1;

  // interleaved buffers of W = lanes<T>() problems (see factor_natural_lanes): the matrices C
  // (N×N×W), their pivots Cd, row sums Crowsum (assemble_lanes), the factorization's u (CU,
  // 5N×W), right-hand sides Cy (N×W); and kSharedRhs·W right-hand sides of one shared
  // factorization (Cr, solve_shared_plain)
  scratch<T> C;
  std::vector<T> Cd, Crowsum, CU, Cy, Cr;

  Workspace(index_t N_, bool with_record_, bool interleaved_ = false)
      : N(N_),
        with_record(with_record_),
        interleaved(interleaved_),
        rec(with_record_ || interleaved_ ? record_size(N_) : 0),
        square(static_cast<size_t>(N_ * N_)),
        rowsum(N_),
        natural_u(5 * N_),
        bk_w1(N_),
        bk_w2(N_),
        b(N_),
        x(N_),
        xprev(N_),
        dx(N_),
        y(N_),
        r(N_),
        rlo(N_),
        seen(N_) {
    if (interleaved) {
      const index_t W = lanes<T>();
      C.resize(static_cast<size_t>(N * N * W));
      Cd.resize(static_cast<size_t>(N * W));
      Crowsum.resize(static_cast<size_t>(N * W));
      CU.resize(static_cast<size_t>(5 * N * W));
      Cy.resize(static_cast<size_t>(N * W));
      Cr.resize(static_cast<size_t>(N * W * kSharedRhs));
    }
  }

  // Whether this workspace serves a call with these needs.
  bool fits(index_t N_, bool with_record_, bool interleaved_) const {
    return N == N_ && (with_record || !with_record_) && (interleaved || !interleaved_);
  }
};

// Caller-owned scratch of the batch drivers: one Workspace per thread, and one for the
// factorization that a batch shares (solve_batch, solve_factored_batch). Made or grown outside
// any parallel region (an allocation failure throws there, not inside it) and kept, so a caller
// that solves systems of one size again and again — an iterative solver, a chunked call —
// allocates once. Each call starts from a clean state (no factorization held over from an
// earlier call, whose Q may have changed in place). Not for two calls at once.
template <class T>
class WorkspacePool {
 public:
  // Makes ready the workspaces of threads 0 … nt−1 for a call with systems of size N (a
  // workspace made for another size is replaced; one of the right size gains what it lacks).
  void prepare(int nt, index_t N, bool with_record, bool interleaved) {
    if (ws_.size() < static_cast<size_t>(nt)) ws_.resize(static_cast<size_t>(nt));
    for (int t = 0; t < nt; ++t) {
      auto& w = ws_[static_cast<size_t>(t)];
      if (!w || !w->fits(N, with_record, interleaved)) {
        const bool same = w && w->N == N;
        w = std::make_unique<Workspace<T>>(N, with_record || (same && w->with_record),
                                           interleaved || (same && w->interleaved));
      }
      w->held = false;
      w->threads = 1;
    }
  }
  // Thread t's workspace (after prepare).
  Workspace<T>& at(int t) { return *ws_[static_cast<size_t>(t)]; }

  // The workspace of a factorization shared by a whole batch (with a record).
  Workspace<T>& shared(index_t N) {
    if (!shared_ || !shared_->fits(N, true, false))
      shared_ = std::make_unique<Workspace<T>>(N, true, false);
    shared_->held = false;
    shared_->threads = 1;
    return *shared_;
  }

 private:
  std::vector<std::unique_ptr<Workspace<T>>> ws_;
  std::unique_ptr<Workspace<T>> shared_;
};

// One problem's matrix operands: pointers to element b of each, with their inner strides. The
// KKT matrix they define is the general one of the engine,
//     K = [ sym(Q) + D₁   Cᵀ  ]      (C is `A`: n columns, m rows),
//         [ C            −D₂ ]
// with D₁ (n) and D₂ (m) nonnegative diagonals, each absent (null: zero) by default; without
// them it is the equality QP's [[sym(Q), Aᵀ], [A, 0]], computed with the same operations (an
// absent diagonal adds nothing, not +0, so the bits are those of the QP's matrix).
template <class T>
struct ElementQA {
  const T* Q;
  index_t Qs0, Qs1;
  const T* A;
  index_t As0, As1;
  const T* D1 = nullptr;
  index_t D1s = 0;
  const T* D2 = nullptr;
  index_t D2s = 0;

  T d1(index_t i) const { return D1[i * D1s]; }
  T d2(index_t k) const { return D2[k * D2s]; }
};

// The rest of `assemble` and `assemble_wide` once the rows of Q are in K: the rows of A, with
// their absolute values into the row sums (chk and mx carry on from Q), the (2,2) block −D₂
// (zero without D₂; D₂ is checked with A), the finiteness check of A, and max|Kᵢⱼ| and ‖K‖∞.
template <class T>
Status assemble_constraints(const ElementQA<T>& e, index_t n, index_t m, bool check_finite, T* K,
                            T* rowsum, T chk, T mx, T& kmax, T& knorm) {
  const index_t N = n + m;
  for (index_t k = 0; k < m; ++k) {
    T* Kk = K + (n + k) * N;
    const T* Ak = e.A + k * e.As0;
    T rk = 0;
    for (index_t j = 0; j < n; ++j) {
      const T a = Ak[j * e.As1];
      chk += a - a;
      Kk[j] = a;
      const T aa = std::abs(a);
      mx = std::max(mx, aa);
      rk += aa;
      rowsum[j] += aa;
    }
    for (index_t j = n; j <= n + k; ++j) Kk[j] = 0;
    if (e.D2) {
      const T dk = -e.d2(k);
      chk += dk - dk;
      Kk[n + k] = dk;
      mx = std::max(mx, std::abs(dk));
      rk += std::abs(dk);
    }
    rowsum[n + k] = rk;
  }
  if (check_finite && chk != 0) return kNonFiniteA;
  T nrm = 0;
  for (index_t i = 0; i < N; ++i) nrm = std::max(nrm, rowsum[i]);
  kmax = mx;
  knorm = nrm;
  return kSolved;
}

// K into the lower triangle of the record's N×N block; returns kSolved or a kNonFinite code.
// sym(Q)ᵢⱼ is formed as ½Qᵢⱼ + ½Qⱼᵢ, which cannot overflow; it is finite iff both entries are,
// so one running sum of (x − x) — 0 for finite x, NaN otherwise — checks finiteness.
// Also returns max|Kᵢⱼ| and ‖K‖∞ (the largest absolute row sum of the full symmetric K).
// For N < kBlockedFrom, where the interleaved kernel assembles the same matrices, every row sum
// receives its terms in the order of `assemble_lanes` (row i, then rows i+1, i+2, … in order),
// so both give the same bits; the rows of Q are taken kRowBlock at a time and, for each column
// j, the entries Qⱼᵢ of that block are one short contiguous piece of row j (reading Q column by
// column went to memory once per entry). Larger systems take `assemble_wide`, whose vector
// blocks cost 10% less of the whole solve at 32×512×128 (A/B in one process).
constexpr index_t kRowBlock = 8;

template <class T>
Status assemble_wide(const ElementQA<T>& e, index_t n, index_t m, bool check_finite, T* K,
                     T* rowsum, T& kmax, T& knorm);

template <class T>
Status assemble(const ElementQA<T>& e, index_t n, index_t m, bool check_finite, T* K, T* rowsum,
                T& kmax, T& knorm) {
  const index_t N = n + m;
  if (N >= kBlockedFrom) return assemble_wide(e, n, m, check_finite, K, rowsum, kmax, knorm);
  for (index_t i = 0; i < N; ++i) rowsum[i] = 0;
  T mx = 0, chk = 0;
  for (index_t i0 = 0; i0 < n; i0 += kRowBlock) {
    const index_t i1 = std::min(n, i0 + kRowBlock);
    T ri[kRowBlock] = {};
    for (index_t j = 0; j < i1; ++j) {
      const T* Qj = e.Q + j * e.Qs0;  // row j: Qⱼᵢ for the rows i of the block
      for (index_t i = std::max(i0, j); i < i1; ++i) {
        const T* Qi = e.Q + i * e.Qs0;
        T* Ki = K + i * N;
        if (i == j) {
          T qii = Qi[i * e.Qs1];
          if (e.D1) qii += e.d1(i);
          chk += qii - qii;
          Ki[i] = qii;
          mx = std::max(mx, std::abs(qii));
          rowsum[i] += ri[i - i0] + std::abs(qii);
        } else {
          const T s = T(0.5) * Qi[j * e.Qs1] + T(0.5) * Qj[i * e.Qs1];
          chk += s - s;
          Ki[j] = s;
          const T a = std::abs(s);
          mx = std::max(mx, a);
          ri[i - i0] += a;
          rowsum[j] += a;
        }
      }
    }
  }
  if (check_finite && chk != 0) return kNonFiniteQ;  // NaN != 0
  return assemble_constraints(e, n, m, check_finite, K, rowsum, chk, mx, kmax, knorm);
}

// `assemble` for the large systems of the tiled factorization (N ≥ kBlockedFrom), where no
// other kernel has to reproduce its row sums: Q is taken in V×V blocks (V = lanes<T>()), block
// (I, J) below the diagonal with the transpose of block (J, I) — a register transpose where
// rows are contiguous, entry by entry otherwise, into the same buffer, so the arithmetic and
// the result do not depend on the layout — and every entry of a block row is one vector
// operation: ½Qᵢⱼ + ½Qⱼᵢ, its absolute value into the row sums of i (a vector per row, added up
// at the end of the block row) and of j (a vector add), the maximum and the finiteness check.
// The rows below the last whole block and the A block go entry by entry / row by row.
template <class T>
Status assemble_wide(const ElementQA<T>& e, index_t n, index_t m, bool check_finite, T* K,
                     T* rowsum, T& kmax, T& knorm) {
  constexpr int V = lanes<T>();
  const index_t N = n + m, nfull = n / V * V;
  for (index_t i = 0; i < N; ++i) rowsum[i] = 0;
  T mx[V] = {}, chk[V] = {};
  alignas(64) T a[V][V], b[V][V];
  const auto load = [&](index_t r0, index_t c0) {  // a[r][c] = Q(r0 + r, c0 + c)
    for (int r = 0; r < V; ++r) {
      const T* row = e.Q + (r0 + r) * e.Qs0 + c0 * e.Qs1;
      if (e.Qs1 == 1) {
#pragma omp simd
        for (int c = 0; c < V; ++c) a[r][c] = row[c];
      } else {
        for (int c = 0; c < V; ++c) a[r][c] = row[c * e.Qs1];
      }
    }
  };
  const auto load_transposed = [&](index_t r0, index_t c0) {  // b[r][c] = Q(c0 + c, r0 + r)
    if (e.Qs1 == 1 && detail::has_transpose<T, V>()) {
      const T* src[V];
      T* dst[V];
      for (int c = 0; c < V; ++c) src[c] = e.Q + (c0 + c) * e.Qs0;
      for (int r = 0; r < V; ++r) dst[r] = b[r];
      detail::transpose_block<T, V>(src, r0, dst);
    } else {
      for (int r = 0; r < V; ++r)
        for (int c = 0; c < V; ++c) b[r][c] = e.Q[(c0 + c) * e.Qs0 + (r0 + r) * e.Qs1];
    }
  };
  for (index_t i0 = 0; i0 < nfull; i0 += V) {
    T racc[V][V] = {};  // per row of the block row: its row sum so far, by column within blocks
    for (index_t j0 = 0; j0 < i0; j0 += V) {
      load(i0, j0);
      load_transposed(i0, j0);
      T* Rj = rowsum + j0;
      for (int r = 0; r < V; ++r) {
        T* Kr = K + (i0 + r) * N + j0;
#pragma omp simd
        for (int c = 0; c < V; ++c) {
          const T v = T(0.5) * a[r][c] + T(0.5) * b[r][c];
          Kr[c] = v;
          chk[c] += v - v;
          const T av = std::abs(v);
          mx[c] = std::max(mx[c], av);
          racc[r][c] += av;
          Rj[c] += av;
        }
      }
    }
    // the diagonal block: entries c < r as above, then the diagonal
    load(i0, i0);
    for (int r = 0; r < V; ++r) {
      const index_t i = i0 + r;
      T* Ki = K + i * N;
      for (int c = 0; c < r; ++c) {
        const T v = T(0.5) * a[r][c] + T(0.5) * a[c][r];
        Ki[i0 + c] = v;
        chk[c] += v - v;
        const T av = std::abs(v);
        mx[c] = std::max(mx[c], av);
        racc[r][c] += av;
        rowsum[i0 + c] += av;
      }
      T qii = a[r][r];
      if (e.D1) qii += e.d1(i);
      Ki[i] = qii;
      chk[r] += qii - qii;
      mx[r] = std::max(mx[r], std::abs(qii));
      T sum = 0;
      for (int c = 0; c < V; ++c) sum += racc[r][c];
      rowsum[i] += sum + std::abs(qii);
    }
  }
  // rows past the last whole block, entry by entry
  T mx1 = 0, chk1 = 0;
  for (index_t i = nfull; i < n; ++i) {
    const T* Qi = e.Q + i * e.Qs0;
    T* Ki = K + i * N;
    T ri = 0;
    for (index_t j = 0; j < i; ++j) {
      const T v = T(0.5) * Qi[j * e.Qs1] + T(0.5) * e.Q[j * e.Qs0 + i * e.Qs1];
      Ki[j] = v;
      chk1 += v - v;
      const T av = std::abs(v);
      mx1 = std::max(mx1, av);
      ri += av;
      rowsum[j] += av;
    }
    T qii = Qi[i * e.Qs1];
    if (e.D1) qii += e.d1(i);
    Ki[i] = qii;
    chk1 += qii - qii;
    mx1 = std::max(mx1, std::abs(qii));
    rowsum[i] += ri + std::abs(qii);
  }
  for (int c = 0; c < V; ++c) {
    chk1 += chk[c];
    mx1 = std::max(mx1, mx[c]);
  }
  if (check_finite && chk1 != 0) return kNonFiniteQ;  // NaN != 0
  return assemble_constraints(e, n, m, check_finite, K, rowsum, chk1, mx1, kmax, knorm);
}

template <class T>
Status factor_pivoted(const ElementQA<T>& e, index_t n, index_t m, T* rec, Workspace<T>& ws);

// Assembles and factors one KKT matrix into `rec`; returns its status.
template <class T>
Status factor_element(const ElementQA<T>& e, index_t n, index_t m, bool check_finite, T* rec,
                      Workspace<T>& ws) {
  const index_t N = n + m;
  Factor<T> F = Factor<T>::view(rec, N, ws.square.data());
  T kmax = 0, knorm = 0;
  const Status st = assemble(e, n, m, check_finite, F.L, ws.rowsum.data(), kmax, knorm);
  if (st != kSolved) return st;
  if (m > n && !e.D2) return kSingular;  // rank C ≤ n < m and no D₂
  const bool natural = N >= kBlockedFrom ? factor_natural_blocked(F, n, kmax, knorm, ws.threads)
                                         : factor_natural(F, n, kmax, knorm, ws.natural_u.data());
  if (!natural) return factor_pivoted(e, n, m, rec, ws);
  pack_factor(F.L, N, rec);
  return kSolved;
}

// Compensated accumulation (Ogita, Rump & Oishi, "Accurate sum and dot product", SIAM J. Sci.
// Comput. 26(6), 2005: Dot2 with the FMA form of TwoProduct): a running sum s + e to which
// a·b is added as if in twice the working precision, so the result is as accurate as if it
// were computed in twice the working precision and then rounded.
template <class T>
struct Compensated {
  T s = 0, e = 0;
  void sub_product(T a, T b) {  // s + e −= a·b
    const T p = a * b;
    const T pe = std::fma(a, b, -p);  // a·b = p + pe exactly
    const T t = s - p;                // TwoSum(s, −p) = t + te exactly
    const T bv = t - s;
    const T te = (s - (t - bv)) + (-p - bv);
    s = t;
    e += te - pe;
  }
  T value() const { return s + e; }
};

// r = b − K x, with K formed on the fly from the original Q, A (C), D₁ and D₂; returns ‖r‖∞. For float32 the
// residual is accumulated in double (every product of two floats is exact there); for double it
// is accumulated in twice the working precision (Compensated), so refinement converges to a
// backward error of about ε even where cond(K) is far beyond 1/ε (Higham, "Accuracy and Stability
// of Numerical Algorithms", §12.1: refinement with an extra-precise residual).
template <class T>
acc_t<T> kkt_residual(const ElementQA<T>& e, index_t n, index_t m, const T* b, const T* x,
                      acc_t<T>* r, acc_t<T>* rlo) {
  using Acc = acc_t<T>;
  const T* z = x;
  const T* lam = x + n;
  if constexpr (std::is_same_v<T, double>) {
    // ½(Qᵢⱼ + Qⱼᵢ) zⱼ summed over j, read as Qᵢⱼ contributions to rows i and j (½Qᵢⱼ is exact);
    // r holds the leading parts of the sums, rlo their trailing parts
    auto sub = [r, rlo](index_t i, double a, double y) {
      Compensated<double> acc{r[i], rlo[i]};
      acc.sub_product(a, y);
      r[i] = acc.s;
      rlo[i] = acc.e;
    };
    for (index_t i = 0; i < n + m; ++i) {
      r[i] = b[i];
      rlo[i] = 0;
    }
    for (index_t i = 0; i < n; ++i) {
      for (index_t j = 0; j < n; ++j) {
        const double h = 0.5 * e.Q[i * e.Qs0 + j * e.Qs1];
        sub(i, h, z[j]);
        sub(j, h, z[i]);
      }
    }
    if (e.D1)
      for (index_t i = 0; i < n; ++i) sub(i, e.d1(i), z[i]);
    if (e.D2)
      for (index_t k = 0; k < m; ++k) sub(n + k, -e.d2(k), lam[k]);
    for (index_t k = 0; k < m; ++k) {
      for (index_t j = 0; j < n; ++j) {
        const double a = e.A[k * e.As0 + j * e.As1];
        sub(j, a, lam[k]);
        sub(n + k, a, z[j]);
      }
    }
    for (index_t i = 0; i < n + m; ++i) r[i] += rlo[i];
  } else {
    (void)rlo;
    for (index_t i = 0; i < n + m; ++i) r[i] = b[i];
    for (index_t i = 0; i < n; ++i) {
      // ½(Qᵢⱼ + Qⱼᵢ) zⱼ summed over j, read as Qᵢⱼ contributions to rows i and j
      for (index_t j = 0; j < n; ++j) {
        const Acc h = Acc(0.5) * Acc(e.Q[i * e.Qs0 + j * e.Qs1]);
        r[i] -= h * Acc(z[j]);
        r[j] -= h * Acc(z[i]);
      }
    }
    if (e.D1)
      for (index_t i = 0; i < n; ++i) r[i] -= Acc(e.d1(i)) * Acc(z[i]);
    if (e.D2)
      for (index_t k = 0; k < m; ++k) r[n + k] += Acc(e.d2(k)) * Acc(lam[k]);
    for (index_t k = 0; k < m; ++k) {
      Acc s = 0;
      for (index_t j = 0; j < n; ++j) {
        const Acc a = Acc(e.A[k * e.As0 + j * e.As1]);
        r[j] -= a * Acc(lam[k]);
        s += a * Acc(z[j]);
      }
      r[n + k] -= s;
    }
  }
  Acc nr = 0;
  for (index_t i = 0; i < n + m; ++i) nr = std::max(nr, std::abs(r[i]));
  return nr;
}

// Solves for x = [z; λ] with the factorization `rec` of element e and the right-hand side
// b = [−q; c] (the equality QP's), or b = [q; c] when `negate_q` is false (any right-hand side).
// Returns kSolved or a kNonFinite code for q / c.
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

  for (index_t i = 0; i < N; ++i) x[i] = b[i];
  factor_solve(F, x, ws.y.data());

  if (F.flags & kRefine) {
    T bnorm = 0;
    for (index_t i = 0; i < N; ++i) bnorm = std::max(bnorm, std::abs(b[i]));
    Acc prev = std::numeric_limits<Acc>::infinity();
    T* dx = ws.dx.data();
    for (int it = 0; it <= kMaxRefineSteps; ++it) {
      const Acc rn = kkt_residual(e, n, m, b, x, ws.r.data(), ws.rlo.data());
      T xn = 0;
      for (index_t i = 0; i < N; ++i) xn = std::max(xn, std::abs(x[i]));
      const Acc berr = rn / (Acc(F.knorm) * Acc(xn) + Acc(bnorm));
      if (!(berr > Acc(eps<T>()))) break;        // converged (or 0/0 for a zero problem)
      if (berr > Acc(kRefineProgress) * prev) {  // stagnated: keep the better of the last two
        if (berr > prev)
          for (index_t i = 0; i < N; ++i) x[i] = ws.xprev[i];
        break;
      }
      if (it == kMaxRefineSteps) break;
      prev = berr;
      for (index_t i = 0; i < N; ++i) {
        ws.xprev[i] = x[i];
        dx[i] = static_cast<T>(ws.r[i]);
      }
      factor_solve(F, dx, ws.y.data());
      for (index_t i = 0; i < N; ++i) x[i] += dx[i];
    }
  }
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

// The operands of one call, all broadcast to `batch`: per element the system
//     [ sym(Q) + D₁   Aᵀ  ] [ z ]   [ ∓q ]
//     [ A            −D₂ ] [ λ ] = [  c ]
// (ElementQA), with −q (the equality QP: minimize ½zᵀQz + qᵀz subject to Az = c) unless
// `negate_q` is false, when the right-hand side is [q; c] as given. D₁ and D₂ (vectors) are
// absent when their data is null.
template <class T>
struct Problem {
  BatchShape batch;
  index_t n = 0, m = 0;
  Strided<T> Q, A, q, c, D1, D2;
  bool check_finite = true;
  bool negate_q = true;

  ElementQA<T> qa(index_t b) const {
    ElementQA<T> e{Q.at(batch, b), Q.s0, Q.s1, A.at(batch, b), A.s0, A.s1};
    if (D1.data) {
      e.D1 = D1.at(batch, b);
      e.D1s = D1.s0;
    }
    if (D2.data) {
      e.D2 = D2.at(batch, b);
      e.D2s = D2.s0;
    }
    return e;
  }

  // Whether K differs between elements: Q, A, D₁ or D₂ varies along a dimension of the batch.
  bool matrix_varies() const {
    for (int d = 0; d < batch.ndim; ++d)
      if (batch.shape[d] > 1 &&
          (Q.bstride[d] != 0 || A.bstride[d] != 0 || (D1.data && D1.bstride[d] != 0) ||
           (D2.data && D2.bstride[d] != 0)))
        return true;
    return false;
  }
};

// Runs body(i, workspace) for i in [i0, i1) on `nthreads` OpenMP threads, thread t with the
// pool's workspace t. The pool makes them ready before the parallel region, so an allocation
// failure throws here and not inside it.
// Threads only where the work pays for them on a loaded machine too. Each thread gets at least
// kMinFlopsPerThread of work (by the estimates below, ≈ 1 ms on one core): a call's threads meet
// at its end, and when another process keeps one of the cores busy, the thread that lands there
// waits for its turn — a scheduler time slice, milliseconds — so a call of well under a
// millisecond became 10–30× slower on two threads (B = 256, n = 16, m = 4: 0.45 → 13 ms) and
// left the OpenMP worker spinning on the caller's core afterwards. One large problem is shared
// among the threads (factor_natural_blocked, three meetings per tile step) only from
// kThreadedFactorFrom on: below it, on a busy machine, 1×300×50 took 6.3 → 97 ms on two threads,
// while on an idle one two threads saved under 10%. Measured on 2 cores, one kept busy by a
// spinning process (numbers in the commit message).
constexpr double kMinFlopsPerThread = 4e6;
constexpr index_t kThreadedFactorFrom = 600;

// Estimated floating-point operations of one factor-and-solve of size N.
inline double element_flops(index_t N) {
  const double n = static_cast<double>(N);
  return n * n * n / 3.0 + 4.0 * n * n + 1.0;
}

// Estimated floating-point operations of one solve with a stored factorization of size N.
inline double solve_flops(index_t N) {
  const double n = static_cast<double>(N);
  return 4.0 * n * n + 1.0;
}

// `flops` is the work of one element (default: a factor-and-solve of size N); an interleaved
// item is W elements.
template <class T, class Body>
void parallel_over(WorkspacePool<T>& pool, index_t i0, index_t i1, int nthreads, index_t N,
                   bool with_record, bool interleaved, const Body& body, double flops = 0) {
  const index_t count = i1 - i0;
  if (count <= 0) return;
  const double items_flops = static_cast<double>(count) * (flops > 0 ? flops : element_flops(N)) *
                             (interleaved ? static_cast<double>(lanes<T>()) : 1.0);
  const auto by_work = static_cast<index_t>(items_flops / kMinFlopsPerThread);
  int nt = static_cast<int>(std::min<index_t>(
      {static_cast<index_t>(std::max(nthreads, 1)), count, std::max<index_t>(by_work, 1)}));
  pool.prepare(nt, N, with_record, interleaved);
  if (nt == 1 && N >= kThreadedFactorFrom) pool.at(0).threads = std::max(nthreads, 1);
  const index_t chunk = std::max<index_t>(1, count / (static_cast<index_t>(nt) * 16));
  parallel_for(i0, i1, nt, chunk, [&](index_t i, int t) { body(i, pool.at(t)); });
}

// Whether the batch of P is solved W problems at a time in the interleaved layout: small
// systems whose Q or A differ between elements (a shared Q and A is factored once instead).
template <class T>
bool use_interleaved(const Problem<T>& P) {
  const index_t N = P.n + P.m;
  return N > 0 && N < kBlockedFrom && P.batch.size() >= 2 && P.matrix_varies();
}

// `assemble` for W problems at once (all with D₁ / D₂ or all without), straight into the interleaved layout (entry (i, j) of
// problem w at C[(i·N + j)·W + w]). The arithmetic, and so every rounding of the row sums, is
// that of `assemble` with the W problems innermost: each lane gets bitwise what `assemble` gives.
// Row i of each Q is copied whole (interleave_rows), its upper part into C's upper triangle,
// which the factorization never reads; then row i of sym(Q) is formed in place from the lower
// part and column i of that upper triangle (rows j < i, copied earlier). Everything is read in
// order, and each row of C stays in L1 from its copy to its symmetrization.
// chkQ / chkA per lane: 0 when Q / Q and A are finite, NaN otherwise. rowsum is N×W scratch.
template <class T, int W>
void assemble_lanes(const ElementQA<T>* e, index_t n, index_t m, T* C, T* rowsum, T* kmax, T* knorm,
                    T* chkQ, T* chkA) {
  const index_t N = n + m;
  const T* src[W];
  for (index_t i = 0; i < N * W; ++i) rowsum[i] = 0;
  T mx[W] = {}, chk[W] = {};
  for (index_t i = 0; i < n; ++i) {
    T* Ci = C + i * N * W;
    for (int w = 0; w < W; ++w) src[w] = e[w].Q + i * e[w].Qs0;
    interleave_rows<T, W>(src, e[0].Qs1, n, Ci);
    if (e[0].D1)
      for (int w = 0; w < W; ++w) Ci[i * W + w] += e[w].d1(i);
    T ri[W] = {};
    for (index_t j = 0; j < i; ++j) {
      T* Cij = Ci + j * W;
      const T* Cji = C + (j * N + i) * W;  // Qⱼᵢ, copied with row j
      T* Rj = rowsum + j * W;
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        const T s = T(0.5) * Cij[w] + T(0.5) * Cji[w];
        Cij[w] = s;
        chk[w] += s - s;
        const T a = std::abs(s);
        mx[w] = std::max(mx[w], a);
        ri[w] += a;
        Rj[w] += a;
      }
    }
    const T* Cii = Ci + i * W;
    T* Ri = rowsum + i * W;
#pragma omp simd
    for (int w = 0; w < W; ++w) {
      chk[w] += Cii[w] - Cii[w];
      mx[w] = std::max(mx[w], std::abs(Cii[w]));
      Ri[w] += ri[w] + std::abs(Cii[w]);
    }
  }
  for (int w = 0; w < W; ++w) chkQ[w] = chk[w];
  for (index_t k = 0; k < m; ++k) {
    T* Ck = C + (n + k) * N * W;
    for (int w = 0; w < W; ++w) src[w] = e[w].A + k * e[w].As0;
    interleave_rows<T, W>(src, e[0].As1, n, Ck);
    for (index_t j = n * W; j < (n + k + 1) * W; ++j) Ck[j] = 0;
    T rk[W] = {};
    for (index_t j = 0; j < n; ++j) {
      const T* Ckj = Ck + j * W;
      T* Rj = rowsum + j * W;
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        chk[w] += Ckj[w] - Ckj[w];
        const T aa = std::abs(Ckj[w]);
        mx[w] = std::max(mx[w], aa);
        rk[w] += aa;
        Rj[w] += aa;
      }
    }
    if (e[0].D2) {
      T* Ckk = Ck + (n + k) * W;
      for (int w = 0; w < W; ++w) {
        Ckk[w] = -e[w].d2(k);
        chk[w] += Ckk[w] - Ckk[w];
        mx[w] = std::max(mx[w], std::abs(Ckk[w]));
        rk[w] += std::abs(Ckk[w]);
      }
    }
    for (int w = 0; w < W; ++w) rowsum[(n + k) * W + w] = rk[w];
  }
  for (int w = 0; w < W; ++w) {
    chkA[w] = chk[w];
    T nrm = 0;
    for (index_t i = 0; i < N; ++i) nrm = std::max(nrm, rowsum[i * W + w]);
    kmax[w] = mx[w];
    knorm[w] = nrm;
  }
}

// Packs the KKT matrices of elements b0 … b0+cnt−1 into the W lanes of ws.C (unused lanes
// repeat the last element); st, kmax and knorm per lane, as `assemble` gives them.
template <class T>
void pack_group(const Problem<T>& P, index_t b0, int cnt, Workspace<T>& ws, Status* st, T* kmax,
                T* knorm) {
  constexpr int W = lanes<T>();
  ElementQA<T> e[W];
  for (int w = 0; w < W; ++w) e[w] = P.qa(b0 + std::min(w, cnt - 1));
  T chkQ[W], chkA[W];
  assemble_lanes<T, W>(e, P.n, P.m, ws.C.data(), ws.Crowsum.data(), kmax, knorm, chkQ, chkA);
  for (int w = 0; w < W; ++w)
    st[w] = P.check_finite && chkQ[w] != 0   ? kNonFiniteQ
            : P.check_finite && chkA[w] != 0 ? kNonFiniteA
            : P.m > P.n && !P.D2.data        ? kSingular  // rank A ≤ n < m, no D₂
                                             : kSolved;
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
    *F.knorm = knorm[w];
    *F.flags = flags[w];
  }
}

// The pivoted route of factor_element for a problem whose natural factorization gave up.
template <class T>
Status factor_pivoted(const ElementQA<T>& e, index_t n, index_t m, T* rec, Workspace<T>& ws) {
  Factor<T> F = Factor<T>::view(rec, n + m, ws.square.data());
  T kmax = 0, knorm = 0;
  assemble(e, n, m, false, F.L, ws.rowsum.data(), kmax, knorm);
  const Status st = factor_bunch_kaufman(F, n, kmax, knorm, ws.bk_w1.data(), ws.bk_w2.data());
  if (st != kSingular) pack_factor(F.L, n + m, rec);  // a singular factorization is not used
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
    rhs_st[w] = !P.check_finite || (fq && fc) ? kSolved : (fq ? kNonFinitec : kNonFiniteq);
  }
}

// Solves L D Lᵀ x = y for W interleaved right-hand sides (y is N×W, overwritten by x) with L
// packed by rows in the interleaved layout (entry (i, j) of lane w at (packed_row(i) + j)·W + w)
// and d (N×W): per lane exactly the operations of factor_solve for a plain record.
template <class T, int W>
void solve_packed_lanes(const T* L, const T* d, index_t N, T* y) {
  const auto row = [&](index_t i) { return L + packed_row(i) * W; };
  unit_lower_solve<T, W>(row, N, y);                 // L y' = y
  for (index_t i = 0; i < N * W; ++i) y[i] /= d[i];  // D y'' = y'
  unit_lower_transpose_solve<T, W>(row, N, y);       // Lᵀ x = y''
}

// Whether `rec` (valid, status kSolved) is a natural-order factorization that needs no
// refinement: identity permutation, no 2×2 blocks, flags 0. Its solve is then exactly
// solve_natural_lanes on its L and d.
template <class T>
bool plain_record(const T* rec, index_t N) {
  const ConstFactor<T> F = ConstFactor<T>::view(rec, N);
  if (F.flags != 0) return false;
  bool plain = true;
  for (index_t k = 0; k < N; ++k) plain &= F.perm[k] == static_cast<T>(k) && F.e[k] == 0;
  return plain;
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

// Zeros in a kept record whose factorization failed: nothing reads it (its status says so), and
// every record handed back is then fully written, whatever the path.
template <class T>
void clear_record(T* rec, index_t N) {
  for (index_t k = 0; k < record_size(N); ++k) rec[k] = 0;
}

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
  bool ok[W];
  pack_group(P, b0, cnt, ws, st, kmax, knorm);
  factor_natural_lanes<T, W>(ws.C.data(), ws.Cd.data(), N, n, kmax, knorm, ws.CU.data(), ok, flags);
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
        s = factor_pivoted(e, n, m, rec, ws);
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
  bool ok[W];
  pack_group(P, b0, cnt, ws, st, kmax, knorm);
  factor_natural_lanes<T, W>(ws.C.data(), ws.Cd.data(), N, n, kmax, knorm, ws.CU.data(), ok, flags);
  T* recs[W];
  for (int w = 0; w < W; ++w) recs[w] = w < cnt ? records + (b0 + w) * R : ws.rec.data();
  unpack_lanes(ws, N, knorm, flags, recs);
  for (int w = 0; w < cnt; ++w) {
    const index_t b = b0 + w;
    Status s = st[w];
    if (s == kSolved && !ok[w]) s = factor_pivoted(P.qa(b), n, m, records + b * R, ws);
    info[b] = s;
  }
}

// Runs group(g0, cnt, ws) over [b0, b1) in groups of W elements, or one(b, ws) per element.
template <class T, class Group, class One>
void over_batch(const Problem<T>& P, WorkspacePool<T>& pool, index_t b0, index_t b1, int nthreads,
                bool with_record, const Group& group, const One& one) {
  const index_t N = P.n + P.m;
  if (use_interleaved(P)) {
    constexpr index_t W = lanes<T>();
    const index_t groups = (b1 - b0 + W - 1) / W;
    parallel_over<T>(pool, 0, groups, nthreads, N, true, true, [&](index_t g, Workspace<T>& ws) {
      const index_t g0 = b0 + g * W;
      group(g0, static_cast<int>(std::min(W, b1 - g0)), ws);
    });
  } else {
    parallel_over<T>(pool, b0, b1, nthreads, N, with_record, false, one);
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

// The input gradients of the backward pass for elements that own their Q and A. With x = [z; λ]
// the solution and d = [d_z; d_λ] = −K⁻¹[∂ℓ/∂z; ∂ℓ/∂λ] from the adjoint solve,
//     ∂ℓ/∂Q = ½ (d_z zᵀ + z d_zᵀ)   (n×n: K holds sym(Q)),
//     ∂ℓ/∂A = d_λ zᵀ + λ d_zᵀ        (m×n: A appears as A and Aᵀ in K).
// z, dz (B×n), lam, dlam (B×m), dQ (B×n×n), dA (B×m×n) contiguous; either output may be null.
// Elements with info ≠ 0 get zero gradients (their z, λ, d may be NaN).
template <class T>
void outer_grads(index_t b0, index_t b1, index_t n, index_t m, const T* z, const T* lam,
                 const T* dz, const T* dlam, const std::int32_t* info, T* dQ, T* dA, int nthreads) {
  const double per = 3.0 * static_cast<double>(n) * static_cast<double>(n + m) + 1.0;
  const auto by_work =
      static_cast<index_t>(static_cast<double>(b1 - b0) * per / kMinFlopsPerThread);
  const int nt = static_cast<int>(std::max<index_t>(
      1, std::min<index_t>({static_cast<index_t>(std::max(nthreads, 1)), b1 - b0, by_work})));
  parallel_for(b0, b1, nt, std::max<index_t>(1, (b1 - b0) / nt), [&](index_t b, int) {
    const bool ok = info[b] == kSolved;
    const T* zb = z + b * n;
    const T* dzb = dz + b * n;
    if (dQ != nullptr) {
      T* G = dQ + b * n * n;
      for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < n; ++j)
          G[i * n + j] = ok ? T(0.5) * (dzb[i] * zb[j] + zb[i] * dzb[j]) : T(0);
    }
    if (dA != nullptr) {
      const T* lb = lam + b * m;
      const T* dlb = dlam + b * m;
      T* G = dA + b * m * n;
      for (index_t k = 0; k < m; ++k)
        for (index_t j = 0; j < n; ++j) G[k * n + j] = ok ? dlb[k] * zb[j] + lb[k] * dzb[j] : T(0);
    }
  });
}

// The backward pass of fastkkt.torch for elements [b0, b1), in one call: the adjoint solve
//     K [d_z; d_λ] = −[g_z; g_λ]
// with the kept factorizations (P.q holds g_z and P.c holds −g_λ, so this is
// solve_factored_batch's K x = [−q; c]), then the input gradients
//     ∂ℓ/∂q = d_z,   ∂ℓ/∂c = −d_λ,   ∂ℓ/∂Q, ∂ℓ/∂A as in outer_grads.
// Writes dz (∂ℓ/∂q) and gc (∂ℓ/∂c), B×n and B×m, and dQ, dA where not null; ainfo (B) receives
// the adjoint solve's status. Elements whose factorization failed get d = 0 (their gradients
// are exactly zero); z, lam and info are the forward pass's.
template <class T>
void backward_batch(const Problem<T>& P, const Strided<T>& records,
                    const Strided<std::int32_t>& finfo, const T* z, const T* lam,
                    const std::int32_t* info, T* dz, T* gc, std::int32_t* ainfo, T* dQ, T* dA,
                    index_t b0, index_t b1, int nthreads, WorkspacePool<T>* pool = nullptr) {
  const index_t n = P.n, m = P.m;
  solve_factored_batch(P, records, finfo, dz, gc, ainfo, b0, b1, nthreads, pool);  // gc: d_λ
  for (index_t b = b0; b < b1; ++b)
    if (ainfo[b] != kSolved) {
      for (index_t i = 0; i < n; ++i) dz[b * n + i] = 0;
      for (index_t k = 0; k < m; ++k) gc[b * m + k] = 0;
    }
  outer_grads(b0, b1, n, m, z, lam, dz, gc, info, dQ, dA, nthreads);
  for (index_t i = b0 * m; i < b1 * m; ++i) gc[i] = -gc[i];
}

}  // namespace fastkkt
