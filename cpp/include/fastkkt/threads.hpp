// fastkkt/threads.hpp — how many OpenMP threads a call may use, and loops that use no OpenMP
// at all when that number is one.
//
// The thread count of a call is
//     k = 1                                  in a process forked from one that ran OpenMP;
//     k = min(requested, omp_get_max_threads())   when the caller's OpenMP limit is below the
//                                            limit this process started with (a limit set by
//                                            threadpoolctl, torch.set_num_threads, or
//                                            omp_set_num_threads in the calling thread);
//     k = min(requested, omp_get_num_procs())    otherwise: more threads than the cores this
//                                            process may run on would only take turns.
// Why one thread after fork: libgomp's thread pool does not survive fork(): the child inherits
// the pool's bookkeeping but not its threads, and the first parallel region with more than one
// thread waits for them forever. A handler registered with pthread_atfork marks the child, and
// from then on no fastkkt loop enters an OpenMP parallel region (parallel_for below runs the loop
// inline, as PyTorch does in forked children). The mark is per process, so it also covers
// children forked before the parent's first parallel region: harmless, and the only safe rule
// when another library (torch) shares the same libgomp.
// Nothing here knows about Python.
#pragma once

#include <omp.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>

namespace fastkkt {

inline std::atomic<bool>& forked_flag() {
  static std::atomic<bool> forked{false};
  return forked;
}

// Whether this process is a fork() child of the process that loaded fastkkt.
inline bool in_forked_child() { return forked_flag().load(std::memory_order_relaxed); }

// The OpenMP limit of the thread that loaded fastkkt: a lower limit in a calling thread is a
// limit someone set on purpose. Call once at load (install_thread_policy).
inline int& initial_omp_limit() {
  static int limit = 0;
  return limit;
}

// Registers the fork handler and records the initial OpenMP limit. Idempotent.
inline void install_thread_policy() {
  static const bool once = [] {
    pthread_atfork(nullptr, nullptr, [] { forked_flag().store(true, std::memory_order_relaxed); });
    initial_omp_limit() = omp_get_max_threads();
    return true;
  }();
  (void)once;
}

// The number of threads a call asked to run on `requested` threads may use (see above). Reads
// the calling thread's OpenMP limit: call it from the thread that makes the call.
inline int usable_threads(int requested) {
  if (requested <= 1 || in_forked_child()) return 1;
  const int limit = omp_get_max_threads();
  if (limit < initial_omp_limit() && limit < requested) requested = limit < 1 ? 1 : limit;
  const int cores = omp_get_num_procs();
  return requested > cores ? (cores < 1 ? 1 : cores) : requested;
}

// body(i, t) for i in [i0, i1), t the thread number, on nt threads with a dynamic schedule of
// `chunk` items; with nt ≤ 1 a plain loop that never calls into OpenMP.
template <class Body>
void parallel_for(std::int64_t i0, std::int64_t i1, int nt, std::int64_t chunk, const Body& body) {
  if (nt <= 1) {
    for (std::int64_t i = i0; i < i1; ++i) body(i, 0);
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(dynamic, chunk)
  for (std::int64_t i = i0; i < i1; ++i) body(i, omp_get_thread_num());
}

// region() on a team of nt threads (an OpenMP parallel region). With nt ≤ 1 outside any
// parallel region it is called directly: its orphaned worksharing constructs (single, for) then
// bind to the initial thread's team of one and start no thread. Inside an active region (one
// element of a batch split among threads) they would bind to that region's team, so there the
// team of one is an inactive nested region, which starts no thread either.
template <class Region>
void parallel_region(int nt, const Region& region) {
  if (nt <= 1) {
    if (omp_in_parallel()) {
#pragma omp parallel num_threads(1)
      region();
    } else {
      region();
    }
    return;
  }
#pragma omp parallel num_threads(nt)
  region();
}

}  // namespace fastkkt
