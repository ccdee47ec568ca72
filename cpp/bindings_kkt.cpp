// The Python boundary of the KKT engine's drivers (fastkkt/drivers.hpp): solve, factorize and
// solve with stored factorizations, for float32 and float64. Converts and checks the arrays
// (arrays.hpp), releases the GIL around the core; nothing about users' shapes or messages.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "arrays.hpp"
#include "fastkkt/drivers.hpp"
#include "instances.hpp"
#include "register.hpp"

namespace {

namespace py = pybind11;
using fastkkt::index_t;
using namespace fastkkt_bindings;

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
  run_chunked(B, fastkkt::element_flops(P.n + P.m), nthreads, [&](index_t b0, index_t b1, int nt) {
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
  run_chunked(B, fastkkt::element_flops(N), nthreads, [&](index_t b0, index_t b1, int nt) {
    fastkkt::factorize_batch(P, rp, ip, b0, b1, nt, &pool);
  });
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
  run_chunked(B, fastkkt::solve_flops(N), nthreads, [&](index_t b0, index_t b1, int nt) {
    fastkkt::solve_factored_batch(P, R, I, zp, lp, ip, b0, b1, nt, &pool);
    fastkkt::reject_nonfinite(zp, lp, ip, P.n, P.m, b0, b1);
  });
}

}  // namespace

void register_kkt(pybind11::module_& mod) {
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
