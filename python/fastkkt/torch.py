"""The differentiable PyTorch layer: ``fastkkt.torch.solve`` and ``fastkkt.torch.solve_ex``.

Each batch element solves ``minimize ½zᵀQz + qᵀz subject to Az = c`` through its KKT system
``K [z; λ] = [−q; c]`` with ``K = [[sym(Q), Aᵀ], [A, 0]]``, exactly as the NumPy API does
(same shapes, broadcasting, dtypes and errors). The solve is the registered operator
``torch.ops.fastkkt.kkt_solve`` (with a fake implementation and an autograd rule, so
``torch.compile(..., fullgraph=True)`` traces it); its backward pass reuses the forward
factorization for the adjoint solve, ``torch.ops.fastkkt.kkt_adjoint``. CPU tensors only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import torch

from fastkkt import _api
from fastkkt._dispatch import core

__all__ = ["solve", "solve_ex"]

if not hasattr(torch.library, "custom_op"):  # added in torch 2.4
    raise ImportError(
        f"fastkkt.torch needs torch >= 2.4 (torch.library.custom_op), got {torch.__version__}"
    )

TensorLike = Union[torch.Tensor, np.ndarray, Sequence[Any], float, int]
_Empty = (0,)


def _np(t: torch.Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor (shares memory, also for expanded stride-0 tensors)."""
    t = t.detach()
    return (t.resolve_neg() if t.is_neg() else t).numpy()  # real tensors: no conjugate bit


def _record_size(N: Any) -> Any:
    """Numbers per factorization record, N(N−1)/2 + 3N + 2 for N = n + m (also for SymInts)."""
    return core.record_size(N) if isinstance(N, int) else N * (N - 1) // 2 + 3 * N + 2


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
    batch, batch_qa, n, m = _shapes(Q, q, A, c)
    if keep and math.prod(batch) > 0:
        z, lam, info, F, _ = _api._solve_keep(Qn, qn, An, cn, check_finite, keep=True)
        assert F is not None
        kept = (F._records, F._info)
    else:
        z, lam, info = _api.solve_ex(Qn, qn, An, cn, check_finite=check_finite)
        if keep:  # an empty batch: nothing to factor, the backward pass solves nothing
            kept = (
                np.zeros((*batch_qa, _record_size(n + m)), z.dtype),
                np.zeros(batch_qa, np.int32),
            )
        else:
            kept = (np.empty(_Empty, z.dtype), np.empty(_Empty, np.int32))
    if check_errors:
        _api._raise_kkt(info)
    return tuple(torch.from_numpy(x) for x in (z, lam, info, *kept))  # type: ignore[return-value]


_kkt_solve = torch.library.custom_op("fastkkt::kkt_solve", mutates_args=(), device_types="cpu")(
    _kkt_solve_impl
)


@_kkt_solve.register_fake
def _kkt_solve_fake(Q, q, A, c, check_finite, check_errors, keep):  # type: ignore[no-untyped-def]
    batch, batch_qa, n, m = _shapes(Q, q, A, c)
    z, lam = Q.new_empty((*batch, n)), Q.new_empty((*batch, m))
    info = Q.new_empty(batch, dtype=torch.int32)
    if keep:
        kept = (Q.new_empty((*batch_qa, _record_size(n + m))), info.new_empty(batch_qa))
    else:
        kept = (Q.new_empty(_Empty), info.new_empty(_Empty))
    return (z, lam, info, *kept)


def _shapes(Q: torch.Tensor, q: torch.Tensor, A: torch.Tensor, c: torch.Tensor) -> tuple:
    """(batch, batch of (Q, A), n, m), validated by the NumPy API's own checks when the shapes
    are concrete (on stride-0 dummy arrays: no memory is touched)."""
    shapes = [tuple(t.shape) for t in (Q, q, A, c)]
    sQ, sq, sA, sc = shapes
    if (  # the common case, checked cheaply: one batch shape, consistent n and m
        len(sQ) >= 2
        and all(isinstance(s, int) for shape in shapes for s in shape)
        and sQ[-1] == sQ[-2]
        and sA[:-2] == sQ[:-2]
        and sA[-1:] == sq[-1:] == sQ[-1:]
        and sq[:-1] == sc[:-1] == sQ[:-2]
        and sc[-1:] == sA[-2:-1]
    ):
        batch, n, m = sQ[:-2], sQ[-1], sA[-2]
        _api._check_size(batch, n, m)
        return batch, batch, n, m
    if all(isinstance(s, int) for shape in shapes for s in shape):
        Qd, qd, Ad, cd = (np.broadcast_to(np.zeros((), np.float64), s) for s in shapes)
        Qd, Ad, n, m = _api._prepare_qa(Qd, Ad)
        qd, cd = _api._prepare_qc(qd, cd, n, m)
        batch = _api._batch_shape({"Q": (Qd, 2), "q": (qd, 1), "A": (Ad, 2), "c": (cd, 1)})
        _api._check_size(batch, n, m)
    else:  # symbolic shapes under torch.compile: the real kernel validates at run time
        n, m = Q.shape[-1], A.shape[-2]
        batch = torch.broadcast_shapes(Q.shape[:-2], q.shape[:-1], A.shape[:-2], c.shape[:-1])
    batch_qa = torch.broadcast_shapes(Q.shape[:-2], A.shape[:-2])
    return tuple(batch), tuple(batch_qa), n, m


def _kkt_adjoint_impl(
    records: torch.Tensor,
    finfo: torch.Tensor,
    Q: torch.Tensor,
    A: torch.Tensor,
    gz: torch.Tensor,
    glam: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(d_z, d_λ) = −K⁻¹ [g_z; g_λ] with the kept factorization of K (symmetric, so the
    adjoint system is K itself): ``F.solve_ex(g_z, −g_λ)`` solves K [d_z; d_λ] = [−g_z; −g_λ].
    Elements whose factorization failed get zeros, whatever their incoming gradient."""
    if gz.numel() == 0:  # an empty batch
        return gz.new_empty(gz.shape), glam.new_empty(glam.shape)
    F = _api.KKTFactorization._from_arrays(_np(Q), _np(A), _np(records), _np(finfo))
    dz, dlam, info = F.solve_ex(_np(gz), -_np(glam), check_finite=False)
    if info.any():
        dz[info != 0] = 0
        dlam[info != 0] = 0
    return torch.from_numpy(dz), torch.from_numpy(dlam)


_kkt_adjoint = torch.library.custom_op("fastkkt::kkt_adjoint", mutates_args=(), device_types="cpu")(
    _kkt_adjoint_impl
)


@_kkt_adjoint.register_fake
def _kkt_adjoint_fake(records, finfo, Q, A, gz, glam):  # type: ignore[no-untyped-def]
    return gz.new_empty(gz.shape), glam.new_empty(glam.shape)


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
    solve of `_kkt_adjoint_impl`, then d_z, −d_λ, ½(d_z zᵀ + z d_zᵀ) and d_λ zᵀ + λ d_zᵀ
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
            _np(Q) if Q.shape[:-2] == batch else _api._broadcast(_np(Q), batch, 2),
            _np(A) if A.shape[:-2] == batch else _api._broadcast(_np(A), batch, 2),
            _np(gz),
            _np(-glam),
            _np(z.contiguous()),
            _np(lam.contiguous()),
            _np(info.contiguous()),
            gq,
            gc,
            gQ if want_Q else None,
            gA if want_A else None,
            _api.get_num_threads(),
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
# the autograd rule


def _setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
    Q, q, A, c, _, _, keep = inputs
    z, lam, info, records, finfo = output
    ctx.keep = keep
    ctx.shapes = tuple(tuple(t.shape) for t in (Q, q, A, c))
    ctx.mark_non_differentiable(info, records, finfo)
    ctx.set_materialize_grads(False)  # no zero gradients for the outputs the loss ignores
    ctx.save_for_backward(z, lam, info, records, finfo, Q, A)


def _backward(ctx: Any, gz: torch.Tensor | None, glam: torch.Tensor | None, *_: Any) -> tuple:
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
    d_z = d_λ = 0 from the adjoint solve and z, λ set to zero before any product, so their
    gradient contributions are exactly zero.
    """
    z, lam, info, records, finfo, Q, A = ctx.saved_tensors
    need_Q, need_q, need_A, need_c = ctx.needs_input_grad[:4]
    if not any((need_Q, need_q, need_A, need_c)):
        return (None,) * 7
    if not ctx.keep:
        raise RuntimeError(
            "fastkkt::kkt_solve was called with keep=False, so no factorization was kept for "
            "the backward pass; call fastkkt.torch.solve / solve_ex instead of the raw op"
        )
    sQ, sq, sA, sc = ctx.shapes
    gz = torch.zeros_like(z) if gz is None else gz
    glam = torch.zeros_like(lam) if glam is None else glam
    ops = _ops(z)
    batch = tuple(info.shape)
    own_Q = need_Q and tuple(sQ[:-2]) == batch
    own_A = need_A and tuple(sA[:-2]) == batch
    gQ = gA = None
    if tuple(records.shape[:-1]) == batch:  # a factorization per element: one fused call
        dz, gc_full, gQ, gA = ops.kkt_backward(
            records, finfo, Q, A, z, lam, info, gz, glam, own_Q, own_A
        )
        gQ, gA = (gQ if own_Q else None), (gA if own_A else None)
        dlam = -gc_full
    else:  # Q and A shared along some dimensions: d = −K⁻¹g, then sums over the batch
        dz, dlam = ops.kkt_adjoint(records, finfo, Q, A, gz, glam)  # 0 where failed
        gc_full = -dlam
    # Broadcast inputs: zero z and λ of the failed elements (NaN there), then sum over the batch.
    if (need_Q and not own_Q) or (need_A and not own_A):
        okv = (info == 0).unsqueeze(-1)
        z, lam = torch.where(okv, z, 0), torch.where(okv, lam, 0)
    if need_Q and not own_Q:
        gQ = _outer_sum([dz, z], [z, dz], batch, sQ[:-2]).mul_(0.5)
    if need_A and not own_A:
        gA = _outer_sum([dlam, lam], [z, dz], batch, sA[:-2])
    gq = dz.sum_to_size(sq) if need_q else None
    gc = gc_full.sum_to_size(sc) if need_c else None
    return gQ, gq, gA, gc, None, None, None


def _outer_sum(
    us: list[torch.Tensor], vs: list[torch.Tensor], batch: tuple, target: tuple
) -> torch.Tensor:
    """Σ_k u_k v_kᵀ per element, summed over the batch dimensions along which an input with
    batch shape `target` was broadcast to `batch`: shape (*target, p, r) for u (..., p), v
    (..., r).

    The batch is permuted to (kept, reduced) and each pair reshaped to (kept, reduced, ·), so
    one matmul [u₁ … u_K]ᵀ [v₁ … v_K] over the concatenated reduced axis does the sum: no
    (B, p, r) tensor is formed when the input was broadcast.
    """
    k = len(batch)
    padded = (1,) * (k - len(target)) + tuple(target)
    reduced = [i for i in range(k) if padded[i] == 1]
    kept = [i for i in range(k) if padded[i] != 1]
    K = math.prod(batch[i] for i in kept)
    R = math.prod(batch[i] for i in reduced)

    def arrange(x: torch.Tensor) -> torch.Tensor:  # (*batch, p) -> (K, R, p)
        return x.permute(*kept, *reduced, k).reshape(K, R, x.shape[-1])

    U = torch.cat([arrange(u) for u in us], dim=1)
    V = torch.cat([arrange(v) for v in vs], dim=1)
    return (U.transpose(1, 2) @ V).reshape(*target, us[0].shape[-1], vs[0].shape[-1])


_kkt_solve.register_autograd(_backward, setup_context=_setup_context)


# --------------------------------------------------------------------------------------------
# public functions


def _torchable(x: Any) -> Any:
    """An ndarray torch can wrap: a copy when it has negative strides, non-native byte order or
    is read-only (torch rejects the first two and warns on the third; inputs are never
    written, and the NumPy API accepts all three)."""
    if isinstance(x, np.ndarray) and (
        any(s < 0 for s in x.strides) or not x.dtype.isnative or not x.flags.writeable
    ):
        return np.array(x, dtype=x.dtype.newbyteorder("="))
    return x


def _prepare(
    args: tuple[TensorLike, ...],
) -> tuple[list[torch.Tensor], torch.dtype]:
    """Tensors of one compute dtype, as the NumPy API chooses it: float32 if every input is a
    float of at most 32 bits, else float64 (integers become float64). The casts are
    differentiable, so gradients come back in each input's own dtype."""
    names = ("Q", "q", "A", "c")
    ts = [x if isinstance(x, torch.Tensor) else torch.as_tensor(_torchable(x)) for x in args]
    for name, t in zip(names, ts):
        if t.device.type != "cpu":
            raise NotImplementedError(
                f"{name} is on device {t.device}: fastkkt.torch supports CPU tensors only "
                "(CUDA is not supported yet); move the inputs with .cpu()"
            )
        if t.is_complex():
            raise TypeError(
                f"{name} has dtype {t.dtype}; fastkkt solves real problems in float32 or float64"
            )
    small = all(t.is_floating_point() and t.element_size() <= 4 for t in ts)
    dtype = torch.float32 if small else torch.float64
    return [t if t.dtype == dtype else t.to(dtype) for t in ts], dtype


try:  # what torch.autograd.Function.apply uses (torch 2.1 – 2.13 at least)
    from torch._functorch.utils import unwrap_dead_wrappers as _unwrap_dead_wrappers

    _FAST_APPLY = hasattr(torch._C, "_are_functorch_transforms_active")
except ImportError:  # pragma: no cover - a torch that moved them: the ordinary apply
    _FAST_APPLY = False


class _Eager(torch.autograd.Function):
    """The operator ``fastkkt::kkt_solve`` for eager calls, without the dispatcher's Python
    hops (about 0.1 ms a forward + backward): the same implementation, context and backward.
    Under torch.compile the registered operators are traced instead."""

    @staticmethod
    def forward(*args: Any) -> tuple:  # type: ignore[override]
        return _kkt_solve_impl(*args)

    @classmethod
    def apply(cls, *args: Any) -> Any:  # type: ignore[override]
        """torch.autograd.Function.apply without its per-call inspect.signature binding of
        default arguments (~14 µs; `forward` has none): the rest of what it does outside
        functorch transforms, else the original."""
        if _FAST_APPLY and not torch._C._are_functorch_transforms_active():
            base = super(torch.autograd.Function, cls)
            return base.apply(*_unwrap_dead_wrappers(args))  # type: ignore[attr-defined]
        return super().apply(*args)

    setup_context = staticmethod(_setup_context)  # type: ignore[assignment]
    backward = staticmethod(_backward)  # type: ignore[assignment]


class _EagerOps:
    """The implementations behind the backward pass's operators, called directly (eager)."""

    kkt_adjoint = staticmethod(_kkt_adjoint_impl)
    kkt_backward = staticmethod(_kkt_backward_impl)


def _ops(t: torch.Tensor) -> Any:
    """The registered operators while anything traces (torch.compile, AOT autograd: their
    tensors are subclasses such as FakeTensor), their implementations otherwise."""
    if torch.compiler.is_compiling() or type(t) is not torch.Tensor:
        return torch.ops.fastkkt
    return _EagerOps


def _call(Q, q, A, c, check_finite: bool, check_errors: bool):  # type: ignore[no-untyped-def]
    (Qt, qt, At, ct), _ = _prepare((Q, q, A, c))
    keep = torch.is_grad_enabled() and any(t.requires_grad for t in (Qt, qt, At, ct))
    args = (Qt, qt, At, ct, bool(check_finite), check_errors, keep)
    if torch.compiler.is_compiling():
        out = torch.ops.fastkkt.kkt_solve(*args)
    elif keep:
        out = _Eager.apply(*args)
    else:  # nothing to differentiate: no autograd node (about 10 µs)
        out = _kkt_solve_impl(*args)
    return out[0], out[1], out[2]


def solve_ex(
    Q: TensorLike, q: TensorLike, A: TensorLike, c: TensorLike, *, check_finite: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Differentiable `fastkkt.solve_ex`: (z, lam, info) with per-element status.

    Q (..., n, n), q (..., n), A (..., m, n), c (..., m) broadcast over their batch
    dimensions; z (..., n), lam (..., m) and info (...) (int32: 0 solved, 1 singular KKT
    matrix, 2 not a strict minimum) have the broadcast batch shape. Failed elements hold NaN
    in z and lam and contribute exactly zero to every gradient. Results are float32 when all
    inputs are float32, else float64; CPU tensors only.

    Raises ValueError for shapes that do not match or broadcast (naming the argument) and for
    NaN or Inf input (if `check_finite`), TypeError for complex input, NotImplementedError
    for non-CPU tensors.
    """
    return _call(Q, q, A, c, check_finite, False)


def solve(
    Q: TensorLike,
    q: TensorLike,
    A: TensorLike,
    c: TensorLike,
    *,
    return_multipliers: bool = False,
    check_finite: bool = True,
) -> Any:
    """Differentiable `fastkkt.solve`: z (..., n), or (z, lam) with `return_multipliers`.

    Solves ``minimize ½zᵀQz + qᵀz subject to Az = c`` for every batch element (shapes,
    broadcasting and dtypes as in `solve_ex`), differentiable with respect to Q, q, A and c;
    the backward pass is one adjoint solve with the forward factorization.

    Raises `fastkkt.KKTError` if any element has a singular KKT matrix or is not a strict
    minimum, plus the errors of `solve_ex`.
    """
    z, lam, _ = _call(Q, q, A, c, check_finite, True)
    return (z, lam) if return_multipliers else z

from fastkkt._torch_qp import solve_qp, solve_qp_ex  # noqa: E402, F401
