// The Python boundary of the QP solver (fastkkt/qp.hpp): converts the arrays that
// fastkkt/_qp.py has validated, converted to one float dtype and broadcast to one batch shape
// into strided views, runs the solver with the GIL released in chunks (checking for
// KeyboardInterrupt between them), and exports the status codes. Shape rules and messages for users live in
// _qp.py; the checks here guard the core against a caller that bypasses it.
#include "bindings_qp.hpp"

#include <pybind11/numpy.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "boundary.hpp"
#include "fastkkt/qp.hpp"
#include "fastkkt/threads.hpp"

namespace py = pybind11;
using fastkkt::index_t;

namespace {

template <class T>
void check_dtype(const py::array& a, const char* name) {
  if (!fastkkt_boundary::holds<T>(a.dtype()))  // equivalent dtypes (pickled, …) too
    throw py::type_error(std::string(name) + ": expected dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(a.dtype())));
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
    throw std::invalid_argument(std::string(name) + ": array is not aligned");
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.strides(d) % static_cast<py::ssize_t>(sizeof(T)) != 0)
      throw std::invalid_argument(std::string(name) + ": strides must be multiples of itemsize");
}

// A view of `a` (batch dims + `inner` trailing dims of the given sizes) over `batch`.
template <class T>
fastkkt::Strided<T> view(const py::array& a, const fastkkt::BatchShape& batch, int inner,
                         index_t d0, index_t d1, const char* name) {
  check_dtype<T>(a, name);
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
  if (inner >= 1) {
    if (a.shape(batch.ndim) != d0) throw std::invalid_argument(std::string(name) + ": wrong shape");
    s.s0 = a.strides(batch.ndim) / it;
  }
  if (inner >= 2) {
    if (a.shape(batch.ndim + 1) != d1)
      throw std::invalid_argument(std::string(name) + ": wrong shape");
    s.s1 = a.strides(batch.ndim + 1) / it;
  }
  return s;
}

template <class T>
T* out(py::array& a, const char* name, index_t size) {
  check_dtype<T>(a, name);
  if (!(a.writeable() && (a.flags() & py::array::c_style)))
    throw std::invalid_argument(std::string(name) + ": output must be C-contiguous and writeable");
  if (a.size() != size) throw std::invalid_argument(std::string(name) + ": wrong size");
  return static_cast<T*>(a.mutable_data());
}

// The finiteness rules of solve_qp's input (check_finite): NaN nowhere, ±inf nowhere in Q, q, A,
// c, G, no −inf in h and ub (+inf there means no constraint), no +inf in lb (−inf: no bound).
// Returns the index (0 … 7 for Q, q, A, c, G, h, lb, ub) of the first operand that breaks them
// in elements [0, B), else −1. An element address equal to the one before (an operand broadcast
// along the innermost batch dimensions) is not checked again.
template <class T>
int first_nonfinite(const fastkkt::qp::QPProblem<T>& P, index_t B) {
  const fastkkt::Strided<T>* ops[8] = {&P.Q, &P.q, &P.A, &P.c, &P.G, &P.h, &P.lb, &P.ub};
  const index_t rows[8] = {P.n, P.n, P.m, P.m, P.p, P.p, P.n, P.n};
  const index_t cols[8] = {P.n, 1, P.n, 1, P.n, 1, 1, 1};
  const int inf_ok[8] = {0, 0, 0, 0, 0, 1, -1, 1};  // the infinity allowed: +1 +inf, −1 −inf
  for (int k = 0; k < 8; ++k) {
    const T* last = nullptr;
    for (index_t b = 0; b < B; ++b) {
      const T* e = ops[k]->at(P.batch, b);
      if (e == last) continue;
      last = e;
      for (index_t i = 0; i < rows[k]; ++i)
        for (index_t j = 0; j < cols[k]; ++j) {
          const T x = e[i * ops[k]->s0 + j * ops[k]->s1];
          if (std::isfinite(x)) continue;
          if (std::isnan(x) || inf_ok[k] == 0 || (x > 0) != (inf_ok[k] > 0)) return k;
        }
    }
  }
  return -1;
}

// Solves the batch; with `check_finite` first checks the input (first_nonfinite) and returns the
// index of an operand that breaks the rules without solving anything, else returns −1.
template <class T>
int solve_qp_t(const py::array& Q, const py::array& q, const py::array& A, const py::array& c,
               const py::array& G, const py::array& h, const py::array& lb, const py::array& ub,
               py::array& z, py::array& lam, py::array& mu, py::array& nu, py::array& info,
               py::array& iterations, const py::object& active, double tol, int max_iter,
               int nthreads, bool check_finite) {
  if (Q.ndim() < 2 || Q.ndim() - 2 > fastkkt::kMaxBatchDims)
    throw std::invalid_argument("Q: wrong number of dimensions");
  fastkkt::qp::QPProblem<T> P;
  P.batch.ndim = static_cast<int>(Q.ndim() - 2);
  for (int d = 0; d < P.batch.ndim; ++d) P.batch.shape[d] = Q.shape(d);
  const int bd = P.batch.ndim;
  P.n = Q.shape(bd);
  if (A.ndim() != bd + 2 || G.ndim() != bd + 2)
    throw std::invalid_argument("A, G: wrong number of dimensions");
  P.m = A.shape(bd);
  P.p = G.shape(bd);
  P.Q = view<T>(Q, P.batch, 2, P.n, P.n, "Q");
  P.q = view<T>(q, P.batch, 1, P.n, 0, "q");
  P.A = view<T>(A, P.batch, 2, P.m, P.n, "A");
  P.c = view<T>(c, P.batch, 1, P.m, 0, "c");
  P.G = view<T>(G, P.batch, 2, P.p, P.n, "G");
  P.h = view<T>(h, P.batch, 1, P.p, 0, "h");
  P.lb = view<T>(lb, P.batch, 1, P.n, 0, "lb");
  P.ub = view<T>(ub, P.batch, 1, P.n, 0, "ub");
  const index_t B = P.batch.size();
  fastkkt::qp::QPOutput<T> O;
  O.z = out<T>(z, "z", B * P.n);
  O.lam = out<T>(lam, "lam", B * P.m);
  O.mu = out<T>(mu, "mu", B * P.p);
  O.nu = out<T>(nu, "nu", B * P.n);
  O.info = out<std::int32_t>(info, "info", B);
  O.iterations = out<std::int32_t>(iterations, "iterations", B);
  py::array act;
  if (!active.is_none()) {
    act = active.cast<py::array>();
    O.active = out<std::int8_t>(act, "active", B * (P.p + P.n));
  }
  if (!(tol > 0) || max_iter < 0) throw std::invalid_argument("tol must be > 0, max_iter >= 0");
  if (check_finite) {
    const int bad = first_nonfinite(P, B);
    if (bad >= 0) return bad;
  }
  fastkkt::qp::QPSettings<T> S;
  S.tol = static_cast<T>(tol);
  S.max_iter = max_iter;
  // chunks of about 4e7 flops per thread, with a signal check between them
  const double per = fastkkt::qp::qp_element_flops(P.n, P.m, P.p);
  // the thread policy of every call (threads.hpp): one thread in a forked child, the calling
  // thread's OpenMP limit, at most the cores; the GIL taken back outside destructors
  const int nt = fastkkt::usable_threads(nthreads);
  const index_t chunk = std::max<index_t>(1, static_cast<index_t>(4e7 * nt / per));
  for (index_t b0 = 0; b0 < B; b0 += chunk) {
    const index_t b1 = std::min(B, b0 + chunk);
    fastkkt_boundary::run_released([&] { fastkkt::qp::solve_qp_batch(P, S, O, b0, b1, nt); });
  }
  return -1;
}

}  // namespace

void register_qp(py::module_& mod) {
  // The per-element status codes of the QP solver, written once here (fastkkt/_status.py).
  py::dict qp_status;
  qp_status["solved"] = static_cast<int>(fastkkt::qp::kQPSolved);
  qp_status["primal_infeasible"] = static_cast<int>(fastkkt::qp::kPrimalInfeasible);
  qp_status["dual_infeasible"] = static_cast<int>(fastkkt::qp::kDualInfeasible);
  qp_status["max_iter"] = static_cast<int>(fastkkt::qp::kMaxIter);
  mod.attr("qp_status") = qp_status;
  mod.def(
      "solve_qp",
      [](const py::array& Q, const py::array& q, const py::array& A, const py::array& c,
         const py::array& G, const py::array& h, const py::array& lb, const py::array& ub,
         py::array z, py::array lam, py::array mu, py::array nu, py::array info,
         py::array iterations, const py::object& active, double tol, int max_iter, int nthreads,
         bool check_finite) {
        if (fastkkt_boundary::holds<float>(Q.dtype()))
          return solve_qp_t<float>(Q, q, A, c, G, h, lb, ub, z, lam, mu, nu, info, iterations,
                                   active, tol, max_iter, nthreads, check_finite);
        return solve_qp_t<double>(Q, q, A, c, G, h, lb, ub, z, lam, mu, nu, info, iterations,
                                  active, tol, max_iter, nthreads, check_finite);
      },
      py::arg("Q"), py::arg("q"), py::arg("A"), py::arg("c"), py::arg("G"), py::arg("h"),
      py::arg("lb"), py::arg("ub"), py::arg("z"), py::arg("lam"), py::arg("mu"), py::arg("nu"),
      py::arg("info"), py::arg("iterations"), py::arg("active"), py::arg("tol"),
      py::arg("max_iter"), py::arg("nthreads"), py::arg("check_finite") = false);
}
