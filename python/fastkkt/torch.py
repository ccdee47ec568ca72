"""The differentiable PyTorch layer: ``fastkkt.torch.solve`` and ``fastkkt.torch.solve_ex``.

Each batch element solves ``minimize ½zᵀQz + qᵀz subject to Az = c`` through its KKT system
``K [z; λ] = [−q; c]`` with ``K = [[sym(Q), Aᵀ], [A, 0]]``, exactly as the NumPy API does
(same shapes, broadcasting, dtypes and errors). CPU tensors only.

Install PyTorch's CPU build before ``pip install "fastkkt[torch]"``: on Linux the plain
``torch`` requirement resolves to a CUDA build of several GB, which fastkkt does not use::

    pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    pip install "fastkkt[torch]"

Operators (registered with torch.library, each with a fake implementation, so that
``torch.compile(..., fullgraph=True)`` traces them):

- ``fastkkt::kkt_solve``: x = [z; λ] = K⁻¹ [−q; c], optionally keeping the factorization of K;
- ``fastkkt::kkt_solve_factored``: the same solve with a kept factorization — the adjoint
  solve of the backward pass (d = −K⁻¹ g) and the tangent solve of forward mode;
- ``fastkkt::kkt_backward``: the whole first-order backward pass in one core call.

Both solves share one differentiation rule (`_backward`): the backward pass is one more
solve with the same K plus outer products, written with the differentiable solve and torch
operations, so it can be differentiated again (second derivatives, ``create_graph=True``,
``torch.autograd.functional.hessian``); without create_graph the fused ``kkt_backward``
computes the same formulas faster.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, Union, overload

import numpy as np
import torch
from torch.autograd import forward_ad as fwAD

from fastkkt import _kkt
from fastkkt import _validate as v
from fastkkt._dispatch import core
from fastkkt._status import SOLVED
from fastkkt._threads import call_threads
from fastkkt._torch_common import Function as _Function
from fastkkt._torch_common import functorch_active as _functorch_active
from fastkkt._torch_common import np_view as _np
from fastkkt._torch_common import prepare as _prepare_inputs
from fastkkt._torch_common import traced as _traced

__all__ = ["solve", "solve_ex", "solve_qp", "solve_qp_ex"]

if not hasattr(torch.library, "custom_op"):  # added in torch 2.4
    raise ImportError(
        f"fastkkt.torch needs torch >= 2.4 (torch.library.custom_op), got {torch.__version__}"
    )

TensorLike = Union[torch.Tensor, np.ndarray, Sequence[Any], float, int]
_Empty = (0,)


def _record_size(N: Any) -> Any:
    """Numbers per factorization record, N(N−1)/2 + 3N + 4 for N = n + m (also for SymInts)."""
    return core.record_size(N) if isinstance(N, int) else N * (N - 1) // 2 + 3 * N + 4


# --------------------------------------------------------------------------------------------
# the operators


def _kkt_solve_impl(
    Q: torch.Tensor,
    q: torch.Tensor,
    A: torch.Tensor,
    c: torch.Tensor,
    check_finite: bool,
    check_errors: bool,
    keep: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z, lam, info, records, finfo) for inputs of one float dtype.

    ``z, lam, info`` are ``fastkkt.solve_ex(Q, q, A, c)``; with ``check_errors`` a failed
    element raises KKTError as ``fastkkt.solve`` does. With ``keep`` the factorization of
    (Q, A) is returned too (its records and info), for the adjoint solve of the backward pass;
    otherwise those two are empty.
    """
    Qn, qn, An, cn = _np(Q), _np(q), _np(A), _np(c)
    # (_kkt.solve validates the shapes by the rules of fastkkt._validate)
    batch, batch_qa, n, m = _shapes(Q.shape, q.shape, A.shape, c.shape) if keep else ((),) * 4
    if keep and math.prod(batch) > 0:
        z, lam, info, kept_arrays, failed = _kkt.solve(Qn, qn, An, cn, check_finite, keep=True)
        assert kept_arrays is not None
        kept = kept_arrays
    else:
        z, lam, info, _, failed = _kkt.solve(Qn, qn, An, cn, check_finite, keep=False)
        if keep:  # an empty batch: nothing to factor, the backward pass solves nothing
            kept = (
                np.zeros((*batch_qa, _record_size(n + m)), z.dtype),
                np.zeros(batch_qa, np.int32),
            )
        else:
            kept = (np.empty(_Empty, z.dtype), np.empty(_Empty, np.int32))
    if check_errors and failed:
        _kkt.raise_failed(info)
    return tuple(torch.from_numpy(x) for x in (z, lam, info, *kept))  # type: ignore[return-value]


_kkt_solve = torch.library.custom_op("fastkkt::kkt_solve", mutates_args=(), device_types="cpu")(
    _kkt_solve_impl
)


@_kkt_solve.register_fake
def _kkt_solve_fake(Q, q, A, c, check_finite, check_errors, keep):  # type: ignore[no-untyped-def]
    batch, batch_qa, n, m = _shapes(Q.shape, q.shape, A.shape, c.shape)
    z, lam = Q.new_empty((*batch, n)), Q.new_empty((*batch, m))
    info = Q.new_empty(batch, dtype=torch.int32)
    if keep:
        kept = (Q.new_empty((*batch_qa, _record_size(n + m))), info.new_empty(batch_qa))
    else:
        kept = (Q.new_empty(_Empty), info.new_empty(_Empty))
    return (z, lam, info, *kept)


def _shapes(*shapes: Sequence[Any]) -> tuple:
    """(batch, batch of (Q, A), n, m) for the shapes of Q, q, A, c, validated by the rules of
    fastkkt._validate when the shapes are concrete."""
    sQ, sq, sA, sc = (tuple(s) for s in shapes)
    if all(isinstance(s, int) for shape in (sQ, sq, sA, sc) for s in shape):
        batch, n, m = v.kkt_shapes(sQ, sq, sA, sc)
        v.check_size(batch, n, m)
        if sQ[:-2] == sA[:-2] == batch:
            return batch, batch, n, m
    else:  # symbolic shapes under torch.compile: the real kernel validates at run time
        n, m = sQ[-1], sA[-2]
        batch = tuple(torch.broadcast_shapes(sQ[:-2], sq[:-1], sA[:-2], sc[:-1]))
    return batch, tuple(torch.broadcast_shapes(sQ[:-2], sA[:-2])), n, m


def _kkt_solve_factored_impl(
    records: torch.Tensor,
    finfo: torch.Tensor,
    Q: torch.Tensor,
    q: torch.Tensor,
    A: torch.Tensor,
    c: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z, λ, info) = K⁻¹ [−q; c] with a kept factorization of K = [[sym(Q), Aᵀ], [A, 0]]
    (`records`, `finfo` from ``kkt_solve(..., keep=True)`` on this Q and A, which the solve
    uses for iterative refinement): the adjoint solve of the backward pass and the tangent
    solve of forward mode. Batch dimensions broadcast; elements whose factorization failed
    get NaN and their ``finfo`` code in info. No finiteness check (gradients may hold NaN)."""
    if math.prod(torch.broadcast_shapes(records.shape[:-1], q.shape[:-1], c.shape[:-1])) == 0:
        batch = torch.broadcast_shapes(records.shape[:-1], q.shape[:-1], c.shape[:-1])
        n, m = Q.shape[-1], A.shape[-2]
        return q.new_empty((*batch, n)), q.new_empty((*batch, m)), finfo.new_empty(batch)
    z, lam, info = _kkt.solve_factored(
        _np(records), _np(finfo), _np(Q), _np(A), _np(q), _np(c), check_finite=False
    )
    return torch.from_numpy(z), torch.from_numpy(lam), torch.from_numpy(info)


_kkt_solve_factored = torch.library.custom_op(
    "fastkkt::kkt_solve_factored", mutates_args=(), device_types="cpu"
)(_kkt_solve_factored_impl)


@_kkt_solve_factored.register_fake
def _kkt_solve_factored_fake(records, finfo, Q, q, A, c):  # type: ignore[no-untyped-def]
    batch = torch.broadcast_shapes(records.shape[:-1], q.shape[:-1], c.shape[:-1])
    n, m = Q.shape[-1], A.shape[-2]
    return q.new_empty((*batch, n)), q.new_empty((*batch, m)), finfo.new_empty(batch)


def _kkt_backward_impl(
    records: torch.Tensor,
    finfo: torch.Tensor,
    Q: torch.Tensor,
    A: torch.Tensor,
    z: torch.Tensor,
    lam: torch.Tensor,
    info: torch.Tensor,
    gz: torch.Tensor,
    glam: torch.Tensor,
    want_Q: bool,
    want_A: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(∂ℓ/∂q, ∂ℓ/∂c, ∂ℓ/∂Q, ∂ℓ/∂A) per batch element, in one call to the core: the adjoint
    solve d = −K⁻¹g of `_backward`, then d_z, −d_λ, ½(d_z zᵀ + z d_zᵀ) and d_λ zᵀ + λ d_zᵀ
    (zero for failed elements). For a batch in which Q or A is not broadcast, so that the
    factorization is per element; ∂ℓ/∂Q (∂ℓ/∂A) is computed only if `want_Q` (`want_A`),
    else it is empty, and is meaningful only for an input with one Q (A) per element."""
    batch, n, m = tuple(info.shape), z.shape[-1], lam.shape[-1]
    # NumPy allocates the (large) outputs: it advises the kernel to back them with huge pages,
    # which makes their first-touch page faults far cheaper than with torch's allocator.
    dt = _np(z).dtype
    gq, gc = np.empty((*batch, n), dt), np.empty((*batch, m), dt)
    gQ = np.empty((*batch, n, n) if want_Q else _Empty, dt)
    gA = np.empty((*batch, m, n) if want_A else _Empty, dt)
    if gq.size + gc.size:
        core.backward(
            _np(records),
            _np(finfo),
            v.broadcast(_np(Q), batch, 2),
            v.broadcast(_np(A), batch, 2),
            _np(gz),
            _np(-glam),
            _np(z.contiguous()),
            _np(lam.contiguous()),
            _np(info.contiguous()),
            gq,
            gc,
            gQ if want_Q else None,
            gA if want_A else None,
            call_threads(),
        )
    return tuple(torch.from_numpy(x) for x in (gq, gc, gQ, gA))  # type: ignore[return-value]


_kkt_backward = torch.library.custom_op(
    "fastkkt::kkt_backward", mutates_args=(), device_types="cpu"
)(_kkt_backward_impl)


@_kkt_backward.register_fake
def _kkt_backward_fake(records, finfo, Q, A, z, lam, info, gz, glam, want_Q, want_A):  # type: ignore[no-untyped-def]
    batch, n, m = tuple(info.shape), z.shape[-1], lam.shape[-1]
    return (
        z.new_empty((*batch, n)),
        z.new_empty((*batch, m)),
        z.new_empty((*batch, n, n) if want_Q else _Empty),
        z.new_empty((*batch, m, n) if want_A else _Empty),
    )


# --------------------------------------------------------------------------------------------
# routing: which form of an operator a call uses


def _has_tangent(ts: Sequence[torch.Tensor]) -> bool:
    """Whether a forward-mode AD tangent (torch.autograd.forward_ad) rides on any of `ts`."""
    if fwAD._current_level < 0:  # no dual level entered: no tangent anywhere
        return False
    return any(fwAD.unpack_dual(t).tangent is not None for t in ts)


def _solve_factored(differentiable: bool, *args: Any) -> tuple:
    """``fastkkt::kkt_solve_factored``: differentiable (itself differentiable again, for
    higher derivatives and torch.func), as the traced operator, or the bare implementation."""
    if _traced(args[0]):
        return torch.ops.fastkkt.kkt_solve_factored(*args)
    if differentiable:
        return _SolveFactored.apply(*args)
    return _kkt_solve_factored_impl(*args)


# --------------------------------------------------------------------------------------------
# the differentiation rules, shared by kkt_solve and kkt_solve_factored
#
# Both compute x = [z; λ] = K⁻¹ b with K = [[sym(Q), Aᵀ], [A, 0]] and b = [−q; c] (one with
# its own factorization of K, one with a kept one), so they have one rule each way.


class _Saved:
    """Where the differentiable inputs (Q, q, A, c) sit among an operator's arguments."""

    def __init__(self, at: tuple[int, int, int, int], nargs: int) -> None:
        self.at, self.nargs = at, nargs


_SOLVE = _Saved((0, 1, 2, 3), 7)  # kkt_solve(Q, q, A, c, check_finite, check_errors, keep)
_FACTORED = _Saved((2, 3, 4, 5), 6)  # kkt_solve_factored(records, finfo, Q, q, A, c)


def _save(ctx: Any, Q, q, A, c, z, lam, info, records, finfo) -> None:  # type: ignore[no-untyped-def]
    ctx.shapes = tuple(tuple(t.shape) for t in (Q, q, A, c))
    ctx.set_materialize_grads(False)  # no zero gradients for the outputs the loss ignores
    saved = (z, lam, info, records, finfo, Q, A)
    ctx.save_for_backward(*saved)
    ctx.save_for_forward(*saved)


def _setup_solve(ctx: Any, inputs: tuple, output: tuple) -> None:
    Q, q, A, c = inputs[:4]
    z, lam, info, records, finfo = output
    ctx.mark_non_differentiable(info, records, finfo)
    _save(ctx, Q, q, A, c, z, lam, info, records, finfo)


def _setup_factored(ctx: Any, inputs: tuple, output: tuple) -> None:
    records, finfo, Q, q, A, c = inputs
    z, lam, info = output
    ctx.mark_non_differentiable(info)
    _save(ctx, Q, q, A, c, z, lam, info, records, finfo)


def _backward_solve(ctx: Any, gz: torch.Tensor | None, glam: torch.Tensor | None, *_: Any) -> tuple:
    return _backward(ctx, _SOLVE, gz, glam)


def _backward_factored(
    ctx: Any, gz: torch.Tensor | None, glam: torch.Tensor | None, *_: Any
) -> tuple:
    return _backward(ctx, _FACTORED, gz, glam)


def _backward(ctx: Any, where: _Saved, gz: torch.Tensor | None, glam: torch.Tensor | None) -> tuple:
    """Gradients of a loss ℓ(z, λ) with respect to Q, q, A, c.

    With x = [z; λ] = K⁻¹ b, b = [−q; c] and K symmetric, ∂ℓ/∂b = K⁻¹ g for g = [g_z; g_λ],
    and ∂ℓ/∂K = −(K⁻¹ g) xᵀ. Writing d = [d_z; d_λ] = −K⁻¹ g (one adjoint solve with the
    forward factorization):

        ∂ℓ/∂q = d_z                     (b's top block is −q)
        ∂ℓ/∂c = −d_λ
        ∂ℓ/∂Q = ½ (d_z zᵀ + z d_zᵀ)     (K's top-left block is sym(Q) = (Q + Qᵀ)/2)
        ∂ℓ/∂A = d_λ zᵀ + λ d_zᵀ         (A appears as A and as Aᵀ in K)

    Each is summed over the batch dimensions along which its input was broadcast, without
    forming per-element outer products (see `_outer_sum`). Failed elements (info ≠ 0) get
    d = 0 and z, λ set to zero before any product, so their contributions are exactly zero.

    One rule, two evaluations. When the backward pass itself is differentiated (create_graph,
    torch.func), d comes from ``kkt_solve_factored`` called differentiably (its backward is
    this rule again) and the products are torch operations, so autograd differentiates them
    to any order. Otherwise the first-order fast path computes the same formulas in one
    fused core call (``kkt_backward``) when every element has its own factorization.
    """
    z, lam, info, records, finfo, Q, A = ctx.saved_tensors
    need_Q, need_q, need_A, need_c = (ctx.needs_input_grad[i] for i in where.at)
    nones: list[Any] = [None] * where.nargs
    if not any((need_Q, need_q, need_A, need_c)):
        return tuple(nones)
    sQ, sq, sA, sc = ctx.shapes
    gz = torch.zeros_like(z) if gz is None else gz
    glam = torch.zeros_like(lam) if glam is None else glam
    batch = tuple(info.shape)
    kept = records.shape[-1] > 0  # kkt_solve called with keep=False: no factorization
    differentiable = torch.is_grad_enabled() or _functorch_active()
    own_Q = need_Q and tuple(sQ[:-2]) == batch
    own_A = need_A and tuple(sA[:-2]) == batch
    gQ = gA = None
    if not differentiable and kept and tuple(records.shape[:-1]) == batch:
        # a factorization per element: the fused first-order backward, one core call
        fused = torch.ops.fastkkt.kkt_backward if _traced(z) else _kkt_backward_impl
        dz, gc_full, gQ, gA = fused(records, finfo, Q, A, z, lam, info, gz, glam, own_Q, own_A)
        gQ, gA = (gQ if own_Q else None), (gA if own_A else None)
        dlam = -gc_full
        ok = None
    else:
        ok = (info == SOLVED).unsqueeze(-1)
        if kept:  # d = −K⁻¹g = K⁻¹[−g_z; −g_λ], with the kept factorization
            dz, dlam, _ = _solve_factored(differentiable, records, finfo, Q, gz, A, -glam)
        else:  # factor K again (the raw operator called without keep)
            args = (Q, gz, A, -glam, False, False, differentiable)
            dz, dlam, _, _, _ = _solve(differentiable, *args)
        dz, dlam = torch.where(ok, dz, 0), torch.where(ok, dlam, 0)
        gc_full = -dlam
        own_Q = own_A = False
    # Broadcast inputs: zero z and λ of the failed elements (NaN there), then sum over the batch.
    if (need_Q and not own_Q) or (need_A and not own_A):
        ok = (info == SOLVED).unsqueeze(-1) if ok is None else ok
        z, lam = torch.where(ok, z, 0), torch.where(ok, lam, 0)
    if need_Q and not own_Q:
        gQ = _outer_sum([dz, z], [z, dz], batch, sQ[:-2]) * 0.5
    if need_A and not own_A:
        gA = _outer_sum([dlam, lam], [z, dz], batch, sA[:-2])
    gq = dz.sum_to_size(sq) if need_q else None
    gc = gc_full.sum_to_size(sc) if need_c else None
    grads = (gQ, gq, gA, gc)
    for i, g in zip(where.at, grads):
        nones[i] = g
    return tuple(nones)


def _outer_sum(
    us: list[torch.Tensor], vs: list[torch.Tensor], batch: tuple, target: tuple
) -> torch.Tensor:
    """Σ_k u_k v_kᵀ per element, summed over the batch dimensions along which an input with
    batch shape `target` was broadcast to `batch`: shape (*target, p, r) for u (..., p), v
    (..., r).

    The batch is permuted to (kept, reduced) and each pair reshaped to (kept, reduced, ·), so
    one matmul [u₁ … u_K]ᵀ [v₁ … v_K] over the concatenated reduced axis does the sum: no
    (B, p, r) tensor is formed when the input was broadcast. Torch operations only, so it is
    differentiable (the backward pass of a backward pass).
    """
    k = len(batch)
    padded = (1,) * (k - len(target)) + tuple(target)
    reduced = [i for i in range(k) if padded[i] == 1]
    kept = [i for i in range(k) if padded[i] != 1]
    K = math.prod(batch[i] for i in kept)
    R = math.prod(batch[i] for i in reduced)

    def arrange(x: torch.Tensor) -> torch.Tensor:  # (*batch, p) -> (K, R, p)
        return x.expand(*batch, x.shape[-1]).permute(*kept, *reduced, k).reshape(K, R, x.shape[-1])

    U = torch.cat([arrange(u) for u in us], dim=1)
    V = torch.cat([arrange(v) for v in vs], dim=1)
    return (U.transpose(1, 2) @ V).reshape(*target, us[0].shape[-1], vs[0].shape[-1])


def _jvp_solve(ctx: Any, dQ: Any, dq: Any, dA: Any, dc: Any, *_: Any) -> tuple:
    dz, dlam = _jvp(ctx, dQ, dq, dA, dc)
    return dz, dlam, None, None, None


def _jvp_factored(ctx: Any, _rec: Any, _finfo: Any, dQ: Any, dq: Any, dA: Any, dc: Any) -> tuple:
    dz, dlam = _jvp(ctx, dQ, dq, dA, dc)
    return dz, dlam, None


def _jvp(ctx: Any, dQ: Any, dq: Any, dA: Any, dc: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward mode: the tangents (dz, dλ) for tangents (dQ, dq, dA, dc) of the inputs (None:
    zero). Differentiating K x = b with dK x = [sym(dQ) z + dAᵀλ; dA z] gives one more solve
    with the same K:

        K [dz; dλ] = [−dq − sym(dQ) z − dAᵀλ;  dc − dA z],

    i.e. kkt_solve_factored with q' = dq + sym(dQ) z + dAᵀλ and c' = dc − dA z (called
    differentiably, so forward-over-reverse and forward-over-forward work too). Failed
    elements get zero tangents.
    """
    z, lam, info, records, finfo, Q, A = ctx.saved_tensors
    ok = (info == SOLVED).unsqueeze(-1)
    z, lam = torch.where(ok, z, 0), torch.where(ok, lam, 0)
    rq, rc = torch.zeros_like(z), torch.zeros_like(lam)
    if dq is not None:
        rq = rq + dq
    if dQ is not None:
        rq = rq + 0.5 * ((dQ + dQ.mT) @ z.unsqueeze(-1)).squeeze(-1)
    if dA is not None:
        rq = rq + (dA.mT @ lam.unsqueeze(-1)).squeeze(-1)
        rc = rc - (dA @ z.unsqueeze(-1)).squeeze(-1)
    if dc is not None:
        rc = rc + dc
    if records.shape[-1] > 0:
        dz, dlam, _ = _solve_factored(True, records, finfo, Q, rq, A, rc)
    else:  # the raw operator called without keep: factor K again
        dz, dlam, _, _, _ = _solve(True, Q, rq, A, rc, False, False, True)
    return torch.where(ok, dz, 0), torch.where(ok, dlam, 0)


def _to_front(
    args: Sequence[torch.Tensor], in_dims: Sequence[int | None], ranks: Sequence[int]
) -> list[torch.Tensor]:
    """vmap: the vmapped dimension of each operand becomes one more leading batch dimension.

    An operand with a vmapped dimension gets it moved to the front, followed by size-1
    dimensions up to the most batch dimensions of any operand (so that the vmapped
    dimensions line up under right-aligned broadcasting); the others broadcast along it as
    they are. `ranks` are the operands' core ranks (2 for a matrix, 1 for a vector)."""
    logical = [a.dim() - r - (d is not None) for a, d, r in zip(args, in_dims, ranks)]
    most = max(logical)
    out = []
    for a, d, k in zip(args, in_dims, logical):
        if d is not None:
            a = a.movedim(d, 0)[(slice(None),) + (None,) * (most - k)]
        out.append(a)
    return out


def _logical(t: torch.Tensor, d: int | None) -> tuple:
    """The shape a vmapped function sees."""
    shape = tuple(t.shape)
    return shape if d is None else shape[:d] + shape[d + 1 :]


def _vmap_solve(info: Any, in_dims: tuple, *args: Any) -> tuple:
    """vmap of kkt_solve: one more batch dimension (see `_to_front`), validated first on the
    shapes the vmapped function sees so that errors name those."""
    Q, q, A, c, check_finite, check_errors, keep = args
    _shapes(*(_logical(t, d) for t, d in zip((Q, q, A, c), in_dims)))
    Q, q, A, c = _to_front((Q, q, A, c), in_dims[:4], (2, 1, 2, 1))
    out = _solve(True, Q, q, A, c, check_finite, check_errors, keep)
    qa = 0 if keep and (in_dims[0] is not None or in_dims[2] is not None) else None
    return tuple(out), (0, 0, 0, qa, qa)


def _vmap_factored(info: Any, in_dims: tuple, *args: Any) -> tuple:
    """vmap of kkt_solve_factored, as `_vmap_solve`."""
    out = _solve_factored(True, *_to_front(args, in_dims, (1, 0, 2, 1, 2, 1)))
    return tuple(out), (0, 0, 0)


_kkt_solve.register_autograd(_backward_solve, setup_context=_setup_solve)
_kkt_solve_factored.register_autograd(_backward_factored, setup_context=_setup_factored)
_kkt_solve.register_vmap(_vmap_solve)
_kkt_solve_factored.register_vmap(_vmap_factored)


# --------------------------------------------------------------------------------------------
# eager autograd.Functions: the same implementations and rules, without the dispatcher's
# Python hops (about 0.1 ms a forward + backward); torch.func transforms go through them.


class _Solve(_Function):
    """``fastkkt::kkt_solve`` for eager calls."""

    @staticmethod
    def forward(*args: Any) -> tuple:  # type: ignore[override]
        return _kkt_solve_impl(*args)

    setup_context = staticmethod(_setup_solve)  # type: ignore[assignment]
    backward = staticmethod(_backward_solve)  # type: ignore[assignment]
    jvp = staticmethod(_jvp_solve)  # type: ignore[assignment]
    vmap = staticmethod(_vmap_solve)


class _SolveFactored(_Function):
    """``fastkkt::kkt_solve_factored`` for eager calls."""

    @staticmethod
    def forward(*args: Any) -> tuple:  # type: ignore[override]
        return _kkt_solve_factored_impl(*args)

    setup_context = staticmethod(_setup_factored)  # type: ignore[assignment]
    backward = staticmethod(_backward_factored)  # type: ignore[assignment]
    jvp = staticmethod(_jvp_factored)  # type: ignore[assignment]
    vmap = staticmethod(_vmap_factored)


def _solve(differentiable: bool, *args: Any) -> tuple:
    """``fastkkt::kkt_solve``, routed as `_solve_factored` is."""
    if _traced(args[0]):
        return torch.ops.fastkkt.kkt_solve(*args)
    if differentiable:
        return _Solve.apply(*args)
    return _kkt_solve_impl(*args)


# --------------------------------------------------------------------------------------------
# public functions


def _prepare(args: tuple[TensorLike, ...]) -> tuple[list[torch.Tensor], torch.dtype]:
    """Q, q, A, c as CPU tensors of one compute dtype (`fastkkt._torch_common.prepare`)."""
    ts, dtype = _prepare_inputs(dict(zip(("Q", "q", "A", "c"), args)))
    return ts, dtype  # type: ignore[return-value]  # no None among them


def _call(Q, q, A, c, check_finite: bool, check_errors: bool):  # type: ignore[no-untyped-def]
    ts, _ = _prepare((Q, q, A, c))
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in ts)
    if torch.compiler.is_compiling():  # traced by dynamo: the registered operator
        out = torch.ops.fastkkt.kkt_solve(*ts, bool(check_finite), check_errors, grad)
    elif torch.jit.is_tracing():  # recorded by torch.jit.trace: the registered operator,
        # keep=False whatever the grad mode (one graph for every call; a backward pass of
        # the traced function factors K again)
        out = torch.ops.fastkkt.kkt_solve(*ts, bool(check_finite), check_errors, False)
    else:  # an autograd node (which keeps the factorization) only if anything differentiates
        differentiable = grad or _functorch_active() or _has_tangent(ts)
        out = _solve(differentiable, *ts, bool(check_finite), check_errors, differentiable)
    return out[0], out[1], out[2]


def solve_ex(
    Q: TensorLike, q: TensorLike, A: TensorLike, c: TensorLike, *, check_finite: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Differentiable `fastkkt.solve_ex`: (z, lam, info) with per-element status.

    Q (..., n, n), q (..., n), A (..., m, n), c (..., m) broadcast over their batch
    dimensions; z (..., n), lam (..., m) and info (...) (int32: 0 solved, 1 singular KKT
    matrix, 2 not a strict minimum) have the broadcast batch shape. Failed elements hold NaN
    in z and lam and contribute exactly zero to every gradient (and tangent). Inputs may be
    tensors, arrays or lists (as ``numpy.asarray`` sees them); their dtypes promote as NumPy
    promotes them, computed in float32 when that gives a float of at most 32 bits (float32
    with float16, int8, uint8, int16 or bool), else in float64. CPU tensors only.

    Raises ValueError for shapes that do not match or broadcast (naming the argument) and for
    NaN or Inf input (if `check_finite`); TypeError for complex, nested or sparse input;
    NotImplementedError for meta and non-CPU tensors.
    """
    return _call(Q, q, A, c, check_finite, False)


@overload
def solve(
    Q: TensorLike,
    q: TensorLike,
    A: TensorLike,
    c: TensorLike,
    *,
    return_multipliers: Literal[False] = False,
    check_finite: bool = True,
) -> torch.Tensor: ...
@overload
def solve(
    Q: TensorLike,
    q: TensorLike,
    A: TensorLike,
    c: TensorLike,
    *,
    return_multipliers: Literal[True],
    check_finite: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]: ...
@overload
def solve(
    Q: TensorLike,
    q: TensorLike,
    A: TensorLike,
    c: TensorLike,
    *,
    return_multipliers: bool,
    check_finite: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]: ...
def solve(
    Q: TensorLike,
    q: TensorLike,
    A: TensorLike,
    c: TensorLike,
    *,
    return_multipliers: bool = False,
    check_finite: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Differentiable `fastkkt.solve`: z (..., n), or (z, lam) with `return_multipliers`.

    Solves ``minimize ½zᵀQz + qᵀz subject to Az = c`` for every batch element (shapes,
    broadcasting and dtypes as in `solve_ex`), differentiable with respect to Q, q, A and c
    to any order: the backward pass is one adjoint solve with the forward factorization plus
    outer products, itself differentiable (``create_graph=True``, hessians), and forward
    mode (``torch.autograd.forward_ad``, ``torch.func.jvp``) is one more solve. Works with
    ``torch.func`` (grad, vmap, jacrev, jacfwd), ``torch.compile(fullgraph=True)`` and
    ``torch.jit.trace``.

    Raises `fastkkt.KKTError` if any element has a singular KKT matrix or is not a strict
    minimum, plus the errors of `solve_ex`.
    """
    z, lam, _ = _call(Q, q, A, c, check_finite, True)
    return (z, lam) if return_multipliers else z


from fastkkt._torch_qp import solve_qp, solve_qp_ex  # noqa: E402
