"""The input rules of every entry point — NumPy (fastkkt.solve, factorize, solve_qp), torch
(fastkkt.torch) and dask (fastkkt.dask): the dtype a solve computes in, the shapes and their
broadcasting, the size limits and the finiteness rules, each with its error message. Shapes are
checked as plain tuples, so a torch tensor, a fake tensor under torch.compile or a dask array is
checked by the same code as an ndarray.

The dtype rule. The contract: "float64 and float32 are computed in their own precision (mixed
inputs promote as NumPy does; integers become float64)". So the compute dtype is NumPy's
promotion of the inputs' dtypes, ``r = numpy.result_type(*dtypes)``, rounded up to a precision
the core has:

    r a float of at most 32 bits (float16, float32)  ->  float32
    anything else (float64, integers, bool)          ->  float64

Hence float32 with int8, uint8, int16, uint16 or bool stays float32 (NumPy: float32), float32
with int32 or int64 is float64 (NumPy: float64), integers alone are float64. Python lists are
what ``numpy.asarray`` makes of them (float64 for floats, int64 for ints), never torch's
default dtype. torch's bfloat16 (no NumPy equivalent) promotes as float16 does.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "MAX_BATCH_DIMS",
    "as_array",
    "batch_shape",
    "broadcast",
    "check_matrix",
    "check_pairs",
    "check_qp_options",
    "check_size",
    "check_vector",
    "compute_dtype",
    "compute_itemsize",
    "kkt_shapes",
    "matrix_sizes",
    "native",
    "qp_shapes",
    "qp_value_error",
    "real_dtype_error",
]

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_FLOATS = (_F64, _F32)
Shape = Sequence[int]
# The most batch dimensions the core takes (kMaxBatchDims in cpp/include/fastkkt/batch.hpp).
MAX_BATCH_DIMS = 32

# the smallest float that holds every value of an integer of this many bytes (NumPy's rule)
_INT_TO_FLOAT = {1: 2, 2: 4}


def compute_itemsize(specs: Iterable[tuple[str, int]]) -> int:
    """4 (float32) or 8 (float64) for inputs described by (kind, itemsize): kind "f" float,
    "i" / "u" integer, "b" bool, as NumPy promotes them (see the module docstring).

    Plain Python on purpose: fastkkt.torch applies it to torch dtypes, also while
    torch.compile traces, and `compute_dtype` to NumPy dtypes."""
    size, floats = 0, False
    for kind, itemsize in specs:
        if kind == "f":
            floats, size = True, max(size, itemsize)
        elif kind != "b":
            size = max(size, _INT_TO_FLOAT.get(itemsize, 8))
    return 4 if floats and size <= 4 else 8


def compute_dtype(dtypes: Iterable[Any]) -> np.dtype:
    """float32 or float64 for inputs of NumPy `dtypes`: NumPy's promotion, rounded up to one
    of the two precisions the core computes in (see the module docstring)."""
    dts = [np.dtype(d) for d in dtypes]
    if dts and all(d is dts[0] for d in dts) and dts[0] in _FLOATS:
        return dts[0]  # one float dtype: nothing to promote
    return _F32 if compute_itemsize((d.kind, d.itemsize) for d in dts) == 4 else _F64


def real_dtype_error(name: str, dtype: Any) -> TypeError | None:
    """The TypeError for an input `name` whose NumPy `dtype` fastkkt cannot compute with
    (complex, object, strings, long double), else None."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        return TypeError(
            f"{name} has dtype {dtype}; fastkkt solves real problems in float32 or float64"
        )
    if dtype.kind == "f" and dtype.itemsize > 8:
        return TypeError(f"{name} has dtype {dtype}; convert it to float64")
    return None


# --------------------------------------------------------------------------------------------
# arrays


def as_array(x: Any, name: str) -> np.ndarray:
    """`x` as an ndarray (no copy when it is one), TypeError for dtypes fastkkt cannot compute
    with, ValueError for what NumPy cannot convert (ragged nested lists)."""
    if type(x) is np.ndarray:
        a = x
    else:
        try:
            a = np.asarray(x)
        except Exception as exc:  # e.g. ragged nested lists
            raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if a.dtype not in _FLOATS:
        error = real_dtype_error(name, a.dtype)
        if error is not None:
            raise error
    return a


def native(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`a` as `dtype` in native byte order at an aligned address; copies only when needed."""
    if a.dtype is not dtype:
        a = np.asarray(a, dtype=dtype)
    if not a.flags.aligned:
        a = a.copy()
    return a


def broadcast(a: np.ndarray, batch: tuple[int, ...], k: int) -> np.ndarray:
    """`a` (batch dimensions and `k` core dimensions) as a view over `batch` (stride 0 along
    the broadcast dimensions, nothing copied); `a` itself when it has that batch already."""
    if a.shape[: a.ndim - k] == batch:
        return a
    return np.broadcast_to(a, batch + a.shape[a.ndim - k :])


# --------------------------------------------------------------------------------------------
# shapes: plain tuples, so that NumPy arrays, torch tensors (also fake ones, while
# torch.compile traces) and dask arrays are checked by the same rules and messages


def _shape_str(shape: Sequence[int]) -> str:
    return str(tuple(shape))


def check_matrix(shape: Shape, name: str, what: str) -> None:
    """ValueError unless `shape` has the two core dimensions of a matrix."""
    if len(shape) < 2:
        raise ValueError(f"{name} must have shape {what}, got shape {_shape_str(shape)}")


def check_vector(shape: Shape, name: str, what: str, size: int, size_name: str) -> None:
    """ValueError unless `shape` ends in `size` (named `size_name`, e.g. "n")."""
    if len(shape) < 1:
        raise ValueError(f"{name} must have shape {what}, got a scalar")
    if shape[-1] != size:
        raise ValueError(
            f"{name} must have shape {what} with {size_name} = {size}, got shape "
            f"{_shape_str(shape)}"
        )


def matrix_sizes(sQ: Shape, sM: Shape, name: str = "A", rows: str = "m") -> tuple[int, int]:
    """(n, rows of M) for Q (..., n, n) and a constraint matrix M (..., rows, n)."""
    check_matrix(sQ, "Q", "(..., n, n)")
    n = sQ[-1]
    if sQ[-2] != n:
        raise ValueError(f"Q must be square with shape (..., n, n), got shape {_shape_str(sQ)}")
    check_matrix(sM, name, f"(..., {rows}, n)")
    if sM[-1] != n:
        raise ValueError(
            f"{name} must have shape (..., {rows}, n) with n = {n} (from Q {_shape_str(sQ)}), "
            f"got shape {_shape_str(sM)}"
        )
    return n, sM[-2]


def batch_shape(named: dict[str, tuple[Shape, int]]) -> tuple[int, ...]:
    """The broadcast of the batch dimensions (all but the last `k`) of the named shapes."""
    batches = {name: tuple(s[: len(s) - k]) for name, (s, k) in named.items()}
    deepest = max((len(b) for b in batches.values()), default=0)
    if deepest > MAX_BATCH_DIMS:  # (np.broadcast_shapes itself stops at 32 with RuntimeError)
        desc = ", ".join(f"{name} {_shape_str(s)}" for name, (s, _) in named.items())
        raise ValueError(
            f"at most {MAX_BATCH_DIMS} batch dimensions are supported, got {deepest} "
            f"(shapes: {desc})"
        )
    first = next(iter(batches.values()), ())
    if all(b == first for b in batches.values()):
        return first
    try:
        return tuple(np.broadcast_shapes(*batches.values()))
    except ValueError:
        desc = ", ".join(f"{name} {b}" for name, b in batches.items())
        raise ValueError(f"batch dimensions do not broadcast: {desc}") from None


def kkt_shapes(sQ: Shape, sq: Shape, sA: Shape, sc: Shape) -> tuple[tuple[int, ...], int, int]:
    """(batch, n, m) of a solve with Q (..., n, n), q (..., n), A (..., m, n), c (..., m), or
    ValueError naming the argument and the shapes."""
    if (  # the common case, checked cheaply: one batch shape, consistent n and m
        len(sQ) >= 2
        and len(sA) == len(sQ)
        and len(sq) == len(sc) == len(sQ) - 1
        and len(sQ) <= MAX_BATCH_DIMS + 2
        and sQ[-1] == sQ[-2] == sA[-1] == sq[-1]
        and sc[-1] == sA[-2]
        and sQ[:-2] == sA[:-2] == sq[:-1] == sc[:-1]
    ):
        return tuple(sQ[:-2]), sQ[-1], sA[-2]
    n, m = matrix_sizes(sQ, sA)
    check_vector(sq, "q", "(..., n)", n, "n")
    check_vector(sc, "c", "(..., m)", m, "m")
    batch = batch_shape({"Q": (sQ, 2), "q": (sq, 1), "A": (sA, 2), "c": (sc, 1)})
    return batch, n, m


#: Arguments of solve_qp after q, with their core dimensions.
QP_OPERANDS = (("A", 2), ("c", 1), ("G", 2), ("h", 1), ("lb", 1), ("ub", 1))


def check_pairs(A: Any, c: Any, G: Any, h: Any) -> None:
    """ValueError for A without c, c without A, G without h or h without G."""
    for a, b, na, nb in ((A, c, "A", "c"), (G, h, "G", "h")):
        if (a is None) != (b is None):
            given, missing = (na, nb) if b is None else (nb, na)
            raise ValueError(f"{given} was given without {missing}: pass both or neither")


def qp_shapes(
    sQ: Shape, sq: Shape, shapes: Mapping[str, Shape | None]
) -> tuple[tuple[int, ...], int, int, int]:
    """(batch, n, m, p) of solve_qp's operands: the shapes of Q and q, and `shapes` of A, c, G,
    h, lb, ub (None when absent, lb and ub () when scalars); or ValueError naming the argument
    and the shapes."""
    check_pairs(shapes["A"], shapes["c"], shapes["G"], shapes["h"])
    check_matrix(sQ, "Q", "(..., n, n)")
    n = sQ[-1]
    if sQ[-2] != n:
        raise ValueError(f"Q must be square with shape (..., n, n), got shape {_shape_str(sQ)}")
    check_vector(sq, "q", "(..., n)", n, "n")
    named: dict[str, tuple[Shape, int]] = {"Q": (sQ, 2), "q": (sq, 1)}
    sizes = {"A": 0, "G": 0}
    for mat, vec, rows in (("A", "c", "m"), ("G", "h", "p")):
        sM, sv = shapes[mat], shapes[vec]
        if sM is None or sv is None:
            continue
        _, k = matrix_sizes(sQ, sM, mat, rows)
        check_vector(sv, vec, f"(..., {rows})", k, rows)
        sizes[mat] = k
        named[mat], named[vec] = (sM, 2), (sv, 1)
    for name in ("lb", "ub"):
        s = shapes[name]
        if s is not None and len(s) > 0:
            check_vector(s, name, "(..., n) or a scalar", n, "n")
            named[name] = (s, 1)
    return batch_shape(named), n, sizes["A"], sizes["G"]


def check_qp_options(tol: Any, max_iter: Any) -> None:
    """ValueError / TypeError for a `tol` outside (0, 1) or a `max_iter` that is no count."""
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < float(tol) < 1:
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral):
        raise TypeError(f"max_iter must be an int, got {type(max_iter).__name__}")
    if not 0 <= int(max_iter) < 2**31:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")


# --------------------------------------------------------------------------------------------
# values and sizes


#: The operands of solve_qp in the order of the core's finiteness check (its result indexes it).
QP_NAMES = ("Q", "q", "A", "c", "G", "h", "lb", "ub")


def qp_value_error(name: str) -> ValueError:
    """The error for an operand of solve_qp that breaks the finiteness rules (with
    check_finite): NaN anywhere, ±Inf in Q, q, A, c, G, −Inf in h and ub, +Inf in lb (+inf in h
    and ub, −inf in lb mean no constraint). The check itself runs in the core's boundary
    (cpp/bindings_qp.cpp, first_nonfinite): one pass over the data, no temporary arrays."""
    what = {
        "h": "NaN or -inf (+inf means no constraint)",
        "ub": "NaN or -inf (+inf means no constraint)",
        "lb": "NaN or +inf (-inf means no bound)",
    }.get(name, "NaN or Inf")
    return ValueError(f"{name} contains {what}; pass check_finite=False to skip this check")


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # not POSIX: rely on the allocator
        return 1 << 62


_PHYSICAL_MEMORY = _physical_memory()
# Refuse requests whose per-thread scratch alone could not be allocated: (n+m)² scalars.
_MAX_KKT_ENTRIES = 1 << 40


def check_size(
    batch: tuple[int, ...], n: int, m: int, itemsize: int = 8, records: bool = False
) -> None:
    """MemoryError before allocating anything when the results (z, lam and info; with
    `records` also the kept factorizations) or one KKT matrix (n + m rows) could not fit in
    this machine's memory, even where the OS would overcommit (and the OOM killer would end
    the process)."""
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
