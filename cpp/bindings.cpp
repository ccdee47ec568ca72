// The Python boundary (with boundary.hpp, the only files that include pybind11). It converts
// NumPy arrays that fastkkt/_api.py has already validated, dtype-converted and broadcast to one
// batch shape into strided views for the core, releases the GIL around the core in chunks
// (checking for KeyboardInterrupt between them), and nothing else. Shape rules and error messages for users
// live in _api.py; the checks here guard the core against a caller that bypasses it.
//
// This file is compiled once per instruction-set level (FASTKKT_VARIANT) into a module named
// FASTKKT_MODULE_NAME; see CMakeLists.txt and fastkkt/_dispatch.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings_qp.hpp"
#include "boundary.hpp"
#include "fastkkt/kkt.hpp"
#include "fastkkt/threads.hpp"

namespace py = pybind11;
using fastkkt::index_t;

namespace {

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

fastkkt::BatchShape batch_of(const py::array& Q) {
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
// exception) between chunks. `nthreads` is what the caller asked for; f gets what the thread
// policy allows (fastkkt/threads.hpp: one in a forked child, the caller's OpenMP limit).
template <class F>
void run_chunked(index_t B, index_t N, int nthreads, const F& f) {
  constexpr double kChunkFlops = 4e7;
  const int nt = fastkkt::usable_threads(nthreads);
  const double per_elem = fastkkt::element_flops(N);
  const index_t chunk = std::max<index_t>(1, static_cast<index_t>(kChunkFlops * nt / per_elem));
  for (index_t b0 = 0; b0 < B; b0 += chunk)
    fastkkt_boundary::run_released([&] { f(b0, std::min(B, b0 + chunk), nt); });
}

// Number of nonzero entries of info[0, B): lets the caller skip looking at info when all is well.
index_t count_failed(const std::int32_t* info, index_t B) {
  index_t bad = 0;
  for (index_t b = 0; b < B; ++b) bad += info[b] != 0;
  return bad;
}

template <class T>
index_t solve_t(const py::array& Q, const py::array& q, const py::array& A, const py::array& c,
                py::array& z, py::array& lam, py::array& info, bool check_finite, int nthreads,
                const py::object& records, const py::object& finfo) {
  const auto P = problem<T>(Q, &q, A, &c, check_finite);
  const index_t B = P.batch.size();
  T* zp = out_ptr<T>(z, "z", B * P.n);
  T* lp = out_ptr<T>(lam, "lam", B * P.m);
  auto* ip = out_ptr<std::int32_t>(info, "info", B);
  fastkkt::Keep<T> keep;
  py::array rec_a, finfo_a;
  if (!records.is_none()) {
    rec_a = records.cast<py::array>();
    finfo_a = finfo.cast<py::array>();
    keep.records = out_ptr<T>(rec_a, "records", B * fastkkt::record_size(P.n + P.m));
    keep.finfo = out_ptr<std::int32_t>(finfo_a, "finfo", B);
  }
  fastkkt::WorkspacePool<T> pool;  // one for all chunks
  run_chunked(B, P.n + P.m, nthreads, [&](index_t b0, index_t b1, int nt) {
    fastkkt::solve_batch(P, zp, lp, ip, b0, b1, nt, keep, &pool);
    fastkkt::reject_nonfinite(zp, lp, ip, P.n, P.m, b0, b1);
  });
  return count_failed(ip, B);
}

template <class T>
void factorize_t(const py::array& Q, const py::array& A, py::array& records, py::array& info,
                 bool check_finite, int nthreads) {
  const auto P = problem<T>(Q, nullptr, A, nullptr, check_finite);
  const index_t B = P.batch.size(), N = P.n + P.m;
  T* rp = out_ptr<T>(records, "records", B * fastkkt::record_size(N));
  auto* ip = out_ptr<std::int32_t>(info, "info", B);
  fastkkt::WorkspacePool<T> pool;
  run_chunked(B, N, nthreads, [&](index_t b0, index_t b1, int nt) {
    fastkkt::factorize_batch(P, rp, ip, b0, b1, nt, &pool);
  });
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
void solve_factored_t(const py::array& records, const py::array& finfo, const py::array& Q,
                      const py::array& q, const py::array& A, const py::array& c, py::array& z,
                      py::array& lam, py::array& info, bool check_finite, int nthreads) {
  const auto P = problem<T>(Q, &q, A, &c, check_finite);
  const index_t B = P.batch.size(), N = P.n + P.m;
  if (B == 0) return;  // an empty array may report any strides
  const auto R = record_view<T>(records, P.batch, N);
  const auto I = strided<std::int32_t>(finfo, P.batch, 0, "finfo");
  T* zp = out_ptr<T>(z, "z", B * P.n);
  T* lp = out_ptr<T>(lam, "lam", B * P.m);
  auto* ip = out_ptr<std::int32_t>(info, "info", B);
  fastkkt::WorkspacePool<T> pool;
  run_chunked(B, N, nthreads, [&](index_t b0, index_t b1, int nt) {
    fastkkt::solve_factored_batch(P, R, I, zp, lp, ip, b0, b1, nt, &pool);
    fastkkt::reject_nonfinite(zp, lp, ip, P.n, P.m, b0, b1);
  });
}

// Checks z, lam (B×n, B×m) and info (B) of a forward pass, all C-contiguous; returns (B, n, m).
template <class T>
void check_forward(const py::array& z, const py::array& lam, const py::array& info, index_t& B,
                   index_t& n, index_t& m) {
  check_array<T>(z, "z", false);
  check_array<T>(lam, "lam", false);
  check_array<std::int32_t>(info, "info", false);
  for (const auto* a : {&z, &lam, &info})
    if (!(a->flags() & py::array::c_style))
      throw std::invalid_argument("z, lam, info must be C-contiguous");
  if (z.ndim() < 1 || lam.ndim() != z.ndim())
    throw std::invalid_argument("z, lam, info: inconsistent shapes");
  n = z.shape(z.ndim() - 1);
  m = lam.shape(lam.ndim() - 1);
  B = info.size();
  if (z.size() != B * n || lam.size() != B * m)
    throw std::invalid_argument("z, lam, info: inconsistent sizes");
}

template <class T>
T* optional_out(const py::object& a, py::array& keep, const char* name, index_t size) {
  if (a.is_none()) return nullptr;
  keep = a.cast<py::array>();
  return out_ptr<T>(keep, name, size);
}

template <class T>
void backward_t(const py::array& records, const py::array& finfo, const py::array& Q,
                const py::array& A, const py::array& gz, const py::array& mglam, const py::array& z,
                const py::array& lam, const py::array& info, py::array& dz, py::array& gc,
                const py::object& dQ, const py::object& dA, int nthreads) {
  const auto P = problem<T>(Q, &gz, A, &mglam, false);
  index_t B = 0, n = 0, m = 0;
  check_forward<T>(z, lam, info, B, n, m);
  if (B != P.batch.size() || n != P.n || m != P.m)
    throw std::invalid_argument("z, lam, info: do not match Q and A");
  if (B == 0) return;
  const index_t N = n + m;
  const auto R = record_view<T>(records, P.batch, N);
  const auto I = strided<std::int32_t>(finfo, P.batch, 0, "finfo");
  T* dzp = out_ptr<T>(dz, "dz", B * n);
  T* gcp = out_ptr<T>(gc, "gc", B * m);
  py::array dQa, dAa;
  T* qp = optional_out<T>(dQ, dQa, "dQ", B * n * n);
  T* ap = optional_out<T>(dA, dAa, "dA", B * m * n);
  const auto* zp = static_cast<const T*>(z.data());
  const auto* lp = static_cast<const T*>(lam.data());
  const auto* ip = static_cast<const std::int32_t*>(info.data());
  std::vector<std::int32_t> ainfo(static_cast<size_t>(B));
  fastkkt::WorkspacePool<T> pool;
  run_chunked(B, N, nthreads, [&](index_t b0, index_t b1, int nt) {
    fastkkt::backward_batch(P, R, I, zp, lp, ip, dzp, gcp, ainfo.data(), qp, ap, b0, b1, nt, &pool);
  });
}

bool is_float32(const py::array& a) { return holds<float>(a.dtype()); }

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
  register_qp(mod);
  mod.def(
      "solve",
      [](const py::array& Q, const py::array& q, const py::array& A, const py::array& c,
         py::array z, py::array lam, py::array info, bool check_finite, int nthreads,
         const py::object& records, const py::object& finfo) {
        if (is_float32(Q))
          return solve_t<float>(Q, q, A, c, z, lam, info, check_finite, nthreads, records, finfo);
        return solve_t<double>(Q, q, A, c, z, lam, info, check_finite, nthreads, records, finfo);
      },
      py::arg("Q"), py::arg("q"), py::arg("A"), py::arg("c"), py::arg("z"), py::arg("lam"),
      py::arg("info"), py::arg("check_finite"), py::arg("nthreads"),
      py::arg("records") = py::none(), py::arg("finfo") = py::none());
  mod.def(
      "factorize",
      [](const py::array& Q, const py::array& A, py::array records, py::array info,
         bool check_finite, int nthreads) {
        if (is_float32(Q))
          factorize_t<float>(Q, A, records, info, check_finite, nthreads);
        else
          factorize_t<double>(Q, A, records, info, check_finite, nthreads);
      },
      py::arg("Q"), py::arg("A"), py::arg("records"), py::arg("info"), py::arg("check_finite"),
      py::arg("nthreads"));
  mod.def(
      "backward",
      [](const py::array& records, const py::array& finfo, const py::array& Q, const py::array& A,
         const py::array& gz, const py::array& mglam, const py::array& z, const py::array& lam,
         const py::array& info, py::array dz, py::array gc, const py::object& dQ,
         const py::object& dA, int nthreads) {
        if (is_float32(Q))
          backward_t<float>(records, finfo, Q, A, gz, mglam, z, lam, info, dz, gc, dQ, dA,
                            nthreads);
        else
          backward_t<double>(records, finfo, Q, A, gz, mglam, z, lam, info, dz, gc, dQ, dA,
                             nthreads);
      },
      py::arg("records"), py::arg("finfo"), py::arg("Q"), py::arg("A"), py::arg("gz"),
      py::arg("mglam"), py::arg("z"), py::arg("lam"), py::arg("info"), py::arg("dz"), py::arg("gc"),
      py::arg("dQ"), py::arg("dA"), py::arg("nthreads"));
  mod.def(
      "solve_factored",
      [](const py::array& records, const py::array& finfo, const py::array& Q, const py::array& q,
         const py::array& A, const py::array& c, py::array z, py::array lam, py::array info,
         bool check_finite, int nthreads) {
        if (is_float32(Q))
          solve_factored_t<float>(records, finfo, Q, q, A, c, z, lam, info, check_finite, nthreads);
        else
          solve_factored_t<double>(records, finfo, Q, q, A, c, z, lam, info, check_finite,
                                   nthreads);
      },
      py::arg("records"), py::arg("finfo"), py::arg("Q"), py::arg("q"), py::arg("A"), py::arg("c"),
      py::arg("z"), py::arg("lam"), py::arg("info"), py::arg("check_finite"), py::arg("nthreads"));
}
