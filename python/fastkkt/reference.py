"""Pure-NumPy reference implementation of the fastkkt contract.

This module is the executable specification the compiled solver is tested against. It is
written to be read, not to be fast. For each batch element it solves

    minimize_z  ½ zᵀ Q z + qᵀ z   subject to   A z = c

through the KKT system (only the symmetric part sym(Q) = (Q + Qᵀ)/2 enters)::

    K [z; λ] = [−q; c],     K = [[sym(Q), Aᵀ], [A, 0]]  of size N = n + m.

Status of an element, decided from the eigenvalues of K (computed in float64):

* 1, singular: ``min|eig| <= tol · max|eig|`` with ``tol = N · eps(dtype)``, i.e. the
  reciprocal 2-norm condition number of K is below what the working precision can resolve
  (the default threshold of ``numpy.linalg.matrix_rank``): A without full row rank, or Q
  singular on the null space of A. (A factor 100 on top would call well-posed float32
  problems of benchmark size singular: N = 640 gives tol = 7.6e-3, i.e. cond(K) > 130.);
* 2, not a strict minimum: K is nonsingular but its inertia is not (n positive,
  m negative), i.e. Q is not positive definite on the null space of A;
* 0 otherwise: [z; λ] = K⁻¹ [−q; c], computed in float64 by ``numpy.linalg.solve`` and
  rounded to the result dtype (so for float32 inputs it is the float32 rounding of the
  float64 answer, the best answer a float32 solver can aim at).

Failed elements get NaN. Dtypes: float32 and float64 are kept, mixed inputs promote as
``numpy.result_type``, integers and booleans become float64, float16 becomes float32;
complex, object and other dtypes raise ``TypeError``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _validate as vd
from ._errors import KKTError, QPError
from ._qp import QPSolution
from ._status import DUAL_INFEASIBLE as QP_DUAL_INFEASIBLE
from ._status import MAX_ITER as QP_MAX_ITER_REACHED
from ._status import NOT_MINIMUM, QP_SOLVED, SINGULAR, SOLVED
from ._status import PRIMAL_INFEASIBLE as QP_PRIMAL_INFEASIBLE
from .testing import qp_kkt_residuals

__all__ = ["QPError", "QPSolution", "solve", "solve_ex", "solve_qp", "solve_qp_ex"]

_NAMES = ("Q", "q", "A", "c")


def _as_real_array(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind in "biu":
        return a.astype(np.float64)
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a real floating-point array, got dtype {a.dtype}")
    return a


def _validate(Q: Any, q: Any, A: Any, c: Any, check_finite: bool):
    """Convert and check the inputs; returns (Q, q, A, c, batch_shape, n, m, dtype)."""
    Q, q, A, c = (np.asarray(x) for x in (Q, q, A, c))
    # The result dtype is the contract's (fastkkt._validate.compute_dtype: NumPy's promotion of
    # the given dtypes, rounded up to float32 or float64; uint8 with float32 is float32).
    dtype = vd.compute_dtype([x.dtype for x in (Q, q, A, c) if x.dtype.kind in "biuf"])
    Q, q, A, c = (_as_real_array(x, name) for x, name in zip((Q, q, A, c), _NAMES))

    if Q.ndim < 2 or Q.shape[-1] != Q.shape[-2]:
        raise ValueError(f"Q must have shape (..., n, n), got {Q.shape}")
    n = Q.shape[-1]
    if q.ndim < 1 or q.shape[-1] != n:
        raise ValueError(f"q must have shape (..., n) with n = {n} from Q {Q.shape}, got {q.shape}")
    if A.ndim < 2 or A.shape[-1] != n:
        raise ValueError(
            f"A must have shape (..., m, n) with n = {n} from Q {Q.shape}, got {A.shape}"
        )
    m = A.shape[-2]
    if c.ndim < 1 or c.shape[-1] != m:
        raise ValueError(f"c must have shape (..., m) with m = {m} from A {A.shape}, got {c.shape}")
    try:
        batch = np.broadcast_shapes(Q.shape[:-2], q.shape[:-1], A.shape[:-2], c.shape[:-1])
    except ValueError:
        raise ValueError(
            f"batch dimensions do not broadcast: Q {Q.shape}, q {q.shape}, A {A.shape}, c {c.shape}"
        ) from None

    if check_finite:
        for x, name in zip((Q, q, A, c), _NAMES):
            if not np.isfinite(x).all():
                raise ValueError(f"{name} contains NaN or Inf (pass check_finite=False to skip)")
    return Q, q, A, c, batch, n, m, dtype


def solve_ex(
    Q: Any, q: Any, A: Any, c: Any, *, check_finite: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve a batch of KKT systems and report a status per element instead of raising.

    Shapes: Q (..., n, n), q (..., n), A (..., m, n), c (..., m); the batch dimensions
    broadcast. Returns z (..., n), lam (..., m) and info (...) as int32: 0 solved,
    1 singular KKT matrix, 2 not a strict minimum. Failed elements are NaN.
    """
    Q, q, A, c, batch, n, m, dtype = _validate(Q, q, A, c, check_finite)
    N = n + m
    f64 = np.float64
    K = np.zeros((*batch, N, N))
    K[..., :n, :n] = (Q.astype(f64) + np.swapaxes(Q, -1, -2).astype(f64)) / 2
    K[..., n:, :n] = A
    K[..., :n, n:] = np.swapaxes(A, -1, -2)
    rhs = np.empty((*batch, N))
    rhs[..., :n] = -q.astype(f64)
    rhs[..., n:] = c

    B = int(np.prod(batch))
    K, rhs = K.reshape(B, N, N), rhs.reshape(B, N)
    info = np.zeros(B, dtype=np.int32)
    x = np.full(rhs.shape, np.nan)
    if N > 0 and B > 0:
        eig = np.linalg.eigvalsh(K)
        tol = N * np.finfo(dtype).eps
        singular = np.abs(eig).min(axis=-1) <= tol * np.abs(eig).max(axis=-1)
        right_inertia = ((eig > 0).sum(axis=-1) == n) & ((eig < 0).sum(axis=-1) == m)
        info[~right_inertia] = NOT_MINIMUM
        info[singular] = SINGULAR
        good = info == SOLVED
        x[good] = np.linalg.solve(K[good], rhs[good][..., None])[..., 0]

    x = x.astype(dtype).reshape(*batch, N)
    return x[..., :n].copy(), x[..., n:].copy(), info.reshape(batch)


def solve(
    Q: Any,
    q: Any,
    A: Any,
    c: Any,
    *,
    return_multipliers: bool = False,
    check_finite: bool = True,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Solve a batch of equality-constrained QPs; returns z, or (z, lam) when asked.

    Raises :class:`fastkkt.KKTError` (naming the failing batch elements) when any element's
    KKT matrix is singular or does not have inertia (n, m); see :func:`solve_ex`.
    """
    z, lam, info = solve_ex(Q, q, A, c, check_finite=check_finite)
    if info.any():
        raise KKTError(info)
    return (z, lam) if return_multipliers else z


# ============================================================================================
# Inequality-constrained QPs: solve_qp / solve_qp_ex
#
# For each batch element
#
#     minimize_z  ½ zᵀ Q z + qᵀ z   subject to  A z = c,  G z ≤ h,  lb ≤ z ≤ ub,
#
# with the multipliers of API.md: λ (equalities), μ ≥ 0 (G rows), ν = ν_ub − ν_lb (bounds).
# One element is solved in float64 in five readable steps (``_solve_qp_one``):
#
# 1. Standard form. Infinite h, lb, ub entries are dropped; the other rows of G, the finite
#    upper bounds (z_i ≤ ub_i) and the finite lower bounds (−z_i ≤ −lb_i) are stacked into
#    C z ≤ d. A z = c is replaced by an equivalent full-row-rank system (SVD, U_rᵀA z = U_rᵀc,
#    λ = U_r y), after checking that it is consistent (else: primal infeasible, status 1).
#    lb > ub anywhere is primal infeasible (1); sym(Q) not positive semidefinite on null(A)
#    (a negative eigenvalue beyond rounding) is dual infeasible (2).
# 2. Interior point (``_interior_point``): Mehrotra's predictor-corrector method on
#    Qz + q + Aᵀy + Cᵀw = 0, Az = b, Cz + s = d, s∘w = σ·(sᵀw/k), s, w > 0, from the
#    infeasible start z = 0, s = max(d, 1), w = 1 (Mehrotra 1992; Nocedal & Wright,
#    "Numerical Optimization", 2nd ed., Alg. 16.4 / §19.3). Each Newton step eliminates
#    ds and dw and solves the KKT system [[Q + Cᵀ(W/S)C, Aᵀ], [A, 0]] by least squares, which
#    also covers a singular Q (LPs) without any regularization parameter.
# 3. Convergence: the iterate is mapped back to (z, λ, μ, ν) and judged by exactly the three
#    relative measures of the contract (``fastkkt.testing.qp_kkt_residuals``) against tol.
# 4. Active-set polish (``_polish``): from the first iterate whose measures are below √tol
#    on, and at the latest once they are below tol, the rows with w_i > s_i are taken as
#    active and the equality-constrained QP on them is solved by least squares, as a
#    correction of the interior point (so it keeps the interior point's choice in any
#    degenerate direction). The guess is corrected a few times (violated rows in,
#    negative multipliers out); it is kept when it is feasible and its multipliers have the
#    right signs to 1e-3·tol, which makes the answer the exact optimum instead of an
#    interior point a distance ~√gap away from it.
# 5. Diagnosis of an element that does not converge within max_iter (or whose iterates
#    blow up): a phase-I linear program min t s.t. Az = b, Cz − t ≤ d, t ≥ −1 (through the
#    same interior point) decides primal infeasibility (t* > tol·scale: status 1); else the
#    recession LP min qᵀv s.t. Qv = 0, Av = 0, Cv ≤ 0, −1 ≤ v ≤ 1 decides unboundedness
#    (optimum < −tol·scale: status 2, a direction along which the objective decreases
#    forever); else status 3, not converged.
#
# Elements with status ≠ 0 are NaN in z, λ, μ, ν.

#: Default ``tol`` per dtype (the contract's relative KKT measures, see above).
QP_TOL = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-5}
#: Default ``max_iter``.
QP_MAX_ITER = 100


def _is_python_scalar(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, (bool, np.generic))


def _qp_array(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind in "biu":
        return a.astype(np.float64)
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a real floating-point array, got dtype {a.dtype}")
    return a


def _validate_qp(
    Q: Any, q: Any, A: Any, c: Any, G: Any, h: Any, lb: Any, ub: Any, check_finite: bool
) -> tuple[dict[str, np.ndarray | None], tuple[int, ...], int, int, int, np.dtype]:
    """Convert and check the inputs of solve_qp; returns the arrays (None where absent),
    the broadcast batch shape, n, m, p and the result dtype."""
    for a, b, na, nb in ((A, c, "A", "c"), (G, h, "G", "h")):
        if (a is None) != (b is None):
            given, missing = (na, nb) if b is None else (nb, na)
            raise ValueError(f"{given} given without {missing}: pass both or neither")
    raw = {"Q": Q, "q": q, "A": A, "c": c, "G": G, "h": h, "lb": lb, "ub": ub}
    arrays = {k: None if v is None else _qp_array(v, k) for k, v in raw.items()}
    # The contract's result dtype (fastkkt._validate.compute_dtype) of the arrays given; Python
    # scalars (lb=0) take no part, as in NumPy.
    dtype = vd.compute_dtype(
        [np.asarray(x).dtype for x in raw.values() if x is not None and not _is_python_scalar(x)]
    )

    Qa, qa = arrays["Q"], arrays["q"]
    assert Qa is not None
    assert qa is not None
    if Qa.ndim < 2 or Qa.shape[-1] != Qa.shape[-2]:
        raise ValueError(f"Q must have shape (..., n, n), got {Qa.shape}")
    n = Qa.shape[-1]
    if qa.ndim < 1 or qa.shape[-1] != n:
        raise ValueError(
            f"q must have shape (..., n) with n = {n} from Q {Qa.shape}, got {qa.shape}"
        )
    batch_parts = [Qa.shape[:-2], qa.shape[:-1]]
    rows = {}
    for mat, vec, k in (("A", "c", "m"), ("G", "h", "p")):
        M, v = arrays[mat], arrays[vec]
        if M is None or v is None:
            rows[k] = 0
            continue
        if M.ndim < 2 or M.shape[-1] != n:
            raise ValueError(
                f"{mat} must have shape (..., {k}, n) with n = {n} from Q {Qa.shape}, got {M.shape}"
            )
        rows[k] = M.shape[-2]
        if v.ndim < 1 or v.shape[-1] != rows[k]:
            raise ValueError(
                f"{vec} must have shape (..., {k}) with {k} = {rows[k]} from {mat} {M.shape}, "
                f"got {v.shape}"
            )
        batch_parts += [M.shape[:-2], v.shape[:-1]]
    for name in ("lb", "ub"):
        v = arrays[name]
        if v is not None and v.ndim > 0:
            if v.shape[-1] != n:
                raise ValueError(
                    f"{name} must be a scalar or have shape (..., n) with n = {n} from Q "
                    f"{Qa.shape}, got {v.shape}"
                )
            batch_parts.append(v.shape[:-1])
    try:
        batch = np.broadcast_shapes(*batch_parts)
    except ValueError:
        shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items() if v is not None)
        raise ValueError(f"batch dimensions do not broadcast: {shapes}") from None

    if check_finite:
        for name in ("Q", "q", "A", "c", "G"):
            v = arrays[name]
            if v is not None and not np.isfinite(v).all():
                raise ValueError(f"{name} contains NaN or Inf (pass check_finite=False to skip)")
        for name, allowed in (("h", np.inf), ("ub", np.inf), ("lb", -np.inf)):
            v = arrays[name]
            if v is not None and not (np.isfinite(v) | (v == allowed)).all():
                raise ValueError(
                    f"{name} contains NaN or {-allowed:+} (only {allowed:+} is allowed there, "
                    "meaning no constraint; pass check_finite=False to skip)"
                )
    return arrays, batch, n, rows["m"], rows["p"], dtype


def _independent_rows(
    A: np.ndarray, c: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """An equivalent full-row-rank system U_rᵀA z = U_rᵀc of A z = c (thin SVD A = U S Vᵀ,
    keeping singular values above max(m, n)·eps·σ_max), the basis U_r (λ = U_r y), and
    whether A z = c is consistent: ‖c − U_r U_rᵀc‖∞ ≤ tol·(1 + ‖c‖∞)."""
    m, n = A.shape
    if m == 0:
        return A, c, np.zeros((0, 0)), True
    U, sv, _ = np.linalg.svd(A, full_matrices=False)
    rank = int((sv > max(m, n) * np.finfo(float).eps * sv.max(initial=0.0)).sum())
    Ur = U[:, :rank]
    consistent = bool(np.abs(c - Ur @ (Ur.T @ c)).max() <= tol * (1 + np.abs(c).max()))
    return Ur.T @ A, Ur.T @ c, Ur, consistent


def _null_space(A: np.ndarray, n: int) -> np.ndarray:
    """Orthonormal basis (n, n − rank) of null(A), for a full-row-rank A (r, n)."""
    if A.shape[0] == 0:
        return np.eye(n)
    return np.linalg.svd(A)[2][A.shape[0] :].T


Iterate = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _newton(
    K: np.ndarray,
    C: np.ndarray,
    r_dual: np.ndarray,
    r_eq: np.ndarray,
    r_ineq: np.ndarray,
    s: np.ndarray,
    w: np.ndarray,
    r_comp: np.ndarray,
) -> Iterate:
    """The Newton step (dz, dy, dw, ds) of the interior point for the residuals
    Qz + q + Aᵀy + Cᵀw = r_dual, Az − b = r_eq, Cz + s − d = r_ineq and s∘w − target =
    r_comp: with ds = −r_ineq − C dz and dw = (w∘(C dz) + w∘r_ineq − r_comp)/s eliminated,
    [[Q + Cᵀ(W/S)C, Aᵀ], [A, 0]] [dz; dy] = [−r_dual − Cᵀ((w∘r_ineq − r_comp)/s); −r_eq]
    (K holds that matrix), solved by least squares after a symmetric diagonal scaling
    D K D (D = 1/√max(diag, 1) on the z rows): near the optimum W/S spans ~1e±12, and
    without the scaling lstsq's rank cut-off (relative to the largest singular value) would
    drop genuine directions."""
    n = K.shape[0] - len(r_eq)
    rhs = np.concatenate([-r_dual - C.T @ ((w * r_ineq - r_comp) / s), -r_eq])
    D = np.ones(len(rhs))
    D[:n] = 1 / np.sqrt(np.maximum(np.diag(K)[:n], 1.0))
    step = D * np.linalg.lstsq(D[:, None] * K * D, D * rhs, rcond=None)[0]
    dz, dy = step[:n], step[n:]
    dw = (w * (C @ dz) + w * r_ineq - r_comp) / s
    ds = -r_ineq - C @ dz
    return dz, dy, dw, ds


def _interior_point(
    Q: np.ndarray, q: np.ndarray, A: np.ndarray, b: np.ndarray, C: np.ndarray, d: np.ndarray
) -> Iterator[Iterate]:
    """Mehrotra's predictor-corrector interior-point method for
    min ½zᵀQz + qᵀz s.t. Az = b (full row rank), Cz ≤ d: yields the iterates (z, y, w, s)
    (multipliers y of Az = b, w ≥ 0 of Cz ≤ d, slacks s = d − Cz at convergence), starting
    with the initial point; the caller decides when to stop. Stops by itself when the
    iterates blow up (primal or dual infeasibility) or stop moving."""
    n, k = len(q), len(d)
    z, y = np.zeros(n), np.zeros(len(b))
    s, w = np.maximum(d, 1.0), np.ones(k)
    K = np.zeros((n + len(b), n + len(b)))
    K[n:, :n], K[:n, n:] = A, A.T
    blowup = 1e12 * (
        1 + max(np.abs(q).max(initial=0), np.abs(b).max(initial=0), np.abs(d).max(initial=0))
    )
    while True:
        yield z, y, w, s
        r_dual = Q @ z + q + A.T @ y + C.T @ w
        r_eq = A @ z - b
        r_ineq = C @ z + s - d
        gap = s @ w / k if k else 0.0
        K[:n, :n] = Q + C.T @ ((w / s)[:, None] * C)

        def max_step(x: np.ndarray, dx: np.ndarray) -> float:
            """The largest α ≤ 1 with x + α·dx ≥ 0."""
            shrinking = dx < 0
            return float(min(1.0, (-x[shrinking] / dx[shrinking]).min(initial=np.inf)))

        # predictor (affine scaling), then centering σ = (gap_affine / gap)³ and corrector
        dz, dy, dw, ds = _newton(K, C, r_dual, r_eq, r_ineq, s, w, s * w)
        alpha = min(max_step(s, ds), max_step(w, dw))
        sigma = ((s + alpha * ds) @ (w + alpha * dw) / k / gap) ** 3 if gap > 0 else 0.0
        dz, dy, dw, ds = _newton(K, C, r_dual, r_eq, r_ineq, s, w, s * w + ds * dw - sigma * gap)
        alpha = 0.99 * min(max_step(s, ds), max_step(w, dw))
        z, y, w, s = z + alpha * dz, y + alpha * dy, w + alpha * dw, s + alpha * ds
        if (
            not np.isfinite(z).all()
            or max(np.abs(z).max(initial=0), np.abs(w).max(initial=0), np.abs(y).max(initial=0))
            > blowup
        ):
            return
        if alpha == 0.0:
            return


def _polish(
    Q: np.ndarray,
    q: np.ndarray,
    A: np.ndarray,
    b: np.ndarray,
    C: np.ndarray,
    d: np.ndarray,
    point: Iterate,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The exact optimum on the active set guessed from an interior point (rows with w > s),
    corrected a few times; None when no guess gives a feasible point with w ≥ 0 (to
    1e-3·tol, relative)."""
    z, y, w, s = point
    n, r = len(q), len(b)
    active = w > s
    for _ in range(5):
        Ca = C[active]
        a = len(Ca)
        K = np.zeros((n + r + a, n + r + a))
        K[:n, :n] = Q
        K[n : n + r, :n], K[:n, n : n + r] = A, A.T
        K[n + r :, :n], K[:n, n + r :] = Ca, Ca.T
        x0 = np.concatenate([z, y, w[active]])
        rhs = np.concatenate([-q, b, d[active]])
        x = x0 + np.linalg.lstsq(K, rhs - K @ x0, rcond=None)[0]
        zp, yp = x[:n], x[n : n + r]
        wp = np.zeros(len(d))
        wp[active] = x[n + r :]
        Cz = C @ zp
        violated = Cz - d > 1e-3 * tol * (
            1 + max(np.abs(Cz).max(initial=0), np.abs(d).max(initial=0))
        )
        negative = wp < -1e-3 * tol * (
            1 + max(np.abs(q).max(initial=0), np.abs(Q @ zp).max(initial=0))
        )
        if not (violated.any() or negative.any()):
            return zp, yp, np.maximum(wp, 0.0)
        active = (active & ~negative) | violated
    return None


def _solve_lp(
    q: np.ndarray, A: np.ndarray, b: np.ndarray, C: np.ndarray, d: np.ndarray
) -> np.ndarray | None:
    """A minimizer of the linear program min qᵀz s.t. Az = b, Cz ≤ d (the diagnostics of
    step 5; both are feasible and bounded by construction), or None if the interior point
    does not converge to 1e-9."""
    A, b, _, _ = _independent_rows(A, b, np.inf)
    Q = np.zeros((len(q), len(q)))
    for it, (z, y, w, _) in enumerate(_interior_point(Q, q, A, b, C, d)):
        gap = abs(q @ z + b @ y + d @ w)
        scale = 1 + max(
            np.abs(q).max(initial=0), np.abs(d).max(initial=0), np.abs(b).max(initial=0)
        )
        r = max(
            np.abs(A @ z - b).max(initial=0),
            np.maximum(C @ z - d, 0).max(initial=0),
            np.abs(q + A.T @ y + C.T @ w).max(initial=0),
            gap,
        )
        if r <= 1e-9 * scale:
            return z
        if it >= 200:
            break
    return None


def _diagnose(
    Q: np.ndarray,
    q: np.ndarray,
    A: np.ndarray,
    b: np.ndarray,
    C: np.ndarray,
    d: np.ndarray,
    tol: float,
) -> int:
    """Status 1, 2 or 3 of an element whose interior point did not converge (step 5)."""
    n, k = len(q), len(d)
    # phase I: min t over (z, t) s.t. Az = b, Cz − t ≤ d, −t ≤ 1
    unit_t = np.zeros(n + 1)
    unit_t[n] = 1.0
    C1 = np.block([[C, -np.ones((k, 1))], [np.zeros((1, n)), -np.ones((1, 1))]])
    x = _solve_lp(unit_t, np.hstack([A, np.zeros((len(b), 1))]), b, C1, np.append(d, 1.0))
    scale = 1 + max(np.abs(d).max(initial=0), np.abs(b).max(initial=0))
    if x is not None and x[n] > tol * scale:
        return QP_PRIMAL_INFEASIBLE
    # recession: min qᵀv s.t. Qv = 0, Av = 0, Cv ≤ 0, −1 ≤ v ≤ 1
    eye = np.eye(n)
    v = _solve_lp(
        q,
        np.vstack([Q, A]),
        np.zeros(n + len(b)),
        np.vstack([C, eye, -eye]),
        np.concatenate([np.zeros(k), np.ones(2 * n)]),
    )
    if v is not None and q @ v < -tol * (1 + np.abs(q).max(initial=0)):
        return QP_DUAL_INFEASIBLE
    return QP_MAX_ITER_REACHED


def _solve_qp_one(
    Q: np.ndarray,
    q: np.ndarray,
    A: np.ndarray,
    c: np.ndarray,
    G: np.ndarray,
    h: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    tol: float,
    max_iter: int,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None, int, int]:
    """One element in float64: ((z, λ, μ, ν) or None, status, iterations)."""
    n = len(q)
    Q = (Q + Q.T) / 2
    if not all(np.isfinite(x).all() for x in (Q, q, A, c, G)) or any(
        np.isnan(x).any() for x in (h, lb, ub)
    ):  # only with check_finite=False
        return None, QP_MAX_ITER_REACHED, 0

    # 1. standard form Cz ≤ d, full-row-rank equalities, the quick verdicts
    if (lb > ub).any():
        return None, QP_PRIMAL_INFEASIBLE, 0
    g_rows, u_rows, l_rows = np.isfinite(h), np.isfinite(ub), np.isfinite(lb)
    eye = np.eye(n)
    C = np.vstack([G[g_rows], eye[u_rows], -eye[l_rows]])
    d = np.concatenate([h[g_rows], ub[u_rows], -lb[l_rows]])
    Ar, b, Ur, consistent = _independent_rows(A, c, tol)
    if not consistent:
        return None, QP_PRIMAL_INFEASIBLE, 0
    Z = _null_space(Ar, n)
    eig = np.linalg.eigvalsh(Z.T @ Q @ Z) if Z.shape[1] else np.zeros(1)
    if eig.min() < -100 * n * np.finfo(float).eps * max(1.0, np.abs(Q).max(initial=0)):
        return None, QP_DUAL_INFEASIBLE, 0

    def multipliers(y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(λ, μ, ν) of the original problem from (y, w) of the standard form."""
        g, u, l_ = np.split(w, np.cumsum([g_rows.sum(), u_rows.sum()]))
        mu, nu = np.zeros(len(h)), np.zeros(n)
        mu[g_rows] = g
        nu[u_rows] += u
        nu[l_rows] -= l_
        return Ur @ y, mu, nu

    def measure(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        """The largest of the contract's three relative KKT measures."""
        lam, mu, nu = multipliers(y, w)
        measures = qp_kkt_residuals(Q, q, z, lam, mu, nu, A=A, c=c, G=G, h=h, lb=lb, ub=ub)
        return max(float(x) for x in measures)

    # 2.–4. interior point, convergence test, polish (tried from √tol on: the active set is
    # usually clear long before the interior point reaches tol; after tol, at most 5 more
    # iterations for a polish, keeping the last iterate that meets tol)
    best, after_tol = None, 0
    iterations = 0
    for iterations, point in enumerate(_interior_point(Q, q, Ar, b, C, d)):
        z, y, w, _ = point
        r = measure(z, y, w)
        if r <= tol:
            best, after_tol = (z, y, w), after_tol + 1
        if r <= np.sqrt(tol):
            polished = _polish(Q, q, Ar, b, C, d, point, tol)
            if polished is not None and measure(*polished) <= tol:
                best = polished
                break
        if after_tol > 5 or iterations >= max_iter:
            break
    if best is not None:
        z, y, w = best
        return (z, *multipliers(y, w)), QP_SOLVED, iterations
    # 5. why not
    return None, _diagnose(Q, q, Ar, b, C, d, tol), iterations


def solve_qp_ex(
    Q: Any,
    q: Any,
    *,
    A: Any = None,
    c: Any = None,
    G: Any = None,
    h: Any = None,
    lb: Any = None,
    ub: Any = None,
    tol: float | None = None,
    max_iter: int = QP_MAX_ITER,
    check_finite: bool = True,
) -> QPSolution:
    """Solve a batch of convex QPs min ½zᵀQz + qᵀz s.t. Az = c, Gz ≤ h, lb ≤ z ≤ ub and
    report a status per element instead of raising.

    Shapes: Q (..., n, n), q (..., n), A (..., m, n), c (..., m), G (..., p, n), h (..., p),
    lb and ub (..., n) or scalars; the batch dimensions broadcast. Returns the named tuple
    QPSolution(z (..., n), lam (..., m), mu (..., p), nu (..., n), info, iterations), info
    and iterations int32 of the batch shape: info 0 solved, 1 primal infeasible, 2 dual
    infeasible, 3 not converged within ``max_iter``; failed elements are NaN.
    ``tol`` defaults to 1e-8 for float64 and 1e-5 for float32 (computed in float64).
    """
    arrays, batch, n, m, p, dtype = _validate_qp(Q, q, A, c, G, h, lb, ub, check_finite)
    if tol is None:
        tol = QP_TOL[dtype]
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < float(tol) < 1:
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral):
        raise TypeError(f"max_iter must be an int, got {type(max_iter).__name__}")
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")

    def full(name: str, k: int, default: float) -> np.ndarray:
        """The argument as float64 of shape (*batch, k) (a broadcast view), default if absent."""
        x = arrays[name]
        x = np.full(k, default) if x is None else x.astype(np.float64)
        return np.broadcast_to(x, (*batch, k))

    Qb = np.broadcast_to(np.asarray(arrays["Q"], np.float64), (*batch, n, n))
    mats = {
        name: np.broadcast_to(
            np.zeros((0, n)) if arrays[name] is None else np.asarray(arrays[name], np.float64),
            (*batch, k, n),
        )
        for name, k in (("A", m), ("G", p))
    }
    vecs = [full("q", n, 0.0), full("c", m, 0.0), full("h", p, 0.0)]
    bounds = [full("lb", n, -np.inf), full("ub", n, np.inf)]

    z = np.full((*batch, n), np.nan)
    lam, mu, nu = (
        np.full((*batch, m), np.nan),
        np.full((*batch, p), np.nan),
        np.full((*batch, n), np.nan),
    )
    info = np.zeros(batch, dtype=np.int32)
    iterations = np.zeros(batch, dtype=np.int32)
    for idx in np.ndindex(*batch):
        solution, info[idx], iterations[idx] = _solve_qp_one(
            Qb[idx],
            vecs[0][idx],
            mats["A"][idx],
            vecs[1][idx],
            mats["G"][idx],
            vecs[2][idx],
            bounds[0][idx],
            bounds[1][idx],
            tol,
            max_iter,
        )
        if solution is not None:
            z[idx], lam[idx], mu[idx], nu[idx] = solution
    cast = [x.astype(dtype) for x in (z, lam, mu, nu)]
    return QPSolution(*cast, info, iterations)


def solve_qp(
    Q: Any,
    q: Any,
    *,
    A: Any = None,
    c: Any = None,
    G: Any = None,
    h: Any = None,
    lb: Any = None,
    ub: Any = None,
    return_multipliers: bool = False,
    tol: float | None = None,
    max_iter: int = QP_MAX_ITER,
    check_finite: bool = True,
) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Solve a batch of convex QPs; returns z, or (z, lam, mu, nu) when asked.

    Raises :class:`QPError` (``.indices``: the failing batch elements, ``.info``: the whole
    batch's status) when any element is not solved; see :func:`solve_qp_ex`.
    """
    sol = solve_qp_ex(
        Q,
        q,
        A=A,
        c=c,
        G=G,
        h=h,
        lb=lb,
        ub=ub,
        tol=tol,
        max_iter=max_iter,
        check_finite=check_finite,
    )
    if sol.info.any():
        raise QPError(sol.info)
    return (sol.z, sol.lam, sol.mu, sol.nu) if return_multipliers else sol.z
