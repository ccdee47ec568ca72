// The compiled module: what it is (variant, CPU level, record size, the thread policy) and the
// registration of each area — the KKT engine (bindings_kkt.cpp), its backward pass
// (bindings_adjoint.cpp) and the inequality QP solver (bindings_qp.cpp). The boundary files
// (these, arrays.hpp and boundary.hpp) are the only ones that include pybind11; they convert
// and validate arrays, release the GIL, and leave shape rules and messages for users to the
// Python layer.
//
// Compiled once per instruction-set level (FASTKKT_VARIANT) into a module named
// FASTKKT_MODULE_NAME; see CMakeLists.txt and fastkkt/_dispatch.py.
#include <pybind11/pybind11.h>

#include <string>

#include "bindings_qp.hpp"
#include "fastkkt/common.hpp"
#include "fastkkt/record.hpp"
#include "fastkkt/threads.hpp"
#include "register.hpp"

namespace py = pybind11;
using fastkkt::index_t;

namespace {

// The highest instruction-set level of CPUs that this process runs on.
std::string cpu_level() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl");
  return v4 ? "avx512" : v3 ? "avx2" : "baseline";
#else
  return "baseline";
#endif
}

}  // namespace

PYBIND11_MODULE(FASTKKT_MODULE_NAME, mod) {
  mod.doc() = "fastkkt compiled core (" FASTKKT_VARIANT "); use the fastkkt package instead.";
  fastkkt::install_thread_policy();
  mod.def("usable_threads", &fastkkt::usable_threads, py::arg("requested"));
  mod.attr("variant") = FASTKKT_VARIANT;
  mod.def("record_size", [](index_t N) { return fastkkt::record_size(N); }, py::arg("N"));
  mod.def("cpu_level", &cpu_level);
  // The per-element status codes, written once here (fastkkt/_status.py reads them).
  py::dict factor_status, input_status;
  factor_status["solved"] = static_cast<int>(fastkkt::kSolved);
  factor_status["singular"] = static_cast<int>(fastkkt::kSingular);
  factor_status["not_minimum"] = static_cast<int>(fastkkt::kNotMinimum);
  input_status["nonfinite_Q"] = static_cast<int>(fastkkt::kNonFiniteQ);
  input_status["nonfinite_q"] = static_cast<int>(fastkkt::kNonFiniteq);
  input_status["nonfinite_A"] = static_cast<int>(fastkkt::kNonFiniteA);
  input_status["nonfinite_c"] = static_cast<int>(fastkkt::kNonFinitec);
  input_status["invalid_record"] = static_cast<int>(fastkkt::kInvalidRecord);
  mod.attr("factor_status") = factor_status;
  mod.attr("input_status") = input_status;
  register_kkt(mod);
  register_adjoint(mod);
  register_qp(mod);
}
