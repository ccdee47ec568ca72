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

import os
import threading
import warnings
from typing import Any, Literal, Union, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastkkt._dispatch import core
from fastkkt._errors import KKTError
from fastkkt._validate import compute_dtype

__all__ = [
    "KKTFactorization",
    "factorize",
    "get_num_threads",
    "set_num_threads",
    "solve",
    "solve_ex",
]

# info codes from the core (cpp/include/fastkkt/ldlt.hpp, enum Status)
SOLVED, SINGULAR, NOT_MINIMUM = 0, 1, 2
_NONFINITE = {3: "Q", 4: "q", 5: "A", 6: "c"}
INVALID_RECORD = 7

# Refuse requests whose per-thread scratch alone could not be allocated: (n+m)² scalars.
_MAX_KKT_ENTRIES = 1 << 40


# --------------------------------------------------------------------------------------------
# threads


_MAX_THREADS = 1 << 16


def _cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _env_threads(name: str) -> int | None:
    """A thread count from environment variable `name` (OMP_NUM_THREADS may list one per
    nesting level: the first counts), or None when it is unset; a warning when it is no count."""
    env = os.environ.get(name, "").strip()
    if not env:
        return None
    try:
        k = int(env.split(",")[0])
    except ValueError:
        k = 0
    if 1 <= k <= _MAX_THREADS:
        return k
    warnings.warn(
        f"{name}={env!r} is not a thread count (1 … {_MAX_THREADS}); ignored",
        RuntimeWarning,
        stacklevel=3,
    )
    return None


def _default_threads() -> int:
    for name in ("FASTKKT_NUM_THREADS", "OMP_NUM_THREADS"):
        k = _env_threads(name)
        if k is not None:
            return k
    return _cores()


_CORES = _cores()
_num_threads = _default_threads()
_threads_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # libgomp's threads do not survive fork(): the core runs forked children on one thread
    # (cpp/include/fastkkt/threads.hpp); the setting says so too.
    global _num_threads, _CORES
    _num_threads = 1
    _CORES = _cores()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _call_threads() -> int:
    """Threads to ask the core for: the setting, at most the cores (the core lowers it further
    in forked children and under a lower OpenMP limit of the calling thread)."""
    return min(_num_threads, _CORES)


def set_num_threads(k: int) -> None:
    """Use up to `k` threads (k ≥ 1) for later calls. Results do not depend on it, bit for bit.

    Calls never use more threads than the cores this process may run on, whatever `k` (more
    would only take turns on them). They also follow a lower OpenMP limit of the calling thread
    (``threadpoolctl.threadpool_limits``, ``torch.set_num_threads``, ``omp_set_num_threads``)
    and run on one thread in a process forked from this one (where the setting is reset to 1).
    """
    global _num_threads
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"set_num_threads expects an int, got {type(k).__name__}")
    if not 1 <= k <= _MAX_THREADS:
        raise ValueError(f"set_num_threads expects 1 <= k <= {_MAX_THREADS}, got {k}")
    with _threads_lock:
        _num_threads = int(k)


def get_num_threads() -> int:
    """The thread setting: set_num_threads's, else $FASTKKT_NUM_THREADS, else
    $OMP_NUM_THREADS, else every core (1 in a forked child). Calls use at most the cores."""
    return _num_threads


# --------------------------------------------------------------------------------------------
# validation and conversion


def _as_array(x: ArrayLike, name: str) -> np.ndarray:
    try:
        a = np.asarray(x)
    except Exception as exc:  # e.g. ragged nested lists
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {a.dtype}; fastkkt solves real problems in float32 or float64"
        )
    if a.dtype.kind == "f" and a.dtype.itemsize > 8:
        raise TypeError(f"{name} has dtype {a.dtype}; convert it to float64")
    return a


def _compute_dtype(*arrays: np.ndarray) -> np.dtype:
    """NumPy's promotion of the inputs' dtypes rounded up to float32 or float64 (the one rule
    of fastkkt/_validate.py, shared with fastkkt.torch): float32 with int8 or bool stays
    float32, integers alone become float64."""
    return compute_dtype(a.dtype for a in arrays)


def _native(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`a` as `dtype` in native byte order at an aligned address; copies only when needed."""
    a = np.asarray(a, dtype=dtype)
    if not a.flags.aligned:
        a = a.copy()
    return a


def _shape_str(a: np.ndarray) -> str:
    return str(tuple(a.shape))


def _check_mat(a: np.ndarray, name: str, what: str) -> None:
    if a.ndim < 2:
        raise ValueError(f"{name} must have shape {what}, got shape {_shape_str(a)}")


def _check_vec(a: np.ndarray, name: str, what: str, size: int, size_name: str) -> None:
    if a.ndim < 1:
        raise ValueError(f"{name} must have shape {what}, got a scalar")
    if a.shape[-1] != size:
        raise ValueError(
            f"{name} must have shape {what} with {size_name} = {size}, got shape {_shape_str(a)}"
        )


# The most batch dimensions the core takes (kMaxBatchDims in cpp/include/fastkkt/kkt.hpp).
MAX_BATCH_DIMS = 32


def _batch_shape(named: dict[str, tuple[np.ndarray, int]]) -> tuple[int, ...]:
    """Broadcast the batch dimensions (all but the last `k`) of the named arrays."""
    batches = {name: a.shape[: a.ndim - k] for name, (a, k) in named.items()}
    deepest = max((len(b) for b in batches.values()), default=0)
    if deepest > MAX_BATCH_DIMS:  # (np.broadcast_shapes itself stops at 32 with RuntimeError)
        desc = ", ".join(f"{name} {_shape_str(a)}" for name, (a, _) in named.items())
        raise ValueError(
            f"at most {MAX_BATCH_DIMS} batch dimensions are supported, got {deepest} "
            f"(shapes: {desc})"
        )
    try:
        return tuple(np.broadcast_shapes(*batches.values()))
    except ValueError:
        desc = ", ".join(f"{name} {b}" for name, b in batches.items())
        raise ValueError(f"batch dimensions do not broadcast: {desc}") from None


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # not POSIX: rely on the allocator
        return 1 << 62


_PHYSICAL_MEMORY = _physical_memory()


def _check_size(
    batch: tuple[int, ...], n: int, m: int, itemsize: int = 8, records: bool = False
) -> None:
    """MemoryError before allocating anything when the results (z, lam and info; with
    `records` also the kept factorizations) or one KKT matrix could not fit in this machine's
    memory, even where the OS would overcommit (and the OOM killer would end the process)."""
    N = n + m
    if N * N > _MAX_KKT_ENTRIES or 8 * N * N > _PHYSICAL_MEMORY:
        raise MemoryError(f"a KKT matrix of size {N}×{N} does not fit in memory")
    b = 1
    for s in batch:
        b *= s
    need = b * (N * itemsize + 4)
    if records:
        need += b * ((N * (N - 1) // 2 + 3 * N + 4) * itemsize + 4)
    if b * max(N, 1) > _MAX_KKT_ENTRIES or need > _PHYSICAL_MEMORY:
        raise MemoryError(
            f"the results for batch shape {batch} (n + m = {N}) need {need / 2**30:.3g} GiB, "
            f"more than this machine's memory ({_PHYSICAL_MEMORY / 2**30:.3g} GiB)"
        )


def _prepare_qa(Q: ArrayLike, A: ArrayLike) -> tuple[np.ndarray, np.ndarray, int, int]:
    Qa, Aa = _as_array(Q, "Q"), _as_array(A, "A")
    _check_mat(Qa, "Q", "(..., n, n)")
    n = Qa.shape[-1]
    if Qa.shape[-2] != n:
        raise ValueError(f"Q must be square with shape (..., n, n), got shape {_shape_str(Qa)}")
    _check_mat(Aa, "A", "(..., m, n)")
    if Aa.shape[-1] != n:
        raise ValueError(
            f"A must have shape (..., m, n) with n = {n} (from Q {_shape_str(Qa)}), "
            f"got shape {_shape_str(Aa)}"
        )
    return Qa, Aa, n, Aa.shape[-2]


def _prepare_qc(q: ArrayLike, c: ArrayLike, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    qa, ca = _as_array(q, "q"), _as_array(c, "c")
    _check_vec(qa, "q", "(..., n)", n, "n")
    _check_vec(ca, "c", "(..., m)", m, "m")
    return qa, ca


_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


def _ready(Q: Any, q: Any, A: Any, c: Any) -> tuple[tuple[int, ...], int, int] | None:
    """(batch, n, m) when Q, q, A, c are aligned native float64 (or all float32) ndarrays of
    one batch shape with consistent sizes — the common case, which needs no conversion or
    broadcasting — else None (the general path then validates and reports errors)."""
    if not (type(Q) is type(q) is type(A) is type(c) is np.ndarray):
        return None
    dt = Q.dtype
    if dt not in _FLOATS or not (q.dtype == A.dtype == c.dtype == dt):
        return None
    shape = Q.shape
    if len(shape) < 2 or A.ndim != len(shape) or q.ndim != len(shape) - 1 or c.ndim != q.ndim:
        return None
    if len(shape) > MAX_BATCH_DIMS + 2:  # the general path reports it
        return None
    batch, n, m = shape[:-2], shape[-1], A.shape[-2]
    if shape[-2] != n or A.shape != (*batch, m, n) or q.shape != (*batch, n):
        return None
    if c.shape != (*batch, m):
        return None
    if not (Q.flags.aligned and q.flags.aligned and A.flags.aligned and c.flags.aligned):
        return None
    return batch, n, m


def _broadcast(a: np.ndarray, batch: tuple[int, ...], k: int) -> np.ndarray:
    return np.broadcast_to(a, batch + a.shape[a.ndim - k :])


def _raise_nonfinite(info: np.ndarray) -> None:
    if info.size == 0 or info.max() < 3:  # codes 3 … 7 only: one reduction when all is well
        return
    if np.any(info == INVALID_RECORD):
        raise ValueError(
            "the factorization's arrays were modified: they are not a factorization fastkkt made"
        )
    codes = info[info >= 3]
    if codes.size:
        code = int(codes.min())
        where = tuple(int(i) for i in np.argwhere(info == code)[0])
        name = _NONFINITE[code]
        at = f" (batch element {where})" if where else ""
        raise ValueError(
            f"{name} contains NaN or Inf{at}; pass check_finite=False to skip this check"
        )


def _raise_kkt(info: np.ndarray) -> None:
    """Raise KKTError naming the failing elements, if any element of `info` is nonzero."""
    if not info.any():
        return
    bad = np.argwhere(info != SOLVED)

    def at(code: int) -> str:
        if info.ndim == 0:  # one unbatched problem: no index to name
            return ""
        idx = [tuple(int(i) for i in row) for row in bad if info[tuple(row)] == code]
        listed = ", ".join(str(i) for i in idx[:8])
        more = f" and {len(idx) - 8} more" if len(idx) > 8 else ""
        return f" at batch index {listed}{more}"

    parts = []
    if np.any(info == SINGULAR):
        parts.append(
            "singular KKT matrix (A without full row rank, or Q singular on the null space "
            "of A; or a solution that overflows the dtype, or non-finite input with "
            f"check_finite=False){at(SINGULAR)}"
        )
    if np.any(info == NOT_MINIMUM):
        parts.append(
            "not a strict minimum (Q not positive definite on the null space of A)"
            f"{at(NOT_MINIMUM)}"
        )
    what = "the problem failed" if info.ndim == 0 else f"{len(bad)} of {info.size} problems failed"
    msg = (
        f"{what}: "
        + "; ".join(parts)
        + ". fastkkt.solve_ex returns per-element status instead of raising."
    )
    raise KKTError(info, msg)


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
    return _solve(Q, q, A, c, check_finite)


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
    z, lam, info, _, failed = _solve_keep(Q, q, A, c, check_finite, keep=False)
    if failed:
        _raise_kkt(info)
    return (z, lam) if return_multipliers else z


def _solve(Q: ArrayLike, q: ArrayLike, A: ArrayLike, c: ArrayLike, check_finite: bool):
    z, lam, info, _, _ = _solve_keep(Q, q, A, c, check_finite, keep=False)
    return z, lam, info


def _solve_keep(
    Q: ArrayLike, q: ArrayLike, A: ArrayLike, c: ArrayLike, check_finite: bool, keep: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, KKTFactorization | None, int]:
    """solve_ex and the number of failed elements; with `keep` also the factorization of
    (Q, A) that produced it (for the adjoint solve of fastkkt.torch): written by the same call
    when every element has its own Q and A, else factored once per distinct (Q, A) and then
    solved — the same bits either way."""
    Qn: np.ndarray
    qn: np.ndarray
    An: np.ndarray
    cn: np.ndarray
    fast = _ready(Q, q, A, c)
    if fast is not None:  # nothing to convert or broadcast: skip the general path's overhead
        Qn, qn, An, cn = Q, q, A, c  # type: ignore[assignment]
        batch, n, m = fast
        dtype = Qn.dtype
        # q and c may be broadcast views (np.broadcast_to) far smaller than the results
        _check_size(batch, n, m, dtype.itemsize, keep)
    else:
        Qa, Aa, n, m = _prepare_qa(Q, A)
        qa, ca = _prepare_qc(q, c, n, m)
        dtype = _compute_dtype(Qa, qa, Aa, ca)
        batch = _batch_shape({"Q": (Qa, 2), "q": (qa, 1), "A": (Aa, 2), "c": (ca, 1)})
        _check_size(batch, n, m, dtype.itemsize)
        Qn, An = _native(Qa, dtype), _native(Aa, dtype)
        qn, cn = _native(qa, dtype), _native(ca, dtype)
        if keep and _batch_shape({"Q": (Qa, 2), "A": (Aa, 2)}) != batch:
            # (Q, A) shared along some batch dimensions: factor each distinct one once
            F = KKTFactorization(Qn, An, check_finite=check_finite, _copy=False)
            z, lam, info = F.solve_ex(qn, cn, check_finite=check_finite)
            return z, lam, info, F, int(np.count_nonzero(info))
        Qn, qn = _broadcast(Qn, batch, 2), _broadcast(qn, batch, 1)
        An, cn = _broadcast(An, batch, 2), _broadcast(cn, batch, 1)
        _check_size(batch, n, m, dtype.itemsize, keep)
    z = np.empty(batch + (n,), dtype)
    lam = np.empty(batch + (m,), dtype)
    info = np.empty(batch, np.int32)
    # every entry of records and finfo is written by the core: no zeroing pass
    records = np.empty(batch + (int(core.record_size(n + m)),), dtype) if keep else None
    finfo = np.empty(batch, np.int32) if keep else None
    failed = core.solve(
        Qn, qn, An, cn, z, lam, info, bool(check_finite), _call_threads(), records, finfo
    )
    if failed:
        _raise_nonfinite(info)
    kept = None
    if records is not None and finfo is not None:
        kept = KKTFactorization._from_arrays(Qn, An, records, finfo)
    return z, lam, info, kept, failed


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

    def __init__(
        self, Q: ArrayLike, A: ArrayLike, *, check_finite: bool = True, _copy: bool = True
    ) -> None:
        Qa, Aa, n, m = _prepare_qa(Q, A)
        dtype = _compute_dtype(Qa, Aa)
        batch = _batch_shape({"Q": (Qa, 2), "A": (Aa, 2)})
        _check_size(batch, n, m, dtype.itemsize, records=True)
        # Own, unbroadcast copies: the factorization is a snapshot of Q and A. (fastkkt.torch
        # passes _copy=False: autograd's version counters already guard its saved inputs.)
        if _copy:
            self._Q = np.array(Qa, dtype=dtype, order="C", copy=True)
            self._A = np.array(Aa, dtype=dtype, order="C", copy=True)
        else:
            self._Q, self._A = _native(Qa, dtype), _native(Aa, dtype)
        self.n, self.m, self.batch_shape, self.dtype = n, m, batch, dtype
        R = int(core.record_size(n + m))
        self._records = np.zeros(batch + (R,), dtype)  # zeros: unused slots are deterministic
        self._info = np.empty(batch, np.int32)
        core.factorize(
            self._Q if self._Q.shape[:-2] == batch else _broadcast(self._Q, batch, 2),
            self._A if self._A.shape[:-2] == batch else _broadcast(self._A, batch, 2),
            self._records,
            self._info,
            bool(check_finite),
            _call_threads(),
        )
        _raise_nonfinite(self._info)

    @classmethod
    def _from_arrays(
        cls, Q: np.ndarray, A: np.ndarray, records: np.ndarray, info: np.ndarray
    ) -> KKTFactorization:
        """Rebuild from the arrays of an earlier factorization (``F._Q, F._A, F._records,
        F._info``), e.g. after a round trip through torch tensors. Not validated: internal."""
        self = cls.__new__(cls)
        self._Q, self._A, self._records, self._info = Q, A, records, info
        self.n, self.m = Q.shape[-1], A.shape[-2]
        self.batch_shape, self.dtype = tuple(info.shape), records.dtype
        return self

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
        qa, ca = _prepare_qc(q, c, self.n, self.m)
        if self.dtype != np.float64 and _compute_dtype(qa, ca, self._Q) != self.dtype:
            # float64 right-hand sides on a float32 factorization: computed in float64, as
            # fastkkt.solve(Q, q, A, c) is, with a float64 factorization of the same Q and A
            # (float32 values, so exactly the same matrices), made on first use and kept.
            return self._float64().solve_ex(qa, ca, check_finite=check_finite)
        fb = self.batch_shape
        if qa.shape[:-1] == ca.shape[:-1] == fb and qa.dtype == ca.dtype == self.dtype:
            batch = fb  # nothing to broadcast (and, if Q and A are full, nothing to convert)
            qa, ca = _native(qa, self.dtype), _native(ca, self.dtype)
            if self._Q.shape[:-2] == self._A.shape[:-2] == fb:
                views = (self._records, self._info, self._Q, qa, self._A, ca)
            else:
                views = (self._records, self._info, _broadcast(self._Q, batch, 2), qa,
                         _broadcast(self._A, batch, 2), ca)  # fmt: skip
        else:
            batch = _batch_shape({"factorization": (self._info, 0), "q": (qa, 1), "c": (ca, 1)})
            views = (
                _broadcast(self._records, batch, 1),
                _broadcast(self._info, batch, 0),
                _broadcast(self._Q, batch, 2),
                _broadcast(_native(qa, self.dtype), batch, 1),
                _broadcast(self._A, batch, 2),
                _broadcast(_native(ca, self.dtype), batch, 1),
            )
        _check_size(batch, self.n, self.m, self.dtype.itemsize)
        z = np.empty(batch + (self.n,), self.dtype)
        lam = np.empty(batch + (self.m,), self.dtype)
        info = np.empty(batch, np.int32)
        core.solve_factored(
            *views,
            z,
            lam,
            info,
            bool(check_finite),
            _call_threads(),
        )
        _raise_nonfinite(info)
        return z, lam, info

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
        _raise_kkt(info)
        return (z, lam) if return_multipliers else z


def factorize(Q: ArrayLike, A: ArrayLike, *, check_finite: bool = True) -> KKTFactorization:
    """Factor the KKT matrices of a batch of (Q, A) once, to solve for many (q, c).

    Q (..., n, n) and A (..., m, n) broadcast against each other. Does not raise for failed
    elements: they are reported in ``F.info`` and raise `KKTError` from ``F.solve``.
    """
    return KKTFactorization(Q, A, check_finite=check_finite)
