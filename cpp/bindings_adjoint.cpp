// The Python boundary of the backward pass (fastkkt/adjoint.hpp): the adjoint solve with the
// kept factorizations and the input gradients, for float32 and float64, in one call.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "arrays.hpp"
#include "fastkkt/adjoint.hpp"
#include "instances.hpp"
#include "register.hpp"

namespace {

namespace py = pybind11;
using fastkkt::index_t;
using namespace fastkkt_bindings;

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
  run_chunked(B, fastkkt::solve_flops(N), nthreads, [&](index_t b0, index_t b1, int nt) {
    fastkkt::backward_batch(P, R, I, zp, lp, ip, dzp, gcp, ainfo.data(), qp, ap, b0, b1, nt, &pool);
  });
}

}  // namespace

void register_adjoint(pybind11::module_& mod) {
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
}
