// The array conversions every Python boundary file of the KKT engine shares: NumPy arrays that
// fastkkt/_api.py (or fastkkt/torch.py) has already validated, dtype-converted and broadcast to
// one batch shape become strided views of the core (fastkkt/batch.hpp), outputs are checked for
// dtype, size and layout, and the core runs over the batch in chunks with the GIL released
// (checking for KeyboardInterrupt between them). Shape rules and error messages for users live in
// the Python layer; the checks here guard the core against a caller that bypasses it.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "boundary.hpp"
#include "fastkkt/batch.hpp"
#include "fastkkt/threads.hpp"

namespace fastkkt_bindings {

namespace py = pybind11;
using fastkkt::index_t;
using fastkkt_boundary::holds;

// Element strides of `a`, which must hold `T` in native order at an aligned address.
template <class T>
void check_array(const py::array& a, const char* name, bool writeable) {
  if (!holds<T>(a.dtype()))
    throw py::type_error(std::string(name) + ": expected dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(a.dtype())));
  if (writeable && !(a.writeable() && (a.flags() & py::array::c_style)))
    throw std::invalid_argument(std::string(name) + ": output must be C-contiguous and writeable");
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
    throw std::invalid_argument(std::string(name) + ": array is not aligned");
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.strides(d) % static_cast<py::ssize_t>(sizeof(T)) != 0)
      throw std::invalid_argument(std::string(name) + ": strides must be multiples of itemsize");
}

// A view of `a` (shape batch + `inner` trailing dims) as a Strided<T> over `batch`.
template <class T>
fastkkt::Strided<T> strided(const py::array& a, const fastkkt::BatchShape& batch, int inner,
                            const char* name) {
  check_array<T>(a, name, false);
  if (a.ndim() != batch.ndim + inner)
    throw std::invalid_argument(std::string(name) + ": wrong number of dimensions");
  fastkkt::Strided<T> s;
  s.data = static_cast<const T*>(a.data());
  const auto it = static_cast<py::ssize_t>(sizeof(T));
  for (int d = 0; d < batch.ndim; ++d) {
    if (a.shape(d) != batch.shape[d])
      throw std::invalid_argument(std::string(name) + ": batch shape mismatch");
    s.bstride[d] = a.strides(d) / it;
  }
  if (inner >= 1) s.s0 = a.strides(batch.ndim) / it;
  if (inner >= 2) s.s1 = a.strides(batch.ndim + 1) / it;
  return s;
}

inline fastkkt::BatchShape batch_of(const py::array& Q) {
  if (Q.ndim() < 2 || Q.ndim() - 2 > fastkkt::kMaxBatchDims)
    throw std::invalid_argument("Q: " + std::to_string(Q.ndim()) +
                                " dimensions; expected 2 to 2 + " +
                                std::to_string(fastkkt::kMaxBatchDims) + " (at most " +
                                std::to_string(fastkkt::kMaxBatchDims) + " batch dimensions)");
  fastkkt::BatchShape b;
  b.ndim = static_cast<int>(Q.ndim() - 2);
  for (int d = 0; d < b.ndim; ++d) b.shape[d] = Q.shape(d);
  return b;
}

template <class T>
fastkkt::Problem<T> problem(const py::array& Q, const py::array* q, const py::array& A,
                            const py::array* c, bool check_finite) {
  fastkkt::Problem<T> P;
  P.batch = batch_of(Q);
  const int bd = P.batch.ndim;
  P.n = Q.shape(bd);
  P.m = A.ndim() == bd + 2 ? A.shape(bd) : -1;
  if (Q.shape(bd + 1) != P.n || P.m < 0 || A.shape(bd + 1) != P.n)
    throw std::invalid_argument("Q, A: inconsistent shapes");
  P.Q = strided<T>(Q, P.batch, 2, "Q");
  P.A = strided<T>(A, P.batch, 2, "A");
  if (q != nullptr && c != nullptr) {
    P.q = strided<T>(*q, P.batch, 1, "q");
    P.c = strided<T>(*c, P.batch, 1, "c");
    if (q->shape(bd) != P.n || c->shape(bd) != P.m)
      throw std::invalid_argument("q, c: inconsistent shapes");
  }
  P.check_finite = check_finite;
  return P;
}

template <class T>
T* out_ptr(py::array& a, const char* name, index_t expected_size) {
  check_array<T>(a, name, true);
  if (a.size() != expected_size) throw std::invalid_argument(std::string(name) + ": wrong size");
  return static_cast<T*>(a.mutable_data());
}

// Runs f(b0, b1, nthreads) over [0, B) in chunks of about kChunkFlops floating-point operations
// per thread with the GIL released, and raises KeyboardInterrupt (or any pending signal's
// exception) between chunks. `per_elem` is one element's work in the operation that f runs
// (fastkkt::element_flops for a factorization, fastkkt::solve_flops for a solve with a stored
// one). `nthreads` is what the caller asked for; f gets what the thread policy allows
// (fastkkt/threads.hpp: one in a forked child, the caller's OpenMP limit).
template <class F>
void run_chunked(index_t B, double per_elem, int nthreads, const F& f) {
  constexpr double kChunkFlops = 4e7;
  const int nt = fastkkt::usable_threads(nthreads);
  const index_t chunk = std::max<index_t>(1, static_cast<index_t>(kChunkFlops * nt / per_elem));
  for (index_t b0 = 0; b0 < B; b0 += chunk)
    fastkkt_boundary::run_released([&] { f(b0, std::min(B, b0 + chunk), nt); });
}

// Number of nonzero entries of info[0, B): lets the caller skip looking at info when all is well.
inline index_t count_failed(const std::int32_t* info, index_t B) {
  index_t bad = 0;
  for (index_t b = 0; b < B; ++b) bad += info[b] != 0;
  return bad;
}

// Stored factorizations as a Strided view over `batch`: one contiguous record of size N each.
template <class T>
fastkkt::Strided<T> record_view(const py::array& records, const fastkkt::BatchShape& batch,
                                index_t N) {
  const auto R = strided<T>(records, batch, 1, "records");
  if (records.shape(batch.ndim) != fastkkt::record_size(N) || R.s0 != 1)
    throw std::invalid_argument("records: wrong record layout");
  return R;
}

template <class T>
T* optional_out(const py::object& a, py::array& keep, const char* name, index_t size) {
  if (a.is_none()) return nullptr;
  keep = a.cast<py::array>();
  return out_ptr<T>(keep, name, size);
}

inline bool is_float32(const py::array& a) { return holds<float>(a.dtype()); }

}  // namespace fastkkt_bindings
