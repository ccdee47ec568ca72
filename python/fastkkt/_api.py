"""The NumPy API: validation, dtype promotion and broadcasting around the compiled core.

Each batch element is the equality-constrained quadratic program

    minimize_z  ½ zᵀ Q z + qᵀ z   subject to  A z = c,

solved through its KKT system (Lagrangian L = ½zᵀQz + qᵀz + λᵀ(Az − c))::

    [ sym(Q)  Aᵀ ] [ z ]   [ −q ]
    [ A       0  ] [ λ ] = [  c ],      sym(Q) = (Q + Qᵀ)/2.

Shapes: Q (..., n, n), q (..., n), A (..., m, n), c (..., m); the leading batch dimensions
broadcast by NumPy rules. Broadcast operands are passed to the core as stride-0 views, never
expanded.
"""

from __future__ import annotations

from typing import Any, Literal, Union, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastkkt import _kkt
from fastkkt import _validate as v
from fastkkt._threads import get_num_threads, set_num_threads

__all__ = [
    "KKTFactorization",
    "factorize",
    "get_num_threads",
    "set_num_threads",
    "solve",
    "solve_ex",
]


# --------------------------------------------------------------------------------------------
# public functions


def solve_ex(
    Q: ArrayLike, q: ArrayLike, A: ArrayLike, c: ArrayLike, *, check_finite: bool = True
) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]], NDArray[np.int32]]:
    """Solve a batch of equality-constrained QPs, reporting failures per element.

    Parameters
    ----------
    Q : array_like, shape (..., n, n)
        Quadratic term; only its symmetric part (Q + Qᵀ)/2 is used.
    q : array_like, shape (..., n)
        Linear term.
    A : array_like, shape (..., m, n)
        Constraint matrix (m = 0 gives an unconstrained problem).
    c : array_like, shape (..., m)
        Constraint right-hand side.
    check_finite : bool
        Raise ValueError on NaN or Inf in any input (default).

    Returns
    -------
    z : ndarray, shape (..., n)
    lam : ndarray, shape (..., m)
        The minimizer and the multipliers, satisfying
        sym(Q) z + Aᵀ λ = −q and A z = c, over the broadcast batch shape.
    info : ndarray of int32, shape (...)
        0 solved; 1 singular KKT matrix; 2 not a strict minimum (the inertia of the KKT matrix
        is not (n, m), i.e. Q is not positive definite on the null space of A). A solution
        that is not finite is never solved: from finite input it overflowed the dtype (the
        KKT matrix is singular in its range), from NaN/Inf input (check_finite=False) it is
        undefined; either gives 1. Failed elements hold NaN in z and lam; the others are
        exactly what `solve` returns.

    Raises ValueError for shapes that do not match or broadcast and for non-finite input,
    TypeError for complex or non-numeric input.
    """
    z, lam, info, _, _ = _kkt.solve(Q, q, A, c, check_finite, keep=False)
    return z, lam, info


_Floats = NDArray[np.floating[Any]]
_Solution = Union[_Floats, tuple[_Floats, _Floats]]


@overload
def solve(
    Q: ArrayLike,
    q: ArrayLike,
    A: ArrayLike,
    c: ArrayLike,
    *,
    return_multipliers: Literal[False] = ...,
    check_finite: bool = ...,
) -> _Floats: ...
@overload
def solve(
    Q: ArrayLike,
    q: ArrayLike,
    A: ArrayLike,
    c: ArrayLike,
    *,
    return_multipliers: Literal[True],
    check_finite: bool = ...,
) -> tuple[_Floats, _Floats]: ...
@overload
def solve(
    Q: ArrayLike,
    q: ArrayLike,
    A: ArrayLike,
    c: ArrayLike,
    *,
    return_multipliers: bool,
    check_finite: bool = ...,
) -> _Solution: ...
def solve(
    Q: ArrayLike,
    q: ArrayLike,
    A: ArrayLike,
    c: ArrayLike,
    *,
    return_multipliers: bool = False,
    check_finite: bool = True,
) -> _Solution:
    """Solve ``minimize ½zᵀQz + qᵀz subject to Az = c`` for a batch of problems.

    Solves the KKT system ``[[sym(Q), Aᵀ], [A, 0]] [z; λ] = [−q; c]`` of every batch element
    with an LDLᵀ factorization (natural order when Q is positive definite, Bunch–Kaufman
    pivoting otherwise) and iterative refinement where needed. Shapes: Q (..., n, n),
    q (..., n), A (..., m, n), c (..., m); batch dimensions broadcast. float32 input is solved
    in float32, anything else in float64.

    Returns z of shape (..., n), or (z, lam) with lam of shape (..., m) when
    `return_multipliers` is true.

    Raises
    ------
    ValueError
        Shapes that do not match or broadcast; NaN or Inf in an input (if `check_finite`).
    TypeError
        Complex or non-numeric input.
    KKTError
        Some element has a singular KKT matrix or is not a strict minimum; ``.indices`` lists
        them (see `solve_ex` to get per-element status instead).
    """
    z, lam, info, _, failed = _kkt.solve(Q, q, A, c, check_finite, keep=False)
    if failed:
        _kkt.raise_failed(info)
    return (z, lam) if return_multipliers else z


class KKTFactorization:
    """Factorizations of a batch of KKT matrices ``[[sym(Q), Aᵀ], [A, 0]]``, for many solves.

    Made by `factorize`. Holds, per batch element, P K Pᵀ = L D Lᵀ with D block diagonal
    (1×1 and 2×2 blocks) in N(N−1)/2 + 3N + 4 numbers for N = n + m, plus private copies of
    Q and A for iterative refinement. ``F.solve(q, c)`` gives exactly what
    ``fastkkt.solve(Q, q, A, c)`` gives for the same (Q, A) and dtype.

    Attributes
    ----------
    n, m : int
    batch_shape : tuple of int
        The broadcast batch shape of Q and A.
    dtype : numpy.dtype
        float32 or float64. `solve` computes in NumPy's promotion of it with the dtypes of q
        and c, as `fastkkt.solve` does: float64 q or c on a float32 factorization are solved
        with a float64 factorization of the same Q and A (made on first use, then kept).
    info : ndarray of int32, shape batch_shape
        0 factored (a strict minimum), 1 singular, 2 not a strict minimum.
    """

    def __init__(self, Q: ArrayLike, A: ArrayLike, *, check_finite: bool = True) -> None:
        Qa, Aa = v.as_array(Q, "Q"), v.as_array(A, "A")
        n, m = v.matrix_sizes(Qa.shape, Aa.shape)
        dtype = v.compute_dtype((Qa.dtype, Aa.dtype))
        batch = v.batch_shape({"Q": (Qa.shape, 2), "A": (Aa.shape, 2)})
        v.check_size(batch, n, m, dtype.itemsize, records=True)
        # own, unbroadcast copies: the factorization is a snapshot of Q and A
        self._Q = np.array(Qa, dtype=dtype, order="C", copy=True)
        self._A = np.array(Aa, dtype=dtype, order="C", copy=True)
        self.n, self.m, self.batch_shape, self.dtype = n, m, batch, dtype
        self._records, self._info = _kkt.factor(self._Q, self._A, check_finite)

    @property
    def info(self) -> NDArray[np.int32]:
        return self._info.copy()

    def _float64(self) -> KKTFactorization:
        """This factorization's Q and A factored in float64 (kept after the first call)."""
        F = self.__dict__.get("_f64")
        if F is None:
            F = KKTFactorization(
                self._Q.astype(np.float64), self._A.astype(np.float64), check_finite=False
            )
            self._f64 = F
        return F

    def __repr__(self) -> str:
        bad = int(np.count_nonzero(self._info))
        return (
            f"KKTFactorization(n={self.n}, m={self.m}, batch_shape={self.batch_shape}, "
            f"dtype={self.dtype}, failed={bad})"
        )

    def solve_ex(
        self, q: ArrayLike, c: ArrayLike, *, check_finite: bool = True
    ) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]], NDArray[np.int32]]:
        """Like `fastkkt.solve_ex` with this factorization's Q and A: (z, lam, info)."""
        qa, ca = v.as_array(q, "q"), v.as_array(c, "c")
        if self.dtype != np.float64 and v.compute_dtype((qa.dtype, ca.dtype, self.dtype)) != (
            self.dtype
        ):
            # float64 right-hand sides on a float32 factorization: computed in float64, as
            # fastkkt.solve(Q, q, A, c) is, with a float64 factorization of the same Q and A
            # (float32 values, so exactly the same matrices), made on first use and kept.
            return self._float64().solve_ex(qa, ca, check_finite=check_finite)
        return _kkt.solve_factored(
            self._records, self._info, self._Q, self._A, qa, ca, check_finite
        )

    @overload
    def solve(
        self,
        q: ArrayLike,
        c: ArrayLike,
        *,
        return_multipliers: Literal[False] = ...,
        check_finite: bool = ...,
    ) -> _Floats: ...
    @overload
    def solve(
        self,
        q: ArrayLike,
        c: ArrayLike,
        *,
        return_multipliers: Literal[True],
        check_finite: bool = ...,
    ) -> tuple[_Floats, _Floats]: ...
    @overload
    def solve(
        self,
        q: ArrayLike,
        c: ArrayLike,
        *,
        return_multipliers: bool,
        check_finite: bool = ...,
    ) -> _Solution: ...
    def solve(
        self,
        q: ArrayLike,
        c: ArrayLike,
        *,
        return_multipliers: bool = False,
        check_finite: bool = True,
    ) -> _Solution:
        """Solve with new (q, c): z of shape (..., n), or (z, lam) with `return_multipliers`.

        Broadcasts q (..., n) and c (..., m) against the factorization's batch shape. Raises
        KKTError for elements whose factorization failed.
        """
        z, lam, info = self.solve_ex(q, c, check_finite=check_finite)
        _kkt.raise_failed(info)
        return (z, lam) if return_multipliers else z


def factorize(Q: ArrayLike, A: ArrayLike, *, check_finite: bool = True) -> KKTFactorization:
    """Factor the KKT matrices of a batch of (Q, A) once, to solve for many (q, c).

    Q (..., n, n) and A (..., m, n) broadcast against each other. Does not raise for failed
    elements: they are reported in ``F.info`` and raise `KKTError` from ``F.solve``.
    """
    return KKTFactorization(Q, A, check_finite=check_finite)
