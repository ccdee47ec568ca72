// Explicit instantiations of the core's batch entry points, one translation unit per solver and
// scalar type (instances_kkt_float.cpp, …), declared `extern` here for the bindings.
//
// The bindings call a handful of function templates (the KKT engine's drivers and adjoint, the
// QP solver and its adjoint) whose instantiation is most of a variant's compile time: one
// binding file instantiating the QP solver for both types took ~130 s of the ~6 minutes a
// three-variant build needs on two cores. Instantiated in their own, smaller files, they compile
// in parallel and the binding files only parse the headers. The code generated is the same
// (the same headers, flags and -march in every file of a variant); only where it is compiled
// moves.
#pragma once

#include <cstdint>

#include "fastkkt/adjoint.hpp"
#include "fastkkt/drivers.hpp"
#include "fastkkt/qp.hpp"
#include "fastkkt/qp_lanes_batch.hpp"

// EXTERN: `extern` in the declarations below, empty in the one file that instantiates.
#define FASTKKT_INSTANCES_KKT(EXTERN, T)                                                          \
  EXTERN template void fastkkt::solve_batch<T>(const Problem<T>&, T*, T*, std::int32_t*, index_t, \
                                               index_t, int, Keep<T>, WorkspacePool<T>*);         \
  EXTERN template void fastkkt::factorize_batch<T>(const Problem<T>&, T*, std::int32_t*, index_t, \
                                                   index_t, int, WorkspacePool<T>*);              \
  EXTERN template void fastkkt::solve_factored_batch<T>(                                          \
      const Problem<T>&, const Strided<T>&, const Strided<std::int32_t>&, T*, T*, std::int32_t*,  \
      index_t, index_t, int, WorkspacePool<T>*);                                                  \
  EXTERN template void fastkkt::backward_batch<T>(                                                \
      const Problem<T>&, const Strided<T>&, const Strided<std::int32_t>&, const T*, const T*,     \
      const std::int32_t*, T*, T*, std::int32_t*, T*, T*, index_t, index_t, int,                  \
      WorkspacePool<T>*);

#define FASTKKT_INSTANCES_QP(EXTERN, T)                                                            \
  EXTERN template void fastkkt::qp::solve_qp_batch_lanes<T>(                                       \
      const qp::QPProblem<T>&, const qp::QPSettings<T>&, const qp::QPOutput<T>&, index_t, index_t, \
      int);                                                                                        \
  EXTERN template void fastkkt::qp::adjoint_vectors<T>(const qp::AdjointProblem<T>&, T*,           \
                                                       std::int8_t*, index_t, index_t, int);       \
  EXTERN template void fastkkt::qp::adjoint_grads<T>(const qp::AdjointProblem<T>&, const T*,       \
                                                     const qp::AdjointGrads<T>&, int);

namespace fastkkt {
FASTKKT_INSTANCES_KKT(extern, float)
FASTKKT_INSTANCES_KKT(extern, double)
FASTKKT_INSTANCES_QP(extern, float)
FASTKKT_INSTANCES_QP(extern, double)
}  // namespace fastkkt
