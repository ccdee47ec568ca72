"""The differentiable QP layer: ``fastkkt.torch.solve_qp`` and ``fastkkt.torch.solve_qp_ex``.

Each batch element solves the convex quadratic program (as `fastkkt.solve_qp`, whose NumPy
implementation runs the forward pass, with its validation, broadcasting and dtypes)

    minimize_z ½zᵀQz + qᵀz   subject to   Az = c,  Gz ≤ h,  lb ≤ z ≤ ub,

with Lagrangian L = ½zᵀQz + qᵀz + λᵀ(Az − c) + μᵀ(Gz − h) + ν_ubᵀ(z − ub) + ν_lbᵀ(lb − z) and
the signed bound multiplier ν = ν_ub − ν_lb.

Backward pass: implicit differentiation of the KKT conditions at the solution (Amos & Kolter,
"OptNet", ICML 2017), restricted to the active set, in C++ (cpp/include/fastkkt/qp_adjoint.hpp,
whose opening comment has the mathematics): when a gradient may be asked for, the forward pass
keeps each element's active set and the factorization of its equality KKT system that the
solver's final active-set polish made; the backward pass is then one more solve per element
with it (refined against the unregularized system) and the outer products

    ∂ℓ/∂q = d_z                   ∂ℓ/∂Q = ½(d_z zᵀ + z d_zᵀ)   (only sym(Q) enters)
    ∂ℓ/∂c = −d_λ                  ∂ℓ/∂A = d_λ zᵀ + λ d_zᵀ
    ∂ℓ/∂h = −D_G d_μ              ∂ℓ/∂G = D_G d_μ zᵀ + μ_𝒜 d_zᵀ
    ∂ℓ/∂ub_j = −d_ν,j  (j at its upper bound),  ∂ℓ/∂lb_j = −d_ν,j  (j at its lower bound),

for the adjoint d = −K⁻¹g of the active KKT matrix K and the incoming gradients g of
(z, λ, μ, ν), summed over the batch dimensions along which each input was broadcast (in a
fixed order: bitwise identical for any thread count), with the GIL released and no Python per
element. Failed elements (info ≠ 0) contribute exactly zero.

The active-set rule, applied to the returned solution (so it is deterministic, and what it
decides is what the forward pass returned):

- row i of G is active iff μᵢ > max(hᵢ − Gᵢz, 0), i.e. its multiplier is positive and exceeds
  its slack. At a strictly complementary solution this is exactly the set of binding rows. A
  weakly active row (μᵢ = 0 and Gᵢz = hᵢ) counts as inactive: the gradient is the one of the
  problem without that row, the one-sided derivative for perturbations that keep it slack.
- coordinate j is at its upper bound iff νⱼ > max(ubⱼ − zⱼ, 0), at its lower bound iff
  −νⱼ > max(zⱼ − lbⱼ, 0); a weakly active bound (νⱼ = 0) counts as inactive.
- a fixed coordinate (lbⱼ = ubⱼ) is always active; its gradient goes to ub when νⱼ ≥ 0 and to lb
  when νⱼ < 0 (the bound that holds z there: it is then exactly ∂zⱼ/∂b on the feasible side).
- where the active constraints are linearly dependent or Q is singular on their null space
  (degenerate points, where z or the multipliers are not differentiable), K is singular: when
  the refined solve does not reach a small residual, the adjoint system is solved in the
  least-squares sense (minimum norm, a complete orthogonal decomposition): finite and
  deterministic. (A K singular only up to rounding can still give large finite gradients
  there.)

Operators (torch.library, with fake implementations, so ``torch.compile(fullgraph=True)``
traces them): ``fastkkt::qp_solve`` (the forward, `fastkkt.solve_qp_ex`, plus the kept active
set and factorizations when its `keep` flag is set; the no-grad forward keeps nothing) and
``fastkkt::qp_adjoint`` (the adjoint solve and the gradients above).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import torch

from fastkkt import _qp
from fastkkt import _validate as v
from fastkkt._errors import QPError
from fastkkt._qp import QPSolution
from fastkkt._threads import call_threads
from fastkkt._torch_common import Function, np_view, prepare, traced

__all__ = ["solve_qp", "solve_qp_ex"]

TensorLike = Union[torch.Tensor, np.ndarray, Sequence[Any], float, int]
Tensor = torch.Tensor


def _np(t: Tensor | None) -> np.ndarray | None:
    return None if t is None else np_view(t)


# --------------------------------------------------------------------------------------------
# the forward operator


def _factor_size(n: Any, m: Any, p: Any) -> Any:
    """Entries per element of a kept factorization (the core's qp_factor_size; SymInts too)."""
    s = torch.sym_min(2 * n, n + m + p)
    return (s * s + s) // 2


def _qp_solve_impl(
    Q: Tensor,
    q: Tensor,
    A: Tensor | None,
    c: Tensor | None,
    G: Tensor | None,
    h: Tensor | None,
    lb: Tensor | None,
    ub: Tensor | None,
    tol: float,
    max_iter: int,
    check_finite: bool,
    check_errors: bool,
    keep: bool = False,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(z, lam, mu, nu, info, iterations) = ``fastkkt.solve_qp_ex`` on the tensors' data, then
    (active, factor): with `keep`, the active set and kept factorizations the backward pass
    uses (int8 (..., p + n + 1) and (..., _factor_size(n, m, p)); see qp_adjoint.hpp), else
    empty (..., 0) tensors. With `check_errors`, QPError for failed elements (as
    ``fastkkt.solve_qp``)."""
    return _solve_np(Q, q, A, c, G, h, lb, ub, tol, max_iter, check_finite, check_errors, keep)[:8]


def _solve_np(
    Q: Tensor,
    q: Tensor,
    A: Tensor | None,
    c: Tensor | None,
    G: Tensor | None,
    h: Tensor | None,
    lb: Tensor | None,
    ub: Tensor | None,
    tol: float,
    max_iter: int,
    check_finite: bool,
    check_errors: bool,
    keep: bool,
) -> tuple:
    """_qp_solve_impl's 8 tensors, then (with `keep`) the NumPy arrays the adjoint reads
    (_AdjointArrays, sharing memory with the tensors: the eager backward pass converts
    nothing again), else None."""
    views = (np_view(Q), np_view(q), _np(A), _np(c), _np(G), _np(h), _np(lb), _np(ub))
    sol, active, factor = _qp._solve_qp_ex(*views, tol, max_iter, check_finite, keep)
    if check_errors and sol.info.any():
        raise QPError(sol.info)
    out: list[Any] = [torch.from_numpy(x) for x in sol]
    if active is None or factor is None:
        empty = sol.info.shape + (0,)
        out += [torch.empty(empty, dtype=torch.int8), torch.empty(empty, dtype=out[0].dtype)]
        out.append(None)
    else:
        out += [torch.from_numpy(active), torch.from_numpy(factor)]
        out.append((views[0], views[2], views[4], sol.z, sol.lam, sol.mu, sol.info, active, factor))
    return tuple(out)


_qp_solve = torch.library.custom_op("fastkkt::qp_solve", mutates_args=(), device_types="cpu")(
    _qp_solve_impl
)


def _batch(Q: Tensor, q: Tensor, *rest: Tensor | None) -> tuple[tuple, Any, Any, Any]:
    """(batch shape, n, m, p) from the operands' shapes (for the fake implementation)."""
    A, c, G, h, lb, ub = rest
    shapes = [Q.shape[:-2], q.shape[:-1]]
    for t, k in ((A, 2), (c, 1), (G, 2), (h, 1), (lb, 1), (ub, 1)):
        if t is not None and t.dim() >= k:
            shapes.append(t.shape[:-k])
    m = A.shape[-2] if A is not None else 0
    p = G.shape[-2] if G is not None else 0
    return tuple(torch.broadcast_shapes(*shapes)), Q.shape[-1], m, p


@_qp_solve.register_fake
def _qp_solve_fake(Q, q, A, c, G, h, lb, ub, tol, max_iter, check_finite, check_errors, keep=False):  # type: ignore[no-untyped-def]
    batch, n, m, p = _batch(Q, q, A, c, G, h, lb, ub)
    info = Q.new_empty(batch, dtype=torch.int32)
    return (
        Q.new_empty((*batch, n)),
        Q.new_empty((*batch, m)),
        Q.new_empty((*batch, p)),
        Q.new_empty((*batch, n)),
        info,
        torch.empty_like(info),
        Q.new_empty((*batch, p + n + 1 if keep else 0), dtype=torch.int8),
        Q.new_empty((*batch, _factor_size(n, m, p) if keep else 0)),
    )


# --------------------------------------------------------------------------------------------
# the adjoint operator


def _qp_adjoint_impl(
    Q: Tensor,
    q: Tensor,
    A: Tensor | None,
    c: Tensor | None,
    G: Tensor | None,
    h: Tensor | None,
    lb: Tensor | None,
    ub: Tensor | None,
    z: Tensor,
    lam: Tensor,
    mu: Tensor,
    info: Tensor,
    active: Tensor,
    factor: Tensor,
    gz: Tensor | None,
    glam: Tensor | None,
    gmu: Tensor | None,
    gnu: Tensor | None,
    need: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The gradients of (Q, q, A, c, G, h, lb, ub), each of its input's shape (summed over
    the dimensions along which it was broadcast), for the inputs whose bit is set in `need`
    (bit i: input i); an empty tensor for the others. The C++ adjoint (qp_adjoint.hpp): one
    solve per element with the factorization the forward pass kept, zero for failed elements,
    the GIL released."""
    arrays = (np_view(Q), _np(A), _np(G), np_view(z), np_view(lam), np_view(mu), np_view(info),
              np_view(active), np_view(factor))  # fmt: skip
    res = _adjoint(arrays, (Q, q, A, c, G, h, lb, ub), gz, glam, gmu, gnu, need)
    return tuple(z.new_empty(0) if r is None else r for r in res)  # type: ignore[return-value]


def _adjoint(
    arrays: tuple,
    inputs: Sequence[Tensor | None],
    gz: Tensor | None,
    glam: Tensor | None,
    gmu: Tensor | None,
    gnu: Tensor | None,
    need: int,
) -> list[Tensor | None]:
    """The gradients by the core (None for those not asked for); `arrays`: NumPy views of
    (Q, A, G, z, lam, mu, info, active, factor)."""
    z = arrays[3]
    n = z.shape[-1]
    outs: list[np.ndarray | None] = []
    for i, t in enumerate(inputs):
        if t is not None and (need >> i) & 1:
            outs.append(np.empty((n,) if t.dim() == 0 else t.shape, z.dtype))
        else:
            outs.append(None)
    _qp.core.qp_adjoint(*arrays, _np(gz), _np(glam), _np(gmu), _np(gnu), *outs, call_threads())
    res: list[Tensor | None] = []
    for t, o in zip(inputs, outs):
        if o is None:
            res.append(None)
        else:
            g = torch.from_numpy(o)
            res.append(g.sum() if t is not None and t.dim() == 0 else g)  # a scalar bound
    return res


_qp_adjoint = torch.library.custom_op("fastkkt::qp_adjoint", mutates_args=(), device_types="cpu")(
    _qp_adjoint_impl
)


@_qp_adjoint.register_fake
def _qp_adjoint_fake(Q, q, A, c, G, h, lb, ub, z, lam, mu, info, active, factor, *g_need):  # type: ignore[no-untyped-def]
    need = g_need[-1]
    return tuple(
        z.new_empty(t.shape) if t is not None and (need >> i) & 1 else z.new_empty(0)
        for i, t in enumerate((Q, q, A, c, G, h, lb, ub))
    )


# --------------------------------------------------------------------------------------------
# the differentiation rule


def _setup(ctx: Any, inputs: tuple, output: tuple) -> None:
    z, lam, mu, _nu, info, _, active, factor = output
    ctx.save_for_backward(*inputs[:8], z, lam, mu, info, active, factor)
    ctx.set_materialize_grads(False)


def _backward(ctx: Any, gz: Any, glam: Any, gmu: Any, gnu: Any, *_: Any) -> tuple:
    need = ctx.needs_input_grad[:8]
    grads: list[Any] = [None] * len(ctx.needs_input_grad)
    if not any(need):
        return tuple(grads)
    saved = ctx.saved_tensors  # (also checks that no saved tensor was modified in place)
    mask = sum(1 << i for i, x in enumerate(need) if x)
    arrays = getattr(ctx, "arrays", None)
    out: Any
    if arrays is not None and not traced(saved[8]):  # eager: the forward's NumPy views
        out = _adjoint(arrays, saved[:8], gz, glam, gmu, gnu, mask)
    else:
        op = torch.ops.fastkkt.qp_adjoint if traced(saved[8]) else _qp_adjoint_impl
        out = op(*saved, gz, glam, gmu, gnu, mask)  # type: ignore[call-arg]  # 14 saved tensors
    for i in range(8):
        if need[i]:
            grads[i] = out[i]
    return tuple(grads)


_qp_solve.register_autograd(_backward, setup_context=_setup)


class _Solve(Function):
    """``fastkkt::qp_solve`` for eager calls (without the dispatcher's Python hops)."""

    @staticmethod
    def forward(*args: Any) -> tuple:  # type: ignore[override]
        return _solve_np(*args)  # 8 tensors, then the NumPy views the adjoint reads

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        _setup(ctx, inputs, output[:8])
        ctx.arrays = output[8]
        ctx.mark_non_differentiable(*output[4:8])

    backward = staticmethod(_backward)  # type: ignore[assignment]


# --------------------------------------------------------------------------------------------
# public functions


def _call(
    args: dict[str, Any], tol: float | None, max_iter: int, check_finite: bool, check: bool
) -> tuple:
    ts, dtype = prepare(args, weak=("lb", "ub"))
    if tol is None:
        tol = _qp.DEFAULT_TOL[np.dtype(np.float32 if dtype == torch.float32 else np.float64)]
    v.check_qp_options(tol, max_iter)
    # the factorizations are kept (for the backward pass) only when a gradient may be asked for
    grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in ts)
    extra = (float(tol), int(max_iter), bool(check_finite), check, grad)
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return torch.ops.fastkkt.qp_solve(*ts, *extra)[:6]
    if grad:
        return _Solve.apply(*ts, *extra)[:6]
    return _qp_solve_impl(*ts, *extra)[:6]  # type: ignore[arg-type, call-arg]


def solve_qp_ex(
    Q: TensorLike,
    q: TensorLike,
    *,
    A: TensorLike | None = None,
    c: TensorLike | None = None,
    G: TensorLike | None = None,
    h: TensorLike | None = None,
    lb: TensorLike | None = None,
    ub: TensorLike | None = None,
    tol: float | None = None,
    max_iter: int = _qp.DEFAULT_MAX_ITER,
    check_finite: bool = True,
) -> QPSolution:
    """Differentiable `fastkkt.solve_qp_ex`: a QPSolution (z, lam, mu, nu, info, iterations)
    of tensors with per-element status.

    ``minimize ½zᵀQz + qᵀz subject to Az = c, Gz ≤ h, lb ≤ z ≤ ub``; shapes Q (..., n, n),
    q (..., n), A (..., m, n), c (..., m), G (..., p, n), h (..., p), lb and ub (..., n) or
    scalars, batch dimensions broadcast; z, lam, mu, nu are differentiable with respect to
    every tensor input (see the module docstring for the rule at degenerate points). Failed
    elements (info ≠ 0) hold NaN and contribute exactly zero to every gradient. float32 when
    every tensor input is float32, else float64; CPU tensors only.

    Raises ValueError / TypeError as `fastkkt.solve_qp_ex`, NotImplementedError for non-CPU
    tensors.
    """
    args = dict(Q=Q, q=q, A=A, c=c, G=G, h=h, lb=lb, ub=ub)
    return QPSolution(*_call(args, tol, max_iter, check_finite, False))


def solve_qp(
    Q: TensorLike,
    q: TensorLike,
    *,
    A: TensorLike | None = None,
    c: TensorLike | None = None,
    G: TensorLike | None = None,
    h: TensorLike | None = None,
    lb: TensorLike | None = None,
    ub: TensorLike | None = None,
    return_multipliers: bool = False,
    tol: float | None = None,
    max_iter: int = _qp.DEFAULT_MAX_ITER,
    check_finite: bool = True,
) -> Any:
    """Differentiable `fastkkt.solve_qp`: z (..., n), or (z, lam, mu, nu) with
    `return_multipliers`; arguments as `solve_qp_ex`.

    Raises `fastkkt.QPError` (``.indices``, ``.info``) if any element is infeasible,
    unbounded or not converged, plus the errors of `solve_qp_ex`.
    """
    args = dict(Q=Q, q=q, A=A, c=c, G=G, h=h, lb=lb, ub=ub)
    z, lam, mu, nu, _, _ = _call(args, tol, max_iter, check_finite, True)
    return (z, lam, mu, nu) if return_multipliers else z
