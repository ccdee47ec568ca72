"""The equality-QP engine on arrays, shared by the NumPy API (fastkkt._api) and fastkkt.torch:
validation (fastkkt._validate), conversion and the calls of the compiled core.

Each batch element is the KKT system

    [ sym(Q)  Aᵀ ] [ z ]   [ −q ]
    [ A       0  ] [ λ ] = [  c ],      sym(Q) = (Q + Qᵀ)/2,

solved by an LDLᵀ factorization of K that can be kept (one record of core.record_size(N)
numbers per element, N = n + m, with its status in `finfo`) for later solves with the same K — the
adjoint solve of fastkkt.torch's backward pass, and ``KKTFactorization.solve``. Broadcast
operands reach the core as stride-0 views, never expanded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastkkt import _validate as v
from fastkkt._dispatch import core
from fastkkt._errors import KKTError
from fastkkt._status import FIRST_INPUT_CODE, INVALID_RECORD, NONFINITE
from fastkkt._threads import call_threads

__all__ = ["factor", "raise_failed", "raise_refused", "solve", "solve_factored"]

_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


def _ready(Q: Any, q: Any, A: Any, c: Any) -> tuple[tuple[int, ...], int, int] | None:
    """(batch, n, m) when Q, q, A, c are aligned ndarrays of one float dtype (float64 or
    float32) and one batch shape with consistent sizes — the common case, which needs no
    conversion or broadcasting — else None (the general path then validates and reports)."""
    if not (type(Q) is type(q) is type(A) is type(c) is np.ndarray):
        return None
    dt = Q.dtype
    if dt not in _FLOATS or not (q.dtype == A.dtype == c.dtype == dt):
        return None
    if not (Q.flags.aligned and q.flags.aligned and A.flags.aligned and c.flags.aligned):
        return None
    shape = Q.shape
    if len(shape) < 2 or len(shape) > v.MAX_BATCH_DIMS + 2 or A.ndim != len(shape):
        return None
    batch, n, m = shape[:-2], shape[-1], A.shape[-2]
    if shape[-2] != n or A.shape != (*batch, m, n) or q.shape != (*batch, n):
        return None
    if c.shape != (*batch, m):
        return None
    return batch, n, m


def raise_refused(info: np.ndarray) -> None:
    """ValueError for an element the core refused (an input-check code in `info`): NaN or Inf
    in an input, or a record that no factorization of fastkkt wrote."""
    if info.size == 0 or info.max() < FIRST_INPUT_CODE:  # one reduction when all is well
        return
    if np.any(info == INVALID_RECORD):
        raise ValueError(
            "the factorization's arrays were modified: they are not a factorization fastkkt made"
        )
    code = int(info[info >= FIRST_INPUT_CODE].min())
    where = tuple(int(i) for i in np.argwhere(info == code)[0])
    at = f" (batch element {where})" if where else ""
    raise ValueError(
        f"{NONFINITE[code]} contains NaN or Inf{at}; pass check_finite=False to skip this check"
    )


def raise_failed(info: np.ndarray) -> None:
    """KKTError naming the failing elements, if any element of `info` is nonzero."""
    if info.any():
        raise KKTError(info)


def solve(
    Q: Any, q: Any, A: Any, c: Any, check_finite: bool, keep: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None, int]:
    """(z, lam, info, kept, failed): solve_ex and the number of failed elements; with `keep`
    also the factorization of (Q, A) that produced it, ``kept = (records, finfo)`` over the
    broadcast batch shape of Q and A: written by the same call when every element has its own
    Q and A, else factored once per distinct (Q, A) and then solved — the same bits either way.
    ValueError for refused input."""
    fast = _ready(Q, q, A, c)
    if fast is not None:  # nothing to convert or broadcast: skip the general path's overhead
        batch, n, m = fast
        dtype = Q.dtype
    else:
        Q, q, A, c = (v.as_array(x, k) for x, k in ((Q, "Q"), (q, "q"), (A, "A"), (c, "c")))
        batch, n, m = v.kkt_shapes(Q.shape, q.shape, A.shape, c.shape)
        dtype = v.compute_dtype((Q.dtype, q.dtype, A.dtype, c.dtype))
        Q, q, A, c = (v.native(x, dtype) for x in (Q, q, A, c))
        if keep and v.batch_shape({"Q": (Q.shape, 2), "A": (A.shape, 2)}) != batch:
            # (Q, A) shared along some batch dimensions: factor each distinct one once
            v.check_size(batch, n, m, dtype.itemsize)
            kept = factor(Q, A, check_finite)
            z, lam, info = solve_factored(*kept, Q, A, q, c, check_finite)
            return z, lam, info, kept, int(np.count_nonzero(info))
        Q, q = v.broadcast(Q, batch, 2), v.broadcast(q, batch, 1)
        A, c = v.broadcast(A, batch, 2), v.broadcast(c, batch, 1)
    # (q and c may be broadcast views far smaller than the results: checked on every path)
    v.check_size(batch, n, m, dtype.itemsize, keep)
    z = np.empty(batch + (n,), dtype)
    lam = np.empty(batch + (m,), dtype)
    info = np.empty(batch, np.int32)
    # every entry of records and finfo is written by the core: no zeroing pass
    records = np.empty(batch + (int(core.record_size(n + m)),), dtype) if keep else None
    finfo = np.empty(batch, np.int32) if keep else None
    failed = core.solve(
        Q, q, A, c, z, lam, info, bool(check_finite), call_threads(), records, finfo
    )
    if failed:
        raise_refused(info)
    if records is None or finfo is None:
        return z, lam, info, None, failed
    return z, lam, info, (records, finfo), failed


def factor(Q: np.ndarray, A: np.ndarray, check_finite: bool) -> tuple[np.ndarray, np.ndarray]:
    """(records, finfo) of Q, A (one float dtype, native, validated shapes) over their
    broadcast batch shape; records of failed elements are zero. ValueError for refused input."""
    n, m = Q.shape[-1], A.shape[-2]
    batch = v.batch_shape({"Q": (Q.shape, 2), "A": (A.shape, 2)})
    v.check_size(batch, n, m, Q.dtype.itemsize, records=True)
    records = np.zeros(batch + (int(core.record_size(n + m)),), Q.dtype)  # unused slots: 0
    finfo = np.empty(batch, np.int32)
    core.factorize(
        v.broadcast(Q, batch, 2), v.broadcast(A, batch, 2), records, finfo,
        bool(check_finite), call_threads(),
    )  # fmt: skip
    raise_refused(finfo)
    return records, finfo


def solve_factored(
    records: np.ndarray,
    finfo: np.ndarray,
    Q: np.ndarray,
    A: np.ndarray,
    q: Any,
    c: Any,
    check_finite: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, lam, info) = K⁻¹[−q; c] with the kept factorization (`records`, `finfo`) of Q and A
    (its dtype; Q and A are used for iterative refinement); q (..., n) and c (..., m) broadcast
    against the factorization's batch shape. Elements whose factorization failed get NaN and
    their `finfo` code. ValueError for refused input."""
    dtype, fb = records.dtype, finfo.shape
    n, m = Q.shape[-1], A.shape[-2]
    q, c = v.as_array(q, "q"), v.as_array(c, "c")
    v.check_vector(q.shape, "q", "(..., n)", n, "n")
    v.check_vector(c.shape, "c", "(..., m)", m, "m")
    q, c = v.native(q, dtype), v.native(c, dtype)
    if q.shape[:-1] == c.shape[:-1] == fb:
        batch = fb
    else:
        batch = v.batch_shape({"factorization": (fb, 0), "q": (q.shape, 1), "c": (c.shape, 1)})
    v.check_size(batch, n, m, dtype.itemsize)
    z = np.empty(batch + (n,), dtype)
    lam = np.empty(batch + (m,), dtype)
    info = np.empty(batch, np.int32)
    core.solve_factored(
        v.broadcast(records, batch, 1), v.broadcast(finfo, batch, 0),
        v.broadcast(Q, batch, 2), v.broadcast(q, batch, 1),
        v.broadcast(A, batch, 2), v.broadcast(c, batch, 1),
        z, lam, info, bool(check_finite), call_threads(),
    )  # fmt: skip
    raise_refused(info)
    return z, lam, info
