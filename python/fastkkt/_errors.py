"""The exception raised when a KKT system in a batch cannot be solved."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["KKTError", "QPError"]

_REASONS = {
    1: "singular KKT matrix (or a solution that is not finite)",
    2: "not a strict minimum (wrong inertia)",
}
_MAX_LISTED = 10


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
            message = _describe(self.info, self.indices)
        super().__init__(message)

    def __reduce__(self) -> tuple:
        return (type(self), (self.info, str(self)))


def _describe(info: np.ndarray, indices: list) -> str:
    if info.ndim == 0:  # one unbatched problem: no index to name
        return f"the KKT system could not be solved: {_REASONS.get(int(info), f'info {int(info)}')}"
    shown = indices[:_MAX_LISTED]
    parts = [f"{idx} {_REASONS.get(int(info[idx]), f'info {int(info[idx])}')}" for idx in shown]
    if len(indices) > len(shown):
        parts.append(f"... ({len(indices) - len(shown)} more)")
    return (
        f"{len(indices)} of {info.size} KKT systems could not be solved "
        f"(batch index: reason): {'; '.join(parts)}"
    )


_QP_REASONS = {
    1: "primal infeasible",
    2: "dual infeasible (unbounded, or Q not positive semidefinite)",
    3: "not converged within max_iter",
}


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
            indices = [tuple(int(i) for i in idx) for idx in np.argwhere(arr != 0)]
            shown = indices[:_MAX_LISTED]
            parts = [
                f"{idx} {_QP_REASONS.get(int(arr[idx]), f'info {int(arr[idx])}')}" for idx in shown
            ]
            if len(indices) > len(shown):
                parts.append(f"... ({len(indices) - len(shown)} more)")
            message = (
                f"{len(indices)} of {max(arr.size, 1)} QPs could not be solved "
                f"(batch index: reason): {'; '.join(parts)}. "
                "fastkkt.solve_qp_ex returns per-element status instead of raising."
            )
        super().__init__(arr, message)
