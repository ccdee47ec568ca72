// fastkkt/batch.hpp — batches, threads and scratch: how one call's operands are seen, how its
// elements are spread over threads, and the caller-owned workspace the kernels use.
//
// Every operand is a strided view (`Strided`) broadcast to one batch shape (`BatchShape`): element
// b (flat, C order) of an operand starts at data + Σ_d index_d(b)·bstride[d]; a stride of 0
// shares the operand across the batch without copying it. `Problem` holds one call's views
// (Q, C = A, D₁, D₂, q, c) and gives one element's matrix operands (ElementQA, assemble.hpp).
// `parallel_over` runs a body over elements (or groups of W) on at most `nthreads` threads,
// each thread with its own `Workspace` from a `WorkspacePool` that the caller owns and may keep
// across calls (an iterative solver, a chunked call): a thread is used only where it gets at
// least kMinFlopsPerThread of work (element_flops, solve_flops estimate it).
// Nothing here knows about Python.
#pragma once

#include <omp.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "fastkkt/assemble.hpp"
#include "fastkkt/common.hpp"
#include "fastkkt/interleave.hpp"
#include "fastkkt/record.hpp"
#include "fastkkt/threads.hpp"

namespace fastkkt {

constexpr int kMaxBatchDims = 32;

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

// Right-hand sides solved together with one shared factorization, in SIMD registers' worth.
constexpr index_t kSharedRhs = 4;

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
  // solve_element's unscaled fallback: a record and the first answer (sized on first use)
  std::vector<T> fallback_rec, xkeep;
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

// The threads for `items` independent items of `work` flops in all: at most `requested`, one
// per item, each with at least kMinFlopsPerThread of work; at least one.
inline int threads_for(int requested, index_t items, double work) {
  const auto by_work = static_cast<index_t>(work / kMinFlopsPerThread);
  return static_cast<int>(
      std::max<index_t>(1, std::min<index_t>({static_cast<index_t>(requested), items, by_work})));
}

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
  const int nt = threads_for(nthreads, count, items_flops);
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

}  // namespace fastkkt
