"""Input rules shared by the NumPy API and fastkkt.torch: the dtype a solve computes in.

The contract: "float64 and float32 are computed in their own precision (mixed inputs promote
as NumPy does; integers become float64)". So the compute dtype is NumPy's promotion of the
inputs' dtypes, ``r = numpy.result_type(*dtypes)``, rounded up to a precision the core has:

    r a float of at most 32 bits (float16, float32)  ->  float32
    anything else (float64, integers, bool)          ->  float64

Hence float32 with int8, uint8, int16, uint16 or bool stays float32 (NumPy: float32), float32
with int32 or int64 is float64 (NumPy: float64), integers alone are float64. Python lists are
what ``numpy.asarray`` makes of them (float64 for floats, int64 for ints), never torch's
default dtype. torch's bfloat16 (no NumPy equivalent) promotes as float16 does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["compute_dtype", "compute_itemsize", "real_dtype_error"]

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)

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
    specs = ((d.kind, d.itemsize) for d in map(np.dtype, dtypes))
    return _F32 if compute_itemsize(specs) == 4 else _F64


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
