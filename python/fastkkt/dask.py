"""fastkkt on dask: the NumPy API chunk by chunk, lazily, on any dask scheduler.

``fastkkt.dask.solve`` / ``solve_ex`` / ``solve_qp`` / ``solve_qp_ex`` take the arguments of the
NumPy functions, any of them a dask array, and return dask arrays. For a broadcast batch of shape
(b₀, …, b_{B−1}) chunked as C₀ × … × C_{B−1}, the graph holds one task per output block

    out[I] = fastkkt.solve_ex(Q[I_Q], q[I_q], A[I_A], c[I_c])          (or solve_qp_ex)

where an operand's block index I_X is the output block index I along the batch dimensions in
which X has full size, 0 along those in which X has size 1, and absent along those X lacks. So a
broadcast operand (one Q for the whole batch, say) is a single key that every task names: the
scheduler ships it to each worker once, and NumPy broadcasts it inside the chunk's call, never
expanded. The batch chunks are the common refinement of the dask operands' chunks (a NumPy
operand is cut to them); n, m and p are never chunked (a chunked core dimension is rechunked to
one chunk). Every element is solved independently and bitwise identically whatever the batch
around it and the thread count, so the computed arrays are bitwise what the NumPy function gives
on the whole batch, on any scheduler.

Errors: everything the metadata decides (ranks, shapes, broadcasting, dtypes, missing partner
keywords) is raised at call time, with the NumPy API's messages. ``solve`` and ``solve_qp``
raise ``KKTError`` / ``QPError`` when computed: a final task gathers the status of every
block (4 bytes per problem) and raises the error the NumPy function raises for the whole batch
(``.info`` the whole status array, ``.indices`` global). So their blocks are released only once
the whole batch is solved; ``solve_ex`` / ``solve_qp_ex`` return the status as data and stream
(use them to write results larger than memory, e.g. with ``dask.array.to_zarr``).

Threads: each task runs the NumPy function with fastkkt's own thread count. Keep
(dask workers per machine) × (threads per worker) × (fastkkt threads) ≤ cores, e.g. with
``FASTKKT_NUM_THREADS`` in the workers' environment (see README.md, "Beyond one machine").
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask.array.core import common_blockdim
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

import fastkkt
from fastkkt import _validate as v
from fastkkt._kkt import raise_failed

__all__ = ["solve", "solve_ex", "solve_qp", "solve_qp_ex"]

_CORE_NDIM = {"Q": 2, "q": 1, "A": 2, "c": 1, "G": 2, "h": 1}


# --------------------------------------------------------------------------------------------
# operands: conversion and eager validation from metadata


class _Operand:
    """One argument: its name, array (dask or NumPy), number of core dimensions and the
    (zero-memory) stand-in the NumPy API validates at call time."""

    def __init__(self, name: str, x: Any, core: int) -> None:
        if isinstance(x, da.Array):
            if any(math.isnan(s) for s in x.shape):
                raise ValueError(
                    f"{name} has unknown chunk sizes (shape {x.shape}); call "
                    f"{name}.compute_chunk_sizes() before passing it to fastkkt.dask"
                )
            dtype = x.dtype
        else:
            try:
                x = np.asarray(x)
            except Exception as exc:  # e.g. ragged nested lists
                raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
            dtype = x.dtype
        self.name, self.x, self.core = name, x, min(core, x.ndim)
        self.shape: tuple[int, ...] = tuple(int(s) for s in x.shape)
        self.batch = self.shape[: len(self.shape) - self.core]
        # full shape, no memory: the NumPy API's own checks see the true shapes and dtypes
        self.stub = np.broadcast_to(np.zeros((), dtype if dtype.kind != "O" else float), self.shape)
        if dtype.kind not in "biuf":
            self.stub = np.empty(0, dtype)  # let the NumPy API word the TypeError

    def empty(self) -> np.ndarray:
        """A stand-in with a leading batch dimension 0 added and every batch dimension 0 (a
        scalar stays one): the NumPy function validates it and returns an empty batch at
        once, whose results give the dtypes and core shapes."""
        if self.stub.ndim != len(self.shape) or not self.shape:
            return self.stub
        core = self.shape[len(self.batch) :]
        return np.empty((0,) * (1 + len(self.batch)) + core, self.stub.dtype)


def _batch_chunks(ops: Sequence[_Operand], batch: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Chunks of the output batch: per dimension the common refinement of the chunks of the
    dask operands that have it at full size; one chunk where only NumPy operands have it."""
    B = len(batch)
    out: list[tuple[int, ...]] = []
    for d in range(B):
        seen = []
        for op in ops:
            j = d - (B - len(op.batch))
            if j >= 0 and op.shape[j] == batch[d] and isinstance(op.x, da.Array):
                seen.append(op.x.chunks[j])
        if not seen or batch[d] <= 1:
            out.append((batch[d],))
        else:
            out.append(tuple(int(s) for s in common_blockdim(seen)))
    return tuple(out)


def _blocked(op: _Operand, chunks: tuple[tuple[int, ...], ...]) -> da.Array:
    """The operand as a dask array cut to the output batch chunks along its full-size batch
    dimensions, one chunk along its size-1 batch dimensions and its core dimensions."""
    B, b = len(chunks), len(op.batch)
    target = tuple(
        chunks[B - b + j] if op.shape[j] != 1 else (op.shape[j],) for j in range(b)
    ) + tuple((s,) for s in op.shape[b:])
    if isinstance(op.x, da.Array):
        x = op.x
        return x if x.chunks == target else x.rechunk(target)
    return da.from_array(op.x, chunks=target)


def _block_key(x: da.Array, op: _Operand, index: tuple[int, ...]) -> tuple:
    B, b = len(index), len(op.batch)
    ib = tuple(index[B - b + j] if op.shape[j] != 1 else 0 for j in range(b))
    return (x.name, *ib, *([0] * op.core))


# --------------------------------------------------------------------------------------------
# tasks


_ELEMENT = re.compile(r"\(batch element \((\d+(?:, \d+)*),?\)\)")


def _run_block(
    *blocks: np.ndarray,
    func: str,
    names: tuple[str, ...],
    positional: int,
    options: dict[str, Any],
    fields: tuple[str, ...],
    offset: tuple[int, ...],
) -> tuple:
    """One task: the NumPy function on one block of the batch; the fields asked for."""
    f = getattr(fastkkt, func)
    args = blocks[:positional]
    kwargs = dict(zip(names[positional:], blocks[positional:]), **options)
    try:
        result = f(*args, **kwargs)
    except ValueError as exc:  # non-finite input: name the element in the whole batch
        message = _ELEMENT.sub(
            lambda m: (
                "(batch element "
                + str(tuple(int(i) + o for i, o in zip(m.group(1).split(", "), offset)))
                + ")"
            ),
            str(exc),
        )
        raise ValueError(message) from None
    if not hasattr(result, "_fields"):
        result = dict(zip(("z", "lam", "info"), result))
    else:
        result = result._asdict()
    return tuple(result[k] for k in fields)


def _gather_status(
    raise_for: Callable[[np.ndarray], None],
    batch: tuple[int, ...],
    chunks: tuple[tuple[int, ...], ...],
    *infos: np.ndarray,
) -> None:
    """The status of the whole batch from its blocks (C order); raises what the NumPy
    function raises for it."""
    info = np.empty(batch, np.int32)
    starts = [np.concatenate(([0], np.cumsum(c))) for c in chunks]
    for index, block in zip(itertools.product(*(range(len(c)) for c in chunks)), infos):
        info[tuple(slice(s[i], s[i + 1]) for s, i in zip(starts, index))] = block
    raise_for(info)


def _after(value: Any, _check: None) -> Any:
    return value


def _raise_kkt(info: np.ndarray) -> None:
    raise_failed(info)


def _raise_qp(info: np.ndarray) -> None:
    if info.any():
        raise fastkkt.QPError(info)


# --------------------------------------------------------------------------------------------
# graph


def _graph(
    func: str,
    ops: list[_Operand],
    positional: int,
    options: dict[str, Any],
    batch: tuple[int, ...],
    meta: dict[str, tuple[np.dtype, tuple[int, ...]]],
    raise_for: Callable[[np.ndarray], None] | None,
) -> dict[str, da.Array]:
    """Dask arrays of the fields in `meta` (their dtypes and core shapes); with `raise_for`
    every field waits for the whole batch's status, which it checks."""
    chunks = _batch_chunks(ops, batch)
    xs = [_blocked(op, chunks) for op in ops]
    names = tuple(op.name for op in ops)
    fields = tuple(meta)
    if raise_for is not None and "info" not in fields:
        fields = (*fields, "info")
    token = tokenize(func, names, options, fields, *xs)
    solve_name = f"fastkkt-{func.replace('_', '-')}-{token}"
    starts = [np.concatenate(([0], np.cumsum(c))).astype(int) for c in chunks]
    indices = list(itertools.product(*(range(len(c)) for c in chunks)))
    layer: dict = {}
    for index in indices:
        run = functools.partial(
            _run_block,
            func=func,
            names=names,
            positional=positional,
            options=options,
            fields=fields,
            offset=tuple(int(s[i]) for s, i in zip(starts, index)),
        )
        key = (solve_name, *index)
        layer[key] = (run, *(_block_key(x, op, index) for x, op in zip(xs, ops)))
    layers: dict[str, Any] = {}
    deps: dict[str, set] = {}
    for x in xs:
        layers.update(x.dask.layers)
        deps.update(x.dask.dependencies)
    layers[solve_name] = layer
    deps[solve_name] = {name for x in xs for name in x.__dask_layers__()}
    after: tuple = ()
    if raise_for is not None:
        check_name = f"fastkkt-check-{token}"
        at = fields.index("info")
        infos = [(operator.getitem, (solve_name, *index), at) for index in indices]
        check = functools.partial(_gather_status, raise_for, batch, chunks)
        layers[check_name] = {(check_name,): (check, *infos)}
        deps[check_name] = {solve_name}
        after = ((check_name,),)
    out = {}
    for k, field in enumerate(fields):
        if field not in meta:
            continue
        dtype, core = meta[field]
        name = f"fastkkt-{field}-{token}"
        get = operator.getitem if not after else _after
        field_layer: dict[Any, Any] = {}
        for index in indices:
            item = (operator.getitem, (solve_name, *index), k)
            key = (name, *index, *([0] * len(core)))
            field_layer[key] = item if not after else (get, item, *after)
        graph = HighLevelGraph(
            {**layers, name: field_layer},
            {**deps, name: {solve_name} | ({after[0][0]} if after else set())},
        )
        out[field] = da.Array(
            graph,
            name,
            chunks + tuple((s,) for s in core),
            meta=np.empty((0,) * (len(batch) + len(core)), dtype),
        )
    return out


# --------------------------------------------------------------------------------------------
# the equality-constrained API


def _meta(results: dict[str, np.ndarray], fields: Sequence[str], batch: tuple[int, ...]):
    """(dtype, core shape) of each field from the results on an empty batch (one more batch
    dimension than `batch`)."""
    return {k: (results[k].dtype, results[k].shape[1 + len(batch) :]) for k in fields}


def _kkt_operands(Q: Any, q: Any, A: Any, c: Any) -> tuple[list[_Operand], tuple[int, ...]]:
    ops = [_Operand(k, x, _CORE_NDIM[k]) for k, x in zip("QqAc", (Q, q, A, c))]
    Qs, qs, As, cs = (op.stub for op in ops)
    # the NumPy API's own checks (ranks, n and m, dtypes), on zero-memory stand-ins
    for op in ops:
        v.as_array(op.stub, op.name)
    batch, _, _ = v.kkt_shapes(Qs.shape, qs.shape, As.shape, cs.shape)
    return ops, batch


def _kkt(Q: Any, q: Any, A: Any, c: Any, check_finite: bool, raising: bool, fields: tuple):
    ops, batch = _kkt_operands(Q, q, A, c)
    z, lam, info = fastkkt.solve_ex(*(op.empty() for op in ops), check_finite=False)
    meta = _meta({"z": z, "lam": lam, "info": info}, fields, batch)
    options = {"check_finite": bool(check_finite)}
    raise_for = _raise_kkt if raising else None
    return _graph("solve_ex", ops, 4, options, batch, meta, raise_for)


def solve_ex(Q: Any, q: Any, A: Any, c: Any, *, check_finite: bool = True) -> tuple:
    """`fastkkt.solve_ex` on dask arrays: (z, lam, info), dask arrays chunked like the batch.

    Q (..., n, n), q (..., n), A (..., m, n), c (..., m): dask or NumPy arrays whose batch
    dimensions broadcast. Shape and dtype errors raise ValueError / TypeError now; NaN or Inf
    (with `check_finite`) raises ValueError when computed. ``info`` (int32, the batch shape):
    0 solved, 1 singular KKT matrix, 2 not a strict minimum; failed elements hold NaN.
    """
    out = _kkt(Q, q, A, c, check_finite, False, ("z", "lam", "info"))
    return out["z"], out["lam"], out["info"]


def solve(
    Q: Any,
    q: Any,
    A: Any,
    c: Any,
    *,
    return_multipliers: bool = False,
    check_finite: bool = True,
) -> Any:
    """`fastkkt.solve` on dask arrays: z (..., n), or (z, lam) with `return_multipliers`.

    Computing the result raises `fastkkt.KKTError` exactly as `fastkkt.solve` does on the whole
    batch (``.indices`` into the whole broadcast batch). To do so every block waits for the
    status of the whole batch; use `solve_ex` to stream blocks out as they are solved.
    """
    fields = ("z", "lam") if return_multipliers else ("z",)
    out = _kkt(Q, q, A, c, check_finite, True, fields)
    return (out["z"], out["lam"]) if return_multipliers else out["z"]


# --------------------------------------------------------------------------------------------
# inequality-constrained QPs


def _qp_operands(
    Q: Any, q: Any, arrays: dict[str, Any]
) -> tuple[list[_Operand], dict[str, Any], tuple[int, ...]]:
    """The operands (scalar bounds apart: they pass through as they are, so that a Python
    scalar stays out of dtype promotion as in NumPy) and the batch shape, after the checks of
    fastkkt.solve_qp_ex in its order and words, on zero-memory stand-ins."""
    v.check_pairs(*(arrays.get(k) for k in ("A", "c", "G", "h")))
    ops = {"Q": _Operand("Q", Q, 2), "q": _Operand("q", q, 1)}
    scalars: dict[str, Any] = {}
    for k in ("A", "c", "G", "h", "lb", "ub"):
        x = arrays.get(k)
        if x is None:
            continue
        if k in ("lb", "ub") and not isinstance(x, da.Array) and np.ndim(x) == 0:
            scalars[k] = x
        else:
            ops[k] = _Operand(k, x, _CORE_NDIM.get(k, 1))
    stub = {k: v.as_array(op.stub, k) for k, op in ops.items()}
    shapes = {k: (stub[k].shape if k in stub else None) for k in ("A", "c", "G", "h", "lb", "ub")}
    batch, _, _, _ = v.qp_shapes(stub["Q"].shape, stub["q"].shape, shapes)
    return list(ops.values()), scalars, batch


def _qp(Q: Any, q: Any, arrays: dict[str, Any], options: dict[str, Any], raising: bool, fields):
    ops, scalars, batch = _qp_operands(Q, q, arrays)
    options = {**scalars, **options}
    # the NumPy function on an empty batch: the rest of its validation, dtypes and core shapes
    kwargs: dict[str, Any] = {op.name: op.empty() for op in ops[2:]}
    empty = fastkkt.solve_qp_ex(ops[0].empty(), ops[1].empty(), **kwargs, **options)
    meta = _meta(empty._asdict(), fields, batch)
    raise_for = _raise_qp if raising else None
    return _graph("solve_qp_ex", ops, 2, options, batch, meta, raise_for)


def _qp_options(tol: Any, max_iter: Any, check_finite: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"check_finite": bool(check_finite)}
    if tol is not None:
        options["tol"] = tol
    if max_iter is not None:
        options["max_iter"] = max_iter
    return options


_QP_FIELDS = ("z", "lam", "mu", "nu", "info", "iterations")


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
    tol: Any = None,
    max_iter: Any = None,
    check_finite: bool = True,
) -> Any:
    """`fastkkt.solve_qp_ex` on dask arrays: a `fastkkt.QPSolution` of dask arrays
    (z, lam, mu, nu, info, iterations) chunked like the broadcast batch.

    Same arguments as the NumPy function (`tol` and `max_iter`: its defaults when None).
    """
    arrays = {"A": A, "c": c, "G": G, "h": h, "lb": lb, "ub": ub}
    out = _qp(Q, q, arrays, _qp_options(tol, max_iter, check_finite), False, _QP_FIELDS)
    return fastkkt.QPSolution(**out)


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
    tol: Any = None,
    max_iter: Any = None,
    check_finite: bool = True,
    return_multipliers: bool = False,
) -> Any:
    """`fastkkt.solve_qp` on dask arrays: z, or (z, lam, mu, nu) with `return_multipliers`.

    Computing the result raises `fastkkt.QPError` exactly as `fastkkt.solve_qp` does on the
    whole batch (``.indices`` global, ``.info`` the whole status array); every block waits for
    the whole batch's status (use `solve_qp_ex` to stream).
    """
    arrays = {"A": A, "c": c, "G": G, "h": h, "lb": lb, "ub": ub}
    fields = ("z", "lam", "mu", "nu") if return_multipliers else ("z",)
    out = _qp(Q, q, arrays, _qp_options(tol, max_iter, check_finite), True, fields)
    return tuple(out[k] for k in fields) if return_multipliers else out["z"]
