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

from typing import Any

import numpy as np

from ._errors import KKTError

__all__ = ["solve", "solve_ex"]

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
    Q, q, A, c = (_as_real_array(x, name) for x, name in zip((Q, q, A, c), _NAMES))
    dtype = np.result_type(Q, q, A, c)
    if dtype == np.float16:
        dtype = np.dtype(np.float32)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"inputs must be float32 or float64 (or integers), got dtype {dtype}")

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
        info[~right_inertia] = 2
        info[singular] = 1
        good = info == 0
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
