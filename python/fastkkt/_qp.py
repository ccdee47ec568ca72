"""The NumPy API of the inequality-constrained QP solver: validation, dtype promotion and
broadcasting around the compiled interior-point core (cpp/include/fastkkt/qp.hpp).

Each batch element is the convex quadratic program

    minimize_z  ½ zᵀ Q z + qᵀ z   subject to  A z = c,  G z ≤ h,  lb ≤ z ≤ ub,

with Lagrangian L = ½zᵀQz + qᵀz + λᵀ(Az − c) + μᵀ(Gz − h) + ν_ubᵀ(z − ub) + ν_lbᵀ(lb − z) and
the signed bound multiplier ν = ν_ub − ν_lb returned. Shapes: Q (..., n, n), q (..., n),
A (..., m, n), c (..., m), G (..., p, n), h (..., p), lb and ub (..., n) or scalars; the batch
dimensions broadcast and broadcast operands reach the core as stride-0 views, never expanded.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastkkt import _validate as v
from fastkkt._dispatch import core
from fastkkt._errors import QPError
from fastkkt._threads import call_threads

__all__ = ["QPSolution", "solve_qp", "solve_qp_ex"]

#: Default `tol` per compute dtype. float32 iterates in float32 (ε ≈ 1.2e-7): the duality gap
#: alone is a sum of n-term dot products of size ~1, rounded to ~nε, and near the solution the
#: Newton directions lose more; 1e-4 is met reliably at n ≤ 100 (random problems, measured),
#: 1e-5 was not (13 of 200 random problems with n ≤ 40, p ≤ 60 ran to max_iter).
DEFAULT_TOL = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-4}
DEFAULT_MAX_ITER = 100


class QPSolution(NamedTuple):
    """Result of `solve_qp_ex`, over the broadcast batch shape (...).

    z : (..., n) minimizer; lam : (..., m), mu : (..., p) and nu : (..., n) the multipliers of
    Az = c, Gz ≤ h and the bounds (ν = ν_ub − ν_lb: positive at an active upper bound,
    negative at an active lower one); info : int32 (...) status (0 solved, 1 primal
    infeasible, 2 dual infeasible, 3 not converged); iterations : int32 (...) interior-point
    iterations per element. Elements with info ≠ 0 hold NaN in z, lam, mu and nu.
    """

    z: NDArray[np.floating[Any]]
    lam: NDArray[np.floating[Any]]
    mu: NDArray[np.floating[Any]]
    nu: NDArray[np.floating[Any]]
    info: NDArray[np.int32]
    iterations: NDArray[np.int32]


_FILL = {"A": 0.0, "c": 0.0, "G": 0.0, "h": 0.0, "lb": -np.inf, "ub": np.inf}
_CONSTANTS: dict[tuple, np.ndarray] = {}


def _constant(dtype: np.dtype, batch: tuple[int, ...], shape: tuple[int, ...], fill: float):
    """A read-only array of `fill` of shape batch + shape (stride 0 along the batch), kept for
    the next call: what the core gets for an absent operand (no rows of A or G, no bound)."""
    key = (dtype.char, batch, shape, fill)
    a = _CONSTANTS.get(key)
    if a is None:
        if len(_CONSTANTS) >= 64:
            _CONSTANTS.clear()
        base = np.full(shape, fill, dtype)
        base.flags.writeable = False
        a = _CONSTANTS[key] = np.broadcast_to(base, batch + shape) if batch else base
    return a


def _is_weak(x: Any) -> bool:
    """Python scalars take no part in dtype promotion (as in NumPy)."""
    return (
        type(x) is not np.ndarray and isinstance(x, numbers.Real) and not isinstance(x, np.generic)
    )


_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


def _ready(Q: Any, q: Any, others: dict[str, Any]) -> tuple[tuple[int, ...], int, int, int] | None:
    """(batch, n, m, p) when every operand given is an aligned ndarray of one float dtype over
    one batch shape with consistent sizes (A with c, G with h) — the common case, which needs
    no conversion or broadcasting — else None (the general path then validates and reports)."""
    if type(Q) is not np.ndarray or type(q) is not np.ndarray:
        return None
    dt, shape = Q.dtype, Q.shape
    if dt not in _FLOATS or not 2 <= len(shape) <= v.MAX_BATCH_DIMS + 2:
        return None
    batch, n = shape[:-2], shape[-1]
    if shape[-2] != n or q.dtype != dt or q.shape != (*batch, n):
        return None
    if not (Q.flags.aligned and q.flags.aligned):
        return None
    sizes = [0, 0]
    for i, (mat, vec) in enumerate((("A", "c"), ("G", "h"))):
        M, b = others[mat], others[vec]
        if M is None and b is None:
            continue
        if type(M) is not np.ndarray or type(b) is not np.ndarray or M.dtype != dt:
            return None
        k = M.shape[-2] if M.ndim >= 2 else -1
        if M.shape != (*batch, k, n) or b.shape != (*batch, k) or b.dtype != dt:
            return None
        if not (M.flags.aligned and b.flags.aligned):
            return None
        sizes[i] = k
    for name in ("lb", "ub"):
        b = others[name]
        if b is not None and (
            type(b) is not np.ndarray
            or b.dtype != dt
            or b.shape != (*batch, n)
            or not b.flags.aligned
        ):
            return None
    return batch, n, sizes[0], sizes[1]


def prepare(
    Q: Any, q: Any, others: dict[str, Any]
) -> tuple[list[np.ndarray], np.dtype, tuple[int, ...], int, int, int]:
    """The eight operands of the core (Q, q, A, c, G, h, lb, ub) in one float dtype over one
    batch shape, after the checks of fastkkt._validate (the finiteness rules apart: the core
    checks them, see `qp_value_error`); absent ones as constants. Returns (operands, dtype,
    batch, n, m, p). `others` maps A, c, G, h, lb, ub to their values (None: absent)."""
    ready = _ready(Q, q, others)
    if ready is not None:  # nothing to convert or broadcast: skip the general path's overhead
        batch, n, m, p = ready
        dtype = Q.dtype
        v.check_size(batch, n, m + p)
        core_shapes = {"A": (0, n), "c": (0,), "G": (0, n), "h": (0,), "lb": (n,), "ub": (n,)}
        ops = [Q, q]
        for name, shape in core_shapes.items():
            x = others[name]
            ops.append(_constant(dtype, batch, shape, _FILL[name]) if x is None else x)
        return ops, dtype, batch, n, m, p
    v.check_pairs(others["A"], others["c"], others["G"], others["h"])
    Qa, qa = v.as_array(Q, "Q"), v.as_array(q, "q")
    arrays: dict[str, np.ndarray] = {}
    dtypes = [Qa.dtype, qa.dtype]
    for name, x in others.items():
        if x is not None:
            a = arrays[name] = v.as_array(x, name)
            if not _is_weak(x):
                dtypes.append(a.dtype)
    shapes = {name: (arrays[name].shape if name in arrays else None) for name in _FILL}
    batch, n, m, p = v.qp_shapes(Qa.shape, qa.shape, shapes)
    dtype = v.compute_dtype(dtypes)
    v.check_size(batch, n, m + p)
    ops = [
        v.broadcast(v.native(Qa, dtype), batch, 2),
        v.broadcast(v.native(qa, dtype), batch, 1),
    ]
    core_shapes = {"A": (0, n), "c": (0,), "G": (0, n), "h": (0,), "lb": (n,), "ub": (n,)}
    for (name, k), shape in zip(v.QP_OPERANDS, core_shapes.values()):
        if name not in arrays:
            ops.append(_constant(dtype, batch, shape, _FILL[name]))
            continue
        a = arrays[name]
        if a.ndim == 0:  # a scalar bound: one value, broadcast over everything
            value = v.native(a, dtype)
            full = not batch and n <= 64
            ops.append(
                np.full((n,), value, dtype) if full else np.broadcast_to(value, batch + (n,))
            )
        else:
            ops.append(v.broadcast(v.native(a, dtype), batch, k))
    return ops, dtype, batch, n, m, p


def solve_qp_ex(
    Q: ArrayLike,
    q: ArrayLike,
    *,
    A: ArrayLike | None = None,
    c: ArrayLike | None = None,
    G: ArrayLike | None = None,
    h: ArrayLike | None = None,
    lb: ArrayLike | None = None,
    ub: ArrayLike | None = None,
    tol: float | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    check_finite: bool = True,
) -> QPSolution:
    """Solve a batch of convex QPs, reporting failures per element.

    ``minimize ½zᵀQz + qᵀz subject to Az = c, Gz ≤ h, lb ≤ z ≤ ub`` by a primal-dual
    interior-point method (Mehrotra predictor–corrector) with an active-set polish.

    Parameters
    ----------
    Q : array_like, shape (..., n, n)
        Positive semidefinite quadratic term (only (Q + Qᵀ)/2 is used; Q = 0 is an LP).
    q : array_like, shape (..., n)
    A, c : array_like, shapes (..., m, n) and (..., m), optional (both or neither)
        Equality constraints; A need not have full row rank if Az = c is consistent.
    G, h : array_like, shapes (..., p, n) and (..., p), optional (both or neither)
        Inequalities Gz ≤ h; rows with h = +inf are ignored.
    lb, ub : array_like, shape (..., n) or scalar, optional
        Bounds; -inf / +inf entries mean no bound. lb > ub makes the element infeasible.
    tol : float, optional
        Relative tolerance of the primal and dual residuals and the duality gap (see API.md);
        default 1e-8 for float64, 1e-4 for float32.
    max_iter : int
        Interior-point iteration limit per element (default 100).
    check_finite : bool
        Raise ValueError on NaN, on ±inf in Q, q, A, c, G, on -inf in h or ub and on +inf in
        lb (default).

    Returns
    -------
    QPSolution
        Named tuple (z, lam, mu, nu, info, iterations) over the broadcast batch shape.

    Raises ValueError for missing partners (A without c, …), shapes that do not match or
    broadcast, and invalid non-finite input; TypeError for complex or non-numeric input.
    """
    return _solve_qp_ex(Q, q, A, c, G, h, lb, ub, tol, max_iter, check_finite, False)[0]


def _solve_qp_ex(
    Q: ArrayLike,
    q: ArrayLike,
    A: ArrayLike | None,
    c: ArrayLike | None,
    G: ArrayLike | None,
    h: ArrayLike | None,
    lb: ArrayLike | None,
    ub: ArrayLike | None,
    tol: float | None,
    max_iter: int,
    check_finite: bool,
    keep: bool,
) -> tuple[QPSolution, np.ndarray | None, np.ndarray | None]:
    """(`solve_qp_ex`'s result, active, factor): with `keep`, also what the backward pass of
    the torch layer needs (cpp/include/fastkkt/qp_adjoint.hpp): the active set of its rule
    (int8, (..., p + n + 1)) and the kept factorizations ((..., qp_factor_size(n, m, p))),
    else None, None."""
    others = {"A": A, "c": c, "G": G, "h": h, "lb": lb, "ub": ub}
    ops, dtype, batch, n, m, p = prepare(Q, q, others)
    if tol is None:
        tol = DEFAULT_TOL[dtype]
    v.check_qp_options(tol, max_iter)
    z = np.empty(batch + (n,), dtype)
    lam = np.empty(batch + (m,), dtype)
    mu = np.empty(batch + (p,), dtype)
    nu = np.empty(batch + (n,), dtype)
    info = np.empty(batch, np.int32)
    iterations = np.empty(batch, np.int32)
    active = np.empty(batch + (p + n + 1,), np.int8) if keep else None
    factor = np.empty(batch + (core.qp_factor_size(n, m, p),), dtype) if keep else None
    bad = core.solve_qp(
        *ops, z, lam, mu, nu, info, iterations, active, factor, float(tol), int(max_iter),
        call_threads(), bool(check_finite),
    )  # fmt: skip
    if bad >= 0:  # the core's finiteness check refused operand `bad` (and solved nothing)
        raise v.qp_value_error(v.QP_NAMES[bad])
    return QPSolution(z, lam, mu, nu, info, iterations), active, factor


def solve_qp(
    Q: ArrayLike,
    q: ArrayLike,
    *,
    A: ArrayLike | None = None,
    c: ArrayLike | None = None,
    G: ArrayLike | None = None,
    h: ArrayLike | None = None,
    lb: ArrayLike | None = None,
    ub: ArrayLike | None = None,
    return_multipliers: bool = False,
    tol: float | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    check_finite: bool = True,
) -> Any:
    """Solve ``minimize ½zᵀQz + qᵀz s.t. Az = c, Gz ≤ h, lb ≤ z ≤ ub`` for a batch.

    Same arguments as `solve_qp_ex`. Returns z of shape (..., n), or (z, lam, mu, nu) with
    `return_multipliers`.

    Raises
    ------
    QPError
        Some element is infeasible, unbounded or did not converge; ``.indices`` names them and
        ``.info`` is the whole batch's status array.
    ValueError, TypeError
        As `solve_qp_ex`.
    """
    sol = solve_qp_ex(
        Q, q, A=A, c=c, G=G, h=h, lb=lb, ub=ub, tol=tol, max_iter=max_iter,
        check_finite=check_finite,
    )  # fmt: skip
    if sol.info.any():
        raise QPError(sol.info)
    return (sol.z, sol.lam, sol.mu, sol.nu) if return_multipliers else sol.z
