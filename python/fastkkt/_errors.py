"""The exception raised when a KKT system in a batch cannot be solved."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastkkt._status import (
    DUAL_INFEASIBLE,
    MAX_ITER,
    NOT_MINIMUM,
    PRIMAL_INFEASIBLE,
    SINGULAR,
)

__all__ = ["KKTError", "QPError"]

# What each status means, for the messages (the codes: fastkkt/_status.py).
KKT_REASONS = {
    SINGULAR: "singular KKT matrix (A without full row rank, or Q singular on the null space "
    "of A; or a solution that overflows the dtype, or non-finite input with check_finite=False)",
    NOT_MINIMUM: "not a strict minimum (Q not positive definite on the null space of A)",
}
QP_REASONS = {
    PRIMAL_INFEASIBLE: "primal infeasible",
    DUAL_INFEASIBLE: "dual infeasible (unbounded, or Q not positive semidefinite)",
    MAX_ITER: "not converged within max_iter",
}
_MAX_LISTED = 8  # batch indices named per reason


def describe(info: np.ndarray, reasons: dict[int, str], one: str, many: str, hint: str) -> str:
    """The message of a failed batch: how many of how many `many` failed, then per reason the
    first failing batch indices (none for one unbatched problem, `one`), then `hint`."""
    parts = []
    codes = np.unique(info[info != 0]).tolist()
    for code in sorted(codes, key=lambda k: (k not in reasons, k)):
        reason = reasons.get(code, f"info {code}")
        if info.ndim > 0:
            where = np.argwhere(info == code)
            listed = ", ".join(str(tuple(int(i) for i in row)) for row in where[:_MAX_LISTED])
            more = len(where) - _MAX_LISTED
            reason += f" at batch index {listed}" + (f" and {more} more" if more > 0 else "")
        parts.append(reason)
    failed = int(np.count_nonzero(info))
    what = f"the {one} failed" if info.ndim == 0 else f"{failed} of {info.size} {many} failed"
    return f"{what}: {'; '.join(parts)}. {hint}"


class KKTError(np.linalg.LinAlgError):
    """Some KKT systems of a batch are singular or do not define a strict minimum.

    Raised by :func:`fastkkt.solve` (and ``factorize(...).solve``) when any batch element
    fails; :func:`fastkkt.solve_ex` reports the same status per element instead.

    Parameters
    ----------
    info : array_like of int, shape (...)
        Per-element status over the broadcast batch shape: 0 solved, 1 singular KKT matrix,
        2 not a strict minimum (the KKT matrix does not have inertia (n, m)).
    message : str, optional
        Overrides the default message, which names the failing batch elements.

    Attributes
    ----------
    info : numpy.ndarray of int32, shape (...)
        The status array.
    indices : list of tuple of int
        Batch indices of the failing elements in C order, e.g. ``[(0, 2), (1, 1)]``;
        ``[()]`` for a failed unbatched problem.
    """

    def __init__(self, info: Any, message: str | None = None) -> None:
        self.info = np.array(info, dtype=np.int32)
        self.indices = [tuple(int(i) for i in idx) for idx in np.argwhere(self.info != 0)]
        if message is None:
            message = describe(
                self.info, KKT_REASONS, "problem", "problems",
                "fastkkt.solve_ex returns per-element status instead of raising.",
            )  # fmt: skip
        super().__init__(message)

    def __reduce__(self) -> tuple:
        return (type(self), (self.info, str(self)))


class QPError(KKTError):
    """Some QPs of a batch were not solved (infeasible, unbounded or not converged).

    Raised by :func:`fastkkt.solve_qp`; :func:`fastkkt.solve_qp_ex` reports the same status
    per element instead.

    Parameters
    ----------
    info : array_like of int, shape (...)
        Per-element status over the broadcast batch shape: 0 solved, 1 primal infeasible,
        2 dual infeasible (unbounded below, or Q not positive semidefinite on the feasible
        set), 3 not converged to `tol` within `max_iter`.
    message : str, optional
        Overrides the default message, which names the failing batch elements.

    Attributes
    ----------
    info : numpy.ndarray of int32, shape (...)
        The whole batch's status array.
    indices : list of tuple of int
        Batch indices of the failing elements in C order, as in `KKTError`.
    """

    def __init__(self, info: Any, message: str | None = None) -> None:
        arr = np.array(info, dtype=np.int32)
        if message is None:
            message = describe(
                arr, QP_REASONS, "QP", "QPs",
                "fastkkt.solve_qp_ex returns per-element status instead of raising.",
            )  # fmt: skip
        super().__init__(arr, message)
