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
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "boundary.hpp"
#include "fastkkt/qp_lanes_batch.hpp"
#include "fastkkt/threads.hpp"
#include "instances.hpp"

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
  const T inf = std::numeric_limits<T>::infinity();
  for (int k = 0; k < 8; ++k) {
    // x breaks the rule iff it fails one comparison (NaN fails every one): |x| < ∞ where no
    // infinity is allowed, x > −∞ where +∞ is, x < +∞ where −∞ is; an OR over a row, which
    // vectorizes (the branch per entry it replaces was ~3% of a call on mpc, before the solve)
    const int ok = inf_ok[k];
    // the inner loop: a vector's entries (one column), or a contiguous matrix as one block
    const bool vec = cols[k] == 1;
    const bool block = !vec && ops[k]->s1 == 1 && ops[k]->s0 == cols[k];
    const index_t outer = vec || block ? 1 : rows[k];
    const index_t inner = vec ? rows[k] : block ? rows[k] * cols[k] : cols[k];
    const index_t so = ops[k]->s0, si = vec ? ops[k]->s0 : ops[k]->s1;
    const T* last = nullptr;
    for (index_t b = 0; b < B; ++b) {
      const T* e = ops[k]->at(P.batch, b);
      if (e == last) continue;
      last = e;
      for (index_t i = 0; i < outer; ++i) {
        const T* r = e + i * so;
        int bad = 0;
#pragma omp simd reduction(| : bad)
        for (index_t j = 0; j < inner; ++j) {
          const T x = r[j * si];
          const bool good = ok == 0 ? std::abs(x) < inf : ok > 0 ? x > -inf : x < inf;
          bad |= good ? 0 : 1;
        }
        if (bad != 0) return k;
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
               py::array& iterations, const py::object& active, const py::object& factor,
               double tol, int max_iter, int nthreads, bool check_finite) {
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
  py::array act, fac;
  if (!active.is_none()) {
    act = active.cast<py::array>();
    O.active = out<std::int8_t>(act, "active", B * (P.p + P.n + 1));
  }
  if (!factor.is_none()) {
    if (active.is_none()) throw std::invalid_argument("factor: needs active");
    fac = factor.cast<py::array>();
    O.factor = out<T>(fac, "factor", B * fastkkt::qp::adjoint_factor_size(P.n, P.m, P.p));
  }
  if (!(tol > 0) || max_iter < 0) throw std::invalid_argument("tol must be > 0, max_iter >= 0");
  if (check_finite) {
    const int bad = first_nonfinite(P, B);
    if (bad >= 0) return bad;
  }
  fastkkt::qp::QPSettings<T> S;
  S.tol = static_cast<T>(tol);
  S.max_iter = max_iter;
  S.schur_mode = fastkkt::qp::schur_mode_from_env();  // read here, with the GIL held
  // chunks of about 4e7 flops per thread, with a signal check between them
  const double per = fastkkt::qp::qp_element_flops(P.n, P.m, P.p);
  // the thread policy of every call (threads.hpp): one thread in a forked child, the calling
  // thread's OpenMP limit, at most the cores; the GIL taken back outside destructors
  const int nt = fastkkt::usable_threads(nthreads);
  const index_t chunk = std::max<index_t>(1, static_cast<index_t>(4e7 * nt / per));
  // what elements sharing Q (and G) compute alike, once for the call (qp.hpp QPShared)
  fastkkt::qp::QPShared<T> shared;
  bool have_shared = false;
  fastkkt_boundary::run_released([&] { have_shared = fastkkt::qp::prepare_shared(P, S, shared); });
  if (have_shared) P.shared = &shared;
  for (index_t b0 = 0; b0 < B; b0 += chunk) {
    const index_t b1 = std::min(B, b0 + chunk);
    fastkkt_boundary::run_released([&] { fastkkt::qp::solve_qp_batch_lanes(P, S, O, b0, b1, nt); });
  }
  return -1;
}

// A view of `a` broadcast to `batch` (numpy rules: trailing `inner` dimensions of sizes d0, d1;
// batch dimensions right-aligned, missing or of size 1 along a longer batch dimension: stride
// 0). None: a null view (an absent operand or a zero incoming gradient).
template <class T>
fastkkt::Strided<T> bview(const py::object& obj, const fastkkt::BatchShape& batch, int inner,
                          index_t d0, index_t d1, const char* name) {
  fastkkt::Strided<T> s;
  if (obj.is_none()) return s;
  const auto a = obj.cast<py::array>();
  check_dtype<T>(a, name);
  const int extra = static_cast<int>(a.ndim()) - inner;
  if (extra < 0 || extra > batch.ndim)
    throw std::invalid_argument(std::string(name) + ": wrong number of dimensions");
  const auto it = static_cast<py::ssize_t>(sizeof(T));
  s.data = static_cast<const T*>(a.data());
  for (int d = 0; d < batch.ndim; ++d) {
    const int ad = d - (batch.ndim - extra);
    if (ad < 0 || a.shape(ad) == 1) continue;
    if (a.shape(ad) != batch.shape[d])
      throw std::invalid_argument(std::string(name) + ": batch shape mismatch");
    s.bstride[d] = a.strides(ad) / it;
  }
  if (inner >= 1) {
    if (a.shape(extra) != d0) throw std::invalid_argument(std::string(name) + ": wrong shape");
    s.s0 = a.strides(extra) / it;
  }
  if (inner >= 2) {
    if (a.shape(extra + 1) != d1) throw std::invalid_argument(std::string(name) + ": wrong shape");
    s.s1 = a.strides(extra + 1) / it;
  }
  return s;
}

// A gradient output: a C-contiguous array of the operand's own shape, `inner` trailing
// dimensions (rows, cols), its batch dimensions broadcast to `batch`. None: not requested.
template <class T>
fastkkt::qp::GradTarget<T> target(const py::object& obj, const fastkkt::BatchShape& batch,
                                  int inner, index_t rows, index_t cols, const char* name) {
  fastkkt::qp::GradTarget<T> t;
  if (obj.is_none()) return t;
  auto a = obj.cast<py::array>();
  const int extra = static_cast<int>(a.ndim()) - inner;
  if (extra < 0 || extra > batch.ndim)
    throw std::invalid_argument(std::string(name) + ": wrong number of dimensions");
  if (a.shape(extra) != (inner == 2 ? rows : cols) || (inner == 2 && a.shape(extra + 1) != cols))
    throw std::invalid_argument(std::string(name) + ": wrong shape");
  index_t nblocks = 1;
  for (int d = 0; d < extra; ++d) nblocks *= a.shape(d);
  t.data = out<T>(a, name, nblocks * rows * cols);
  t.nblocks = nblocks;
  index_t stride = 1;
  for (int d = batch.ndim - 1; d >= 0; --d) {
    const int ad = d - (batch.ndim - extra);
    if (ad < 0) break;
    if (a.shape(ad) != 1 && a.shape(ad) != batch.shape[d])
      throw std::invalid_argument(std::string(name) + ": batch shape mismatch");
    t.bstride[d] = a.shape(ad) == 1 ? 0 : stride;
    stride *= a.shape(ad);
  }
  return t;
}

// Returns how many elements phase 1 solved with the kept factorization, with a fresh one and by
// least squares (qp_adjoint.hpp AdjointPath): a diagnostic for tests and benchmarks.
template <class T>
py::tuple qp_adjoint_t(const py::array& Q, const py::object& A, const py::object& G,
                       const py::array& z, const py::array& lam, const py::array& mu,
                       const py::array& info, const py::array& active, const py::array& factor,
                       const py::object& gz, const py::object& glam, const py::object& gmu,
                       const py::object& gnu, const py::object& gQ, const py::object& gq,
                       const py::object& gA, const py::object& gc, const py::object& gG,
                       const py::object& gh, const py::object& glb, const py::object& gub,
                       int nthreads) {
  if (z.ndim() < 1 || z.ndim() - 1 > fastkkt::kMaxBatchDims)
    throw std::invalid_argument("z: wrong number of dimensions");
  fastkkt::qp::AdjointProblem<T> P;
  P.batch.ndim = static_cast<int>(z.ndim() - 1);
  for (int d = 0; d < P.batch.ndim; ++d) P.batch.shape[d] = z.shape(d);
  const int bd = P.batch.ndim;
  P.n = z.shape(bd);
  if (lam.ndim() != bd + 1 || mu.ndim() != bd + 1)
    throw std::invalid_argument("lam, mu: wrong number of dimensions");
  P.m = lam.shape(bd);
  P.p = mu.shape(bd);
  const index_t n = P.n, m = P.m, p = P.p, B = P.batch.size();
  if ((m > 0 && A.is_none()) || (p > 0 && G.is_none()))
    throw std::invalid_argument("A, G: missing for m, p > 0");
  P.Q = bview<T>(Q, P.batch, 2, n, n, "Q");
  P.A = bview<T>(A, P.batch, 2, m, n, "A");
  P.G = bview<T>(G, P.batch, 2, p, n, "G");
  // the forward outputs: C-contiguous, of the batch shape
  auto in = [&](const py::array& a, const char* name, index_t size) {
    if (!(a.flags() & py::array::c_style) || a.size() != size)
      throw std::invalid_argument(std::string(name) + ": must be C-contiguous of the batch shape");
    return a.data();
  };
  check_dtype<T>(z, "z");
  check_dtype<T>(lam, "lam");
  check_dtype<T>(mu, "mu");
  check_dtype<std::int32_t>(info, "info");
  check_dtype<std::int8_t>(active, "active");
  P.z = static_cast<const T*>(in(z, "z", B * n));
  P.lam = static_cast<const T*>(in(lam, "lam", B * m));
  P.mu = static_cast<const T*>(in(mu, "mu", B * p));
  P.info = static_cast<const std::int32_t*>(in(info, "info", B));
  P.active = static_cast<const std::int8_t*>(in(active, "active", B * (p + n + 1)));
  if (factor.size() > 0) {
    check_dtype<T>(factor, "factor");
    P.factor_stride = fastkkt::qp::adjoint_factor_size(n, m, p);
    P.factor = static_cast<const T*>(in(factor, "factor", B * P.factor_stride));
  }
  P.gz = bview<T>(gz, P.batch, 1, n, 0, "gz");
  P.glam = bview<T>(glam, P.batch, 1, m, 0, "glam");
  P.gmu = bview<T>(gmu, P.batch, 1, p, 0, "gmu");
  P.gnu = bview<T>(gnu, P.batch, 1, n, 0, "gnu");
  fastkkt::qp::AdjointGrads<T> O;
  O.Q = target<T>(gQ, P.batch, 2, n, n, "gQ");
  O.q = target<T>(gq, P.batch, 1, 1, n, "gq");
  O.A = target<T>(gA, P.batch, 2, m, n, "gA");
  O.c = target<T>(gc, P.batch, 1, 1, m, "gc");
  O.G = target<T>(gG, P.batch, 2, p, n, "gG");
  O.h = target<T>(gh, P.batch, 1, 1, p, "gh");
  O.lb = target<T>(glb, P.batch, 1, 1, n, "glb");
  O.ub = target<T>(gub, P.batch, 1, 1, n, "gub");
  std::vector<T> scratch(
      static_cast<size_t>(std::max<index_t>(B * fastkkt::qp::adjoint_scratch_width(n, m, p), 1)));
  std::vector<std::int8_t> path(static_cast<size_t>(std::max<index_t>(B, 1)), 0);
  const int nt = fastkkt::usable_threads(nthreads);
  const double N = static_cast<double>(n + m + p);
  const index_t chunk =
      std::max<index_t>(1, static_cast<index_t>(4e7 * std::max(nthreads, 1) / (10 * N * N + 1)));
  for (index_t b0 = 0; b0 < B; b0 += chunk) {
    const index_t b1 = std::min(B, b0 + chunk);
    fastkkt_boundary::run_released(
        [&] { fastkkt::qp::adjoint_vectors(P, scratch.data(), path.data(), b0, b1, nt); });
  }
  fastkkt_boundary::run_released([&] { fastkkt::qp::adjoint_grads(P, scratch.data(), O, nt); });
  index_t count[4] = {0, 0, 0, 0};
  for (index_t b = 0; b < B; ++b) ++count[path[static_cast<size_t>(b)]];
  return py::make_tuple(count[fastkkt::qp::kAdjointKept], count[fastkkt::qp::kAdjointFactored],
                        count[fastkkt::qp::kAdjointLstsq]);
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
         py::array iterations, const py::object& active, const py::object& factor, double tol,
         int max_iter, int nthreads, bool check_finite) {
        if (fastkkt_boundary::holds<float>(Q.dtype()))
          return solve_qp_t<float>(Q, q, A, c, G, h, lb, ub, z, lam, mu, nu, info, iterations,
                                   active, factor, tol, max_iter, nthreads, check_finite);
        return solve_qp_t<double>(Q, q, A, c, G, h, lb, ub, z, lam, mu, nu, info, iterations,
                                  active, factor, tol, max_iter, nthreads, check_finite);
      },
      py::arg("Q"), py::arg("q"), py::arg("A"), py::arg("c"), py::arg("G"), py::arg("h"),
      py::arg("lb"), py::arg("ub"), py::arg("z"), py::arg("lam"), py::arg("mu"), py::arg("nu"),
      py::arg("info"), py::arg("iterations"), py::arg("active"), py::arg("factor"), py::arg("tol"),
      py::arg("max_iter"), py::arg("nthreads"), py::arg("check_finite") = false);
  mod.def(
      "qp_factor_size",
      [](index_t n, index_t m, index_t p) { return fastkkt::qp::adjoint_factor_size(n, m, p); },
      py::arg("n"), py::arg("m"), py::arg("p"));
  mod.def(
      "qp_adjoint",
      [](const py::array& Q, const py::object& A, const py::object& G, const py::array& z,
         const py::array& lam, const py::array& mu, const py::array& info, const py::array& active,
         const py::array& factor, const py::object& gz, const py::object& glam,
         const py::object& gmu, const py::object& gnu, const py::object& gQ, const py::object& gq,
         const py::object& gA, const py::object& gc, const py::object& gG, const py::object& gh,
         const py::object& glb, const py::object& gub, int nthreads) {
        if (fastkkt_boundary::holds<float>(z.dtype()))
          return qp_adjoint_t<float>(Q, A, G, z, lam, mu, info, active, factor, gz, glam, gmu, gnu,
                                     gQ, gq, gA, gc, gG, gh, glb, gub, nthreads);
        return qp_adjoint_t<double>(Q, A, G, z, lam, mu, info, active, factor, gz, glam, gmu, gnu,
                                    gQ, gq, gA, gc, gG, gh, glb, gub, nthreads);
      },
      py::arg("Q"), py::arg("A"), py::arg("G"), py::arg("z"), py::arg("lam"), py::arg("mu"),
      py::arg("info"), py::arg("active"), py::arg("factor"), py::arg("gz"), py::arg("glam"),
      py::arg("gmu"), py::arg("gnu"), py::arg("gQ"), py::arg("gq"), py::arg("gA"), py::arg("gc"),
      py::arg("gG"), py::arg("gh"), py::arg("glb"), py::arg("gub"), py::arg("nthreads"));
}
