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

from fastkkt import _api
from fastkkt._api import (
    _as_array,
    _batch_shape,
    _broadcast,
    _check_mat,
    _check_size,
    _check_vec,
    _compute_dtype,
    _native,
    _shape_str,
)
from fastkkt._dispatch import core
from fastkkt._errors import QPError

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


def _pair(a: Any, b: Any, na: str, nb: str) -> None:
    if (a is None) != (b is None):
        given, missing = (na, nb) if b is None else (nb, na)
        raise ValueError(f"{given} was given without {missing}: pass both or neither")


def _bound(x: Any, name: str, n: int) -> tuple[np.ndarray, bool]:
    """(array, weak): `x` as an array of shape () or (..., n); weak for Python scalars, which
    do not take part in dtype promotion (as in NumPy)."""
    weak = isinstance(x, numbers.Real) and not isinstance(x, np.generic)
    a = _as_array(x, name)
    if a.ndim > 0:
        _check_vec(a, name, "(..., n) or a scalar", n, "n")
    return a, weak


def _check_values(arrays: dict[str, np.ndarray]) -> None:
    """ValueError for NaN anywhere, ±Inf in Q, q, A, c, G, −Inf in h and ub, +Inf in lb."""
    for name, a in arrays.items():
        if a.dtype.kind != "f" or a.size == 0:
            continue
        if name in ("h", "ub"):
            bad = np.isnan(a).any() or np.isneginf(a).any()
            what = "NaN or -inf (+inf means no constraint)"
        elif name == "lb":
            bad = np.isnan(a).any() or np.isposinf(a).any()
            what = "NaN or +inf (-inf means no bound)"
        else:
            bad = not np.isfinite(a).all()
            what = "NaN or Inf"
        if bad:
            raise ValueError(f"{name} contains {what}; pass check_finite=False to skip this check")


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
    _pair(A, c, "A", "c")
    _pair(G, h, "G", "h")
    Qa = _as_array(Q, "Q")
    _check_mat(Qa, "Q", "(..., n, n)")
    n = Qa.shape[-1]
    if Qa.shape[-2] != n:
        raise ValueError(f"Q must be square with shape (..., n, n), got shape {_shape_str(Qa)}")
    qa = _as_array(q, "q")
    _check_vec(qa, "q", "(..., n)", n, "n")
    named: dict[str, tuple[np.ndarray, int]] = {"Q": (Qa, 2), "q": (qa, 1)}
    strong = [Qa, qa]
    if A is not None and c is not None:
        Aa = _as_array(A, "A")
        _check_mat(Aa, "A", "(..., m, n)")
        if Aa.shape[-1] != n:
            raise ValueError(
                f"A must have shape (..., m, n) with n = {n} (from Q {_shape_str(Qa)}), "
                f"got shape {_shape_str(Aa)}"
            )
        ca = _as_array(c, "c")  # type: ignore[arg-type]  # not None: checked with A above
        _check_vec(ca, "c", "(..., m)", Aa.shape[-2], "m")
        named.update(A=(Aa, 2), c=(ca, 1))
        strong += [Aa, ca]
    if G is not None and h is not None:
        Ga = _as_array(G, "G")
        _check_mat(Ga, "G", "(..., p, n)")
        if Ga.shape[-1] != n:
            raise ValueError(
                f"G must have shape (..., p, n) with n = {n} (from Q {_shape_str(Qa)}), "
                f"got shape {_shape_str(Ga)}"
            )
        ha = _as_array(h, "h")  # type: ignore[arg-type]  # not None: checked with G above
        _check_vec(ha, "h", "(..., p)", Ga.shape[-2], "p")
        named.update(G=(Ga, 2), h=(ha, 1))
        strong += [Ga, ha]
    bounds: dict[str, np.ndarray] = {}
    for name, x in (("lb", lb), ("ub", ub)):
        if x is None:
            continue
        a, weak = _bound(x, name, n)
        bounds[name] = a
        if a.ndim > 0:
            named[name] = (a, 1)
        if not weak:
            strong.append(a)
    dtype = _compute_dtype(*strong)
    batch = _batch_shape(named)
    m = named["A"][0].shape[-2] if "A" in named else 0
    p = named["G"][0].shape[-2] if "G" in named else 0
    _check_size(batch, n, m + p)
    if tol is None:
        tol = DEFAULT_TOL[dtype]
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < float(tol) < 1:
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral):
        raise TypeError(f"max_iter must be an int, got {type(max_iter).__name__}")
    if not 0 <= int(max_iter) < 2**31:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")
    if check_finite:
        _check_values({k: v for k, (v, _) in named.items()} | bounds)

    def arg(name: str, k: int, default_shape: tuple[int, ...], fill: float) -> np.ndarray:
        # broadcast only where needed (np.broadcast_to was ~40% of a small call's overhead)
        if name in named:
            a = _native(named[name][0], dtype)
            return a if a.shape[: a.ndim - k] == batch else _broadcast(a, batch, k)
        if name in bounds:  # a scalar bound: one value, broadcast over everything
            value = _native(bounds[name], dtype)
            if not batch and n <= 64:
                return np.full((n,), value, dtype)
            return np.broadcast_to(value, batch + (n,))
        if not batch:
            return np.full(default_shape, fill, dtype)
        return np.broadcast_to(np.full(default_shape, fill, dtype), batch + default_shape)

    ops = (
        arg("Q", 2, (n, n), 0.0),
        arg("q", 1, (n,), 0.0),
        arg("A", 2, (0, n), 0.0),
        arg("c", 1, (0,), 0.0),
        arg("G", 2, (0, n), 0.0),
        arg("h", 1, (0,), 0.0),
        arg("lb", 1, (n,), -np.inf),
        arg("ub", 1, (n,), np.inf),
    )
    z = np.empty(batch + (n,), dtype)
    lam = np.empty(batch + (m,), dtype)
    mu = np.empty(batch + (p,), dtype)
    nu = np.empty(batch + (n,), dtype)
    info = np.empty(batch, np.int32)
    iterations = np.empty(batch, np.int32)
    active = np.empty(batch + (p + n + 1,), np.int8) if keep else None
    factor = np.empty(batch + (core.qp_factor_size(n, m, p),), dtype) if keep else None
    core.solve_qp(
        *ops, z, lam, mu, nu, info, iterations, active, factor, float(tol), int(max_iter),
        _api._call_threads(),
    )  # fmt: skip
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
