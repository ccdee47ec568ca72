"""The methods that the benchmarks time, shared by the pytest suites and ``report.py``.

Each method is a ``make(problem)`` that does the untimed work (importing, compiling, wrapping
the NumPy inputs without copying them) and returns the closure to time. Whatever a method
needs to assemble from (Q, q, A, c) -- a KKT matrix, a right-hand side, sym(Q) -- is built
inside the closure. Forward closures return z; forward+backward closures return the
gradients of ``sum(w * z)`` with respect to (Q, q, A, c).

Q from the generator is exactly symmetric, so the forward peers use it as it is; the
autograd peers form sym(Q) = (Q + Qᵀ)/2 as fastkkt's contract does, so that their gradient
with respect to Q is the one of that contract (a symmetric matrix).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

import numpy as np
import scipy.linalg

import fastkkt
from fastkkt.testing import (
    QP_CASES,
    assert_allclose_normwise,
    clarabel_qp,
    loss_weights,
    qp_case,
    random_qp,
)

#: The cases of BENCH.md, (B, n, m).
CASES = [
    (1, 16, 4),
    (128, 16, 4),
    (1024, 32, 8),
    (4096, 64, 16),
    (256, 128, 32),
    (32, 512, 128),
    (1, 1000, 200),
]
#: Left out by a quick run: the two cases with the most work.
BIG_CASES = [(4096, 64, 16), (32, 512, 128)]
#: Every answer is checked against an independent one to this normwise relative tolerance.
RTOL = 1e-8


def quick_from_env() -> bool:
    return os.environ.get("FASTKKT_BENCH_QUICK", "") not in ("", "0")


def cases(quick: bool = False) -> list[tuple[int, int, int]]:
    return [case for case in CASES if not (quick and case in BIG_CASES)]


def case_name(case: tuple[int, int, int]) -> str:
    return "x".join(str(k) for k in case)


def flops(case: tuple[int, int, int]) -> float:
    """One factorization and solve of each KKT matrix: B((n+m)³/3 + 2(n+m)²)."""
    B, n, m = case
    N = n + m
    return B * (N**3 / 3 + 2 * N**2)


def input_bytes(case: tuple[int, int, int]) -> int:
    """float64 bytes of (Q, q, A, c): 8·B·(n² + n + mn + m)."""
    B, n, m = case
    return 8 * B * (n * n + n + m * n + m)


# --------------------------------------------------------------------------------------------
# problems and the answers they are checked against


class Problem:
    """One benchmark case from the shared generator, with lazily computed reference answers."""

    def __init__(self, case: tuple[int, int, int]) -> None:
        self.case = case
        B, n, m = case
        self.B, self.n, self.m = case
        self.Q, self.q, self.A, self.c = random_qp(B, n, m)
        self.w = loss_weights(B, n, m)

    @cached_property
    def z_ref(self) -> np.ndarray:
        return fastkkt.reference.solve(self.Q, self.q, self.A, self.c)

    @cached_property
    def grads_ref(self) -> tuple[np.ndarray, ...]:
        """Gradients of sum(w * z) by torch.linalg.solve and autograd, computed once."""
        return tuple(g.numpy() for g in torch_lu_grad(self)())

    def check_z(self, z: Any, rtol: float = RTOL) -> None:
        z = np.asarray(z).reshape(self.B, self.n)
        assert_allclose_normwise(z, self.z_ref, rtol, err_msg=f"z, case {self.case}")

    def check_grads(self, grads: tuple[Any, ...], rtol: float = RTOL) -> None:
        for name, g, ref in zip("QqAc", grads, self.grads_ref):
            g = np.asarray(g).reshape(self.B, -1)
            assert_allclose_normwise(
                g, ref.reshape(self.B, -1), rtol, err_msg=f"d/d{name}, case {self.case}"
            )


# --------------------------------------------------------------------------------------------
# forward methods


def fastkkt_solve(p: Problem) -> Callable[[], Any]:
    return lambda: fastkkt.solve(p.Q, p.q, p.A, p.c)


def _numpy_kkt(Q, q, A, c):
    B, n = q.shape
    N = n + c.shape[-1]
    K = np.zeros((B, N, N))
    K[:, :n, :n] = Q
    K[:, n:, :n] = A
    K[:, :n, n:] = A.transpose(0, 2, 1)
    rhs = np.concatenate([-q, c], axis=-1)
    return K, rhs


def numpy_solve(p: Problem) -> Callable[[], Any]:
    def run():
        K, rhs = _numpy_kkt(p.Q, p.q, p.A, p.c)
        return np.linalg.solve(K, rhs[..., None])[:, : p.n, 0]

    return run


def scipy_loop(p: Problem) -> Callable[[], Any]:
    def run():
        K, rhs = _numpy_kkt(p.Q, p.q, p.A, p.c)
        x = [
            scipy.linalg.solve(Kb, rb, assume_a="sym", check_finite=False) for Kb, rb in zip(K, rhs)
        ]
        return np.stack(x)[:, : p.n]

    return run


def _torch_inputs(p: Problem, requires_grad: bool = False) -> list:
    import torch

    return [torch.from_numpy(x).requires_grad_(requires_grad) for x in (p.Q, p.q, p.A, p.c)]


def _torch_kkt_solve(Q, q, A, c):
    import torch

    K = torch.cat(
        [
            torch.cat([Q, A.mT], -1),
            torch.cat([A, A.new_zeros(A.shape[0], A.shape[1], A.shape[1])], -1),
        ],
        -2,
    )
    rhs = torch.cat([-q, c], -1)
    return torch.linalg.solve(K, rhs.unsqueeze(-1))[:, : q.shape[-1], 0]


def _torch_chol_schur(Q, q, A, c):
    """Range space: L = chol(Q), [X, y] = Q⁻¹[Aᵀ, q], S = A X, λ = −S⁻¹(c + A y), z = −y − X λ."""
    import torch

    m = A.shape[-2]
    L = torch.linalg.cholesky(Q)
    Xy = torch.cholesky_solve(torch.cat([A.mT, q.unsqueeze(-1)], -1), L)
    X, y = Xy[..., :m], Xy[..., m:]
    S = A @ X
    lam = torch.cholesky_solve(-(c.unsqueeze(-1) + A @ y), torch.linalg.cholesky(S))
    return -(y + X @ lam)[..., 0]


def torch_lu(p: Problem) -> Callable[[], Any]:
    args = _torch_inputs(p)
    return lambda: _torch_kkt_solve(*args)


def torch_chol(p: Problem) -> Callable[[], Any]:
    args = _torch_inputs(p)
    return lambda: _torch_chol_schur(*args)


def qpth_solve(p: Problem) -> Callable[[], Any]:
    """qpth cannot take equality constraints alone: one inactive inequality 0ᵀz ≤ 1 is added
    (a zero row, so it does not perturb z)."""
    import torch
    from qpth.qp import QPFunction, QPSolvers

    Q, q, A, c = _torch_inputs(p)
    f = QPFunction(verbose=-1, check_Q_spd=False, solver=QPSolvers.PDIPM_BATCHED)

    def run():
        G = Q.new_zeros(p.B, 1, p.n)
        h = Q.new_ones(p.B, 1)
        with torch.no_grad():
            return f(Q, q, G, h, A, c)

    return run


def proxsuite_loop(p: Problem) -> Callable[[], Any]:
    import proxsuite

    dense = proxsuite.proxqp.dense

    def run():
        return np.stack(
            [
                dense.solve(H, g, A, b, None, None, None, eps_abs=1e-12, eps_rel=0.0).x
                for H, g, A, b in zip(p.Q, p.q, p.A, p.c)
            ]
        )

    return run


def jaxopt_lu(p: Problem) -> Callable[[], Any]:
    """jaxopt.EqualityConstrainedQP with jaxopt's dense LU solve (its default, GMRES, is slower
    and less accurate), vmapped and jitted. solve_lu takes one array, the KKT system a pair."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jaxopt
    from jax.flatten_util import ravel_pytree

    def solve_lu(matvec, b, **_):
        flat, unravel = ravel_pytree(b)
        return unravel(
            jaxopt.linear_solve.solve_lu(lambda x: ravel_pytree(matvec(unravel(x)))[0], flat)
        )

    qp = jaxopt.EqualityConstrainedQP(solve=solve_lu)

    def one(Q, q, A, c):
        return qp.run(params_obj=(Q, q), params_eq=(A, c)).params.primal

    f = jax.jit(jax.vmap(one))
    # Inputs live on the device before timing: the copy into JAX is not part of the solve.
    args = [jax.device_put(x) for x in (p.Q, p.q, p.A, p.c)]
    return lambda: f(*args).block_until_ready()


# --------------------------------------------------------------------------------------------
# forward + backward: gradients of sum(w * z) with respect to (Q, q, A, c)


def _sym(Q):
    return (Q + Q.mT) / 2


def _autograd(p: Problem, forward: Callable[..., Any]) -> Callable[[], Any]:
    import torch

    args = _torch_inputs(p, requires_grad=True)
    w = torch.from_numpy(p.w)

    def run():
        z = forward(*args)
        return torch.autograd.grad((w * z).sum(), args)

    return run


def fastkkt_torch_grad(p: Problem) -> Callable[[], Any]:
    import fastkkt.torch

    return _autograd(p, fastkkt.torch.solve)


def torch_lu_grad(p: Problem) -> Callable[[], Any]:
    return _autograd(p, lambda Q, q, A, c: _torch_kkt_solve(_sym(Q), q, A, c))


def torch_chol_grad(p: Problem) -> Callable[[], Any]:
    return _autograd(p, lambda Q, q, A, c: _torch_chol_schur(_sym(Q), q, A, c))


# --------------------------------------------------------------------------------------------
# the registry


@dataclass(frozen=True)
class Method:
    name: str
    make: Callable[[Problem], Callable[[], Any]]
    module: str | None = None  # an optional dependency: skipped when it does not import
    max_batch: int | None = None  # a per-problem Python loop: only for batches up to this
    rtol: float = RTOL

    def applies(self, case: tuple[int, int, int]) -> bool:
        return self.max_batch is None or case[0] <= self.max_batch

    def missing(self) -> str | None:
        """None when the method can run here, else why not."""
        if self.module is None:
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(self.module)
        except Exception as exc:  # ImportError, or a peer broken by the installed numpy
            return f"{self.module} does not import: {exc}"
        return None


FASTKKT = "fastkkt"
FORWARD = [
    Method(FASTKKT, fastkkt_solve),
    Method("numpy.linalg.solve", numpy_solve),
    Method("torch.linalg.solve", torch_lu, module="torch"),
    Method("torch Cholesky+Schur", torch_chol, module="torch"),
    Method("scipy.linalg.solve loop", scipy_loop, max_batch=1024),
    Method("qpth", qpth_solve, module="qpth"),
    Method("proxsuite", proxsuite_loop, module="proxsuite"),
    Method("jaxopt (LU)", jaxopt_lu, module="jaxopt"),
]
BACKWARD = [
    Method("fastkkt.torch", fastkkt_torch_grad, module="fastkkt.torch"),
    Method("torch.linalg.solve + autograd", torch_lu_grad, module="torch"),
    Method("torch Cholesky+Schur + autograd", torch_chol_grad, module="torch"),
]


def ideal_seconds(case: tuple[int, int, int], peak_flops: float, bandwidth: float) -> float:
    return max(flops(case) / peak_flops, input_bytes(case) / bandwidth)


# ============================================================================================
# solve_qp: the suite of BENCH_QP.md (forward only)


#: Cases a quick (smoke) run keeps: the polished reference of the others takes minutes.
QP_QUICK_CASES = ["tiny", "scqpth_small"]
#: BENCH_QP.md's bar: ‖z − z_ref‖∞ / max(1, ‖z_ref‖∞) ≤ 1e-6 on every problem.
QP_RTOL = 1e-6
_QP_ARGS = ("Q", "q", "A", "c", "G", "h", "lb", "ub")


def qp_cases(quick: bool = False) -> list[str]:
    return [name for name in QP_CASES if not quick or name in QP_QUICK_CASES]


class QPProblem:
    """One BENCH_QP.md case (fastkkt.testing.qp_case) with its polished reference answer
    (Clarabel at 1e-10 + active-set polish, fastkkt.testing.clarabel_qp), computed on first
    use."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.B, self.n, self.m, self.p, self.box, _ = QP_CASES[name]
        data = qp_case(name)
        self.w = data.pop("w")
        self.args = {k: data[k] for k in _QP_ARGS if data[k] is not None}

    def __getitem__(self, key: str) -> np.ndarray | None:
        return self.args.get(key)

    def rows(self) -> tuple[list[np.ndarray], ...]:
        """Per problem: (Q, q, A, c, G, h, lb, ub) with empty A/G and infinite bounds where
        the case has none, as float64 arrays (for the peers' loops)."""
        B, n = self.B, self.n
        get = self.args.get
        return (
            get("Q"),
            get("q"),
            get("A", np.zeros((B, 0, n))),
            get("c", np.zeros((B, 0))),
            get("G", np.zeros((B, 0, n))),
            get("h", np.zeros((B, 0))),
            get("lb", np.full((B, n), -np.inf)),
            get("ub", np.full((B, n), np.inf)),
        )

    @cached_property
    def reference(self) -> dict:
        """Polished Clarabel (BENCH_QP.md); where clarabel is not installed, the pure-NumPy
        fastkkt.reference.solve_qp, which is polished too (the two agree to 4e-13 or better
        on every case)."""
        if importlib.util.find_spec("clarabel") is not None:
            ref = clarabel_qp(**self.args, tol=1e-10)
        else:
            sol = fastkkt.reference.solve_qp_ex(**self.args)
            ref = {"z": sol.z, "status": sol.info}
        assert (ref["status"] == 0).all(), f"reference not solved on {self.name}"
        return ref

    @property
    def z_ref(self) -> np.ndarray:
        return self.reference["z"]

    def check_z(self, z: Any, rtol: float = QP_RTOL) -> None:
        z = np.asarray(z, dtype=np.float64).reshape(self.B, self.n)
        err = np.abs(z - self.z_ref).max(-1) / np.maximum(1.0, np.abs(self.z_ref).max(-1))
        bad = ~(err <= rtol)  # NaN counts as wrong
        assert not bad.any(), (
            f"{self.name}: {int(bad.sum())} of {self.B} problems off by more than {rtol:g} "
            f"(worst {np.nanmax(np.where(np.isnan(err), np.inf, err)):.2e})"
        )


# Each make(problem) returns a closure giving (z (B, n), iterations (B,) or None).


def qp_fastkkt(p: QPProblem) -> Callable[[], Any]:
    def run():
        sol = fastkkt.solve_qp_ex(**p.args)
        return sol.z, sol.iterations

    return run


def _bound_rows(lb: np.ndarray, ub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finite bounds as rows C z ≤ d: [I; −I] restricted to the finite entries."""
    eye = np.eye(len(lb))
    up, lo = np.isfinite(ub), np.isfinite(lb)
    return np.vstack([eye[up], -eye[lo]]), np.concatenate([ub[up], -lb[lo]])


def qp_piqp(p: QPProblem) -> Callable[[], Any]:
    """PIQP's dense solver in a loop, eps_abs 1e-12, eps_rel 0 (BENCH_QP.md), native bounds."""
    import piqp

    def run():
        z, iters = np.empty((p.B, p.n)), np.empty(p.B, dtype=np.int64)
        for i, (Q, q, A, c, G, h, lb, ub) in enumerate(zip(*p.rows())):
            solver = piqp.DenseSolver()
            solver.settings.eps_abs = 1e-12
            solver.settings.eps_rel = 0.0
            F = np.asfortranarray
            solver.setup(F(Q), q, F(A), c, F(G), h_u=h, x_l=lb, x_u=ub)
            status = solver.solve()
            z[i] = solver.result.x if status == piqp.PIQP_SOLVED else np.nan
            iters[i] = solver.result.info.iter
        return z, iters

    return run


def qp_clarabel(p: QPProblem) -> Callable[[], Any]:
    """Clarabel in a loop, tol 1e-11 (BENCH_QP.md), bounds as rows, sparse (CSC) matrices."""
    import clarabel
    import scipy.sparse as sp

    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = 1e-11

    def run():
        z, iters = np.empty((p.B, p.n)), np.empty(p.B, dtype=np.int64)
        for i, (Q, q, A, c, G, h, lb, ub) in enumerate(zip(*p.rows())):
            Cb, db = _bound_rows(lb, ub)
            M = sp.csc_matrix(np.vstack([A, G, Cb]))
            cones = [clarabel.ZeroConeT(len(c)), clarabel.NonnegativeConeT(len(h) + len(db))]
            solver = clarabel.DefaultSolver(
                sp.triu(sp.csc_matrix(Q)).tocsc(), q, M, np.concatenate([c, h, db]), cones,
                settings,
            )  # fmt: skip
            sol = solver.solve()
            z[i] = sol.x if sol.status == clarabel.SolverStatus.Solved else np.nan
            iters[i] = sol.iterations
        return z, iters

    return run


def qp_osqp(p: QPProblem) -> Callable[[], Any]:
    """OSQP in a loop, eps_abs = eps_rel = 1e-9, polishing, max_iter 1e5 (BENCH_QP.md); all
    constraints as one l ≤ Mz ≤ u (equalities l = u, bounds as identity rows)."""
    import osqp
    import scipy.sparse as sp

    def run():
        z, iters = np.empty((p.B, p.n)), np.empty(p.B, dtype=np.int64)
        for i, (Q, q, A, c, G, h, lb, ub) in enumerate(zip(*p.rows())):
            has_box = np.isfinite(lb).any() or np.isfinite(ub).any()
            rows = [A, G] + ([np.eye(p.n)] if has_box else [])
            lo = [c, np.full(len(h), -np.inf)] + ([lb] if has_box else [])
            up = [c, h] + ([ub] if has_box else [])
            solver = osqp.OSQP()
            solver.setup(
                sp.triu(sp.csc_matrix(Q)).tocsc(), q, sp.csc_matrix(np.vstack(rows)),
                np.concatenate(lo), np.concatenate(up), eps_abs=1e-9, eps_rel=1e-9,
                polishing=True, max_iter=100_000, verbose=False,
            )  # fmt: skip
            res = solver.solve(raise_error=False)
            z[i] = res.x if res.info.status_val == 1 else np.nan  # OSQP_SOLVED
            iters[i] = res.info.iter
        return z, iters

    return run


QP_FORWARD = [
    Method("fastkkt", qp_fastkkt, rtol=QP_RTOL),
    Method("piqp", qp_piqp, module="piqp", rtol=QP_RTOL),
    Method("clarabel", qp_clarabel, module="clarabel", rtol=QP_RTOL),
    Method("osqp", qp_osqp, module="osqp", rtol=QP_RTOL),
]
