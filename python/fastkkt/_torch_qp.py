"""The differentiable QP layer: ``fastkkt.torch.solve_qp`` and ``fastkkt.torch.solve_qp_ex``.

Each batch element solves the convex quadratic program (as `fastkkt.solve_qp`, whose NumPy
implementation runs the forward pass, with its validation, broadcasting and dtypes)

    minimize_z ½zᵀQz + qᵀz   subject to   Az = c,  Gz ≤ h,  lb ≤ z ≤ ub,

with Lagrangian L = ½zᵀQz + qᵀz + λᵀ(Az − c) + μᵀ(Gz − h) + ν_ubᵀ(z − ub) + ν_lbᵀ(lb − z) and
the signed bound multiplier ν = ν_ub − ν_lb.

Backward pass: implicit differentiation of the KKT conditions at the solution (Amos & Kolter,
"OptNet", ICML 2017), restricted to the active set 𝒜. With the active rows G_𝒜 z = h_𝒜 and the
active bounds z_j = b_j (b_j = ub_j or lb_j), the solution satisfies

    Q z + q + Aᵀλ + G_𝒜ᵀμ_𝒜 + E_𝒜ᵀν_𝒜 = 0,   A z = c,   G_𝒜 z = h_𝒜,   E_𝒜 z = b_𝒜,

(E_𝒜: rows of the identity), and the multipliers of the inactive constraints are zero and stay
zero. Differentiating gives one symmetric system K dx = r in x = (z, λ, μ, ν),

        [ Q    Aᵀ   G̃ᵀ    Ẽᵀ   ]
    K = [ A    0    0     0    ],   G̃ = D_G G,  Ẽ = D_B,  D_G, D_B the 0/1 active masks,
        [ G̃    0   D_G−I  0    ]
        [ Ẽ    0    0    D_B−I ]

(an inactive row i becomes the decoupled equation −dμᵢ = rᵢ: a fixed shape for every batch
element whatever its active set, and −I keeps K symmetric). For a loss ℓ with incoming
gradients g = (g_z, g_λ, g_μ, g_ν) (g_μ, g_ν taken on the active constraints only), one adjoint
solve d = −K⁻¹g gives, by the signs of the Lagrangian above,

    ∂ℓ/∂q = d_z                   ∂ℓ/∂Q = ½(d_z zᵀ + z d_zᵀ)   (only sym(Q) enters)
    ∂ℓ/∂c = −d_λ                  ∂ℓ/∂A = d_λ zᵀ + λ d_zᵀ
    ∂ℓ/∂h = −D_G d_μ              ∂ℓ/∂G = D_G d_μ zᵀ + μ_𝒜 d_zᵀ
    ∂ℓ/∂ub_j = −d_ν,j  (j at its upper bound),  ∂ℓ/∂lb_j = −d_ν,j  (j at its lower bound),

each summed over the batch dimensions along which its input was broadcast, and zero for
elements that failed (info ≠ 0). (Derivation: with F(x, θ) = 0 the active KKT conditions,
dℓ = gᵀdx = −gᵀK⁻¹ ∂F/∂θ dθ = dᵀ ∂F/∂θ dθ, and ∂F/∂θ dθ = (dQ z + dq + dAᵀλ + dGᵀμ,
dA z − dc, dG_𝒜 z − dh_𝒜, −db_𝒜).)

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
  its LU factorization meets a zero pivot or gives a non-finite result, the adjoint system is
  solved in the least-squares sense (minimum norm, LAPACK gelsd): finite and deterministic. (A
  K singular only up to rounding can still give large finite gradients there.)

The system actually solved is an equivalent smaller one: active bounds eliminated, active rows
and free coordinates sorted to the front and cut at the batch's largest counts (see
`_qp_adjoint_impl`), one batched LU (torch.linalg.solve_ex) for the whole batch.

Operators (torch.library, with fake implementations, so ``torch.compile(fullgraph=True)``
traces them): ``fastkkt::qp_solve`` (the forward, `fastkkt.solve_qp_ex`) and
``fastkkt::qp_adjoint`` (the adjoint solve above); the outer products are torch operations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import torch

from fastkkt import _qp
from fastkkt import _validate as v
from fastkkt._errors import QPError
from fastkkt._qp import QPSolution
from fastkkt._status import QP_SOLVED
from fastkkt._torch_common import Function, np_view, prepare, traced

__all__ = ["solve_qp", "solve_qp_ex"]

TensorLike = Union[torch.Tensor, np.ndarray, Sequence[Any], float, int]
Tensor = torch.Tensor


def _np(t: Tensor | None) -> np.ndarray | None:
    return None if t is None else np_view(t)


# --------------------------------------------------------------------------------------------
# the forward operator


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
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(z, lam, mu, nu, info, iterations) = ``fastkkt.solve_qp_ex`` on the tensors' data;
    with `check_errors`, QPError for failed elements (as ``fastkkt.solve_qp``)."""
    sol = _qp.solve_qp_ex(
        np_view(Q), np_view(q), A=_np(A), c=_np(c), G=_np(G), h=_np(h), lb=_np(lb), ub=_np(ub),
        tol=tol, max_iter=max_iter, check_finite=check_finite,
    )  # fmt: skip
    if check_errors and sol.info.any():
        raise QPError(sol.info)
    return tuple(torch.from_numpy(x) for x in sol)  # type: ignore[return-value]


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
def _qp_solve_fake(Q, q, A, c, G, h, lb, ub, tol, max_iter, check_finite, check_errors):  # type: ignore[no-untyped-def]
    batch, n, m, p = _batch(Q, q, A, c, G, h, lb, ub)
    info = Q.new_empty(batch, dtype=torch.int32)
    return (
        Q.new_empty((*batch, n)),
        Q.new_empty((*batch, m)),
        Q.new_empty((*batch, p)),
        Q.new_empty((*batch, n)),
        info,
        torch.empty_like(info),
    )


# --------------------------------------------------------------------------------------------
# the adjoint operator


def _qp_adjoint_impl(
    Q: Tensor,
    A: Tensor | None,
    G: Tensor | None,
    h: Tensor | None,
    lb: Tensor | None,
    ub: Tensor | None,
    z: Tensor,
    lam: Tensor,
    mu: Tensor,
    nu: Tensor,
    info: Tensor,
    gz: Tensor,
    glam: Tensor,
    gmu: Tensor,
    gnu: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(d_z, d_λ, D_G d_μ, d_ν on upper-active, d_ν on lower-active, μ_𝒜): the adjoint solve
    d = −K⁻¹g of the module docstring, for the active set of its rule; zero for failed
    elements. All outputs have the batch shape of `info`.

    The system solved is smaller than K but equivalent: (1) the active bounds are eliminated —
    their rows say d_zⱼ = r_νⱼ, so those coordinates become identity rows with known values
    moved to the right-hand side, and d_νⱼ is read off row zⱼ afterwards; (2) each element's
    active rows of G are moved to the front (a stable sort) and the system is cut after the
    most active rows of any element, k = max |𝒜_G|, the rest of each element's k slots being
    the decoupled −dμ = 0 rows; (3) likewise the free coordinates are sorted to the front and
    the system cut after n_f = the most free coordinates of any element. Size n_f + m + k
    instead of 2n + m + p; one batched LU (svm: 570 → 59).
    """
    batch, n, m, p = tuple(info.shape), z.shape[-1], lam.shape[-1], mu.shape[-1]
    dt = z.dtype
    B = math.prod(batch)
    ok = (info == QP_SOLVED).reshape(B)
    all_ok = bool(ok.all())
    okc = ok[:, None]
    zf = z.reshape(B, n)
    muf = mu.reshape(B, p)
    nuf = nu.reshape(B, n)
    if not all_ok:
        zf, muf, nuf = (torch.where(okc, x, 0) for x in (zf, muf, nuf))
    Qe = Q.expand(*batch, n, n).reshape(B, n, n)
    Qs = 0.5 * (Qe + Qe.mT)
    Ae = A.expand(*batch, m, n).reshape(B, m, n) if m else z.new_zeros((B, 0, n))  # type: ignore[union-attr]
    # active rows of G, gathered to the front
    act_g = torch.zeros((B, p), dtype=torch.bool)
    k = 0
    if p:
        Ge = G.expand(*batch, p, n).reshape(B, p, n)  # type: ignore[union-attr]
        he = h.expand(*batch, p).reshape(B, p)  # type: ignore[union-attr]
        slack = he - (Ge @ zf.unsqueeze(-1)).squeeze(-1)
        act_g = (muf > slack.clamp(min=0)) & okc
        k = int(act_g.sum(1).max()) if B else 0
    if k:
        rows = torch.argsort((~act_g).to(torch.int8), dim=1, stable=True)[:, :k]
        valid = act_g.gather(1, rows)
        Gk = Ge.gather(1, rows.unsqueeze(-1).expand(B, k, n)) * valid.unsqueeze(-1).to(dt)
    else:
        rows = torch.zeros((B, 0), dtype=torch.int64)
        valid = torch.zeros((B, 0), dtype=torch.bool)
        Gk = z.new_zeros((B, 0, n))
    C = torch.cat([Ae, Gk], dim=1)  # (B, m + k, n): the constraint rows kept
    # active bounds
    up = lo = torch.zeros((B, n), dtype=torch.bool)
    if lb is not None or ub is not None:
        inf = torch.tensor(math.inf, dtype=dt)
        lbe = (lb if lb is not None else -inf).expand(*batch, n).reshape(B, n)
        ube = (ub if ub is not None else inf).expand(*batch, n).reshape(B, n)
        fixed = lbe == ube
        up = ((nuf > (ube - zf).clamp(min=0)) | (fixed & (nuf >= 0))) & okc
        lo = ((-nuf > (zf - lbe).clamp(min=0)) | (fixed & (nuf < 0))) & okc
    act_b = up | lo
    a = act_b.to(dt)
    free = 1 - a
    # right-hand sides: r_x = −(g_z, g_λ, g_μ on the kept active rows), r_ν = −g_ν (active)
    gmu_k = gmu.reshape(B, p).gather(1, rows) * valid if k else gmu.new_zeros((B, 0))
    rz, rc = -gz.reshape(B, n), -torch.cat([glam.reshape(B, m), gmu_k], dim=1)
    fz = -gnu.reshape(B, n) * a  # the known d_z of the active coordinates
    if not all_ok:
        rz, rc, fz = (torch.where(okc, x, 0) for x in (rz, rc, fz))
    # right-hand sides with the known d_z of the active coordinates moved over
    rzf = free * (rz - (Qs @ fz.unsqueeze(-1)).squeeze(-1)) + fz
    rcf = rc - (C @ fz.unsqueeze(-1)).squeeze(-1)
    # the free coordinates first (a stable sort), the system cut after the most free
    # coordinates of any element; the active ones left in that window are identity rows
    nf = int((~act_b).sum(1).max()) if B else n
    if nf < n:
        cols = torch.argsort(act_b.to(torch.int8), dim=1, stable=True)[:, :nf]
        Qc = Qs.gather(1, cols.unsqueeze(-1).expand(B, nf, n))
        Qc = Qc.gather(2, cols.unsqueeze(1).expand(B, nf, nf))
        Cc = C.gather(2, cols.unsqueeze(1).expand(B, m + k, nf))
        fr, rzc = free.gather(1, cols), rzf.gather(1, cols)
    else:
        Qc, Cc, fr, rzc = Qs, C, free, rzf
    N = nf + m + k
    K = z.new_empty((B, N, N))
    if bool(act_b.any()):
        K[:, :nf, :nf] = Qc * (fr.unsqueeze(-1) * fr.unsqueeze(-2)) + torch.diag_embed(1 - fr)
        Cf = Cc * fr.unsqueeze(1)
    else:  # no active bound anywhere: nothing to mask
        K[:, :nf, :nf] = Qc
        Cf = Cc
    K[:, nf:, :nf] = Cf
    K[:, :nf, nf:] = Cf.mT
    K[:, nf:, nf:] = torch.diag_embed(torch.cat([z.new_zeros((B, m)), valid.to(dt) - 1], dim=1))
    if not all_ok:  # failed elements: an identity system (zero right-hand side)
        K = torch.where(ok[:, None, None], K, torch.eye(N, dtype=dt))
    rhs = torch.cat([rzc, rcf], dim=1)
    if N:
        d, linfo = torch.linalg.solve_ex(K, rhs.unsqueeze(-1))
        d = d.squeeze(-1)
        bad = (linfo != 0) | ~torch.isfinite(d).all(-1)
    else:
        d, bad = rhs, torch.zeros(B, dtype=torch.bool)
    if bool(bad.any()):  # singular K (degenerate point): the minimum-norm solution
        idx = bad.nonzero().squeeze(-1)
        sol = torch.linalg.lstsq(
            K[idx].to(torch.float64), rhs[idx].to(torch.float64).unsqueeze(-1), driver="gelsd"
        )
        d = d.index_copy(0, idx, sol.solution.squeeze(-1).to(dt))
    if not all_ok:
        d = torch.where(okc, d, 0)
    dz = d[:, :nf] if nf == n else fz.scatter(1, cols, d[:, :nf])
    dc = d[:, nf:]
    # d_ν of the active coordinates from their stationarity rows
    if bool(act_b.any()):
        Hd = (Qs @ dz.unsqueeze(-1) + C.mT @ dc.unsqueeze(-1)).squeeze(-1)
        dnu = a * (rz - Hd)
    else:
        dnu = torch.zeros_like(dz)
    dlam = dc[:, :m]
    dmu = z.new_zeros((B, p))
    if k:
        dmu = dmu.scatter(1, rows, dc[:, m:] * valid)
    mu_act = muf * act_g
    out = (dz, dlam, dmu, dnu * up, dnu * lo, mu_act)
    shapes = (n, m, p, n, n, p)
    return tuple(x.reshape(*batch, s).contiguous() for x, s in zip(out, shapes))  # type: ignore[return-value]


_qp_adjoint = torch.library.custom_op("fastkkt::qp_adjoint", mutates_args=(), device_types="cpu")(
    _qp_adjoint_impl
)


@_qp_adjoint.register_fake
def _qp_adjoint_fake(Q, A, G, h, lb, ub, z, lam, mu, nu, info, gz, glam, gmu, gnu):  # type: ignore[no-untyped-def]
    return (
        torch.empty_like(z),
        torch.empty_like(lam),
        torch.empty_like(mu),
        torch.empty_like(z),
        torch.empty_like(z),
        torch.empty_like(mu),
    )


# --------------------------------------------------------------------------------------------
# the differentiation rule


def _setup(ctx: Any, inputs: tuple, output: tuple) -> None:
    Q, q, A, c, G, h, lb, ub = inputs[:8]
    z, lam, mu, nu, info, _ = output
    ctx.save_for_backward(Q, A, G, h, lb, ub, z, lam, mu, nu, info)
    ctx.shapes = [None if t is None else tuple(t.shape) for t in (Q, q, A, c, G, h, lb, ub)]
    ctx.set_materialize_grads(False)


def _outer(u: Tensor, v: Tensor, target: tuple) -> Tensor:
    """Σ over the broadcast batch dimensions of u vᵀ, shape `target` = (*tb, k, l)."""
    batch = tuple(u.shape[:-1])
    tb = tuple(target[:-2])
    if math.prod(tb) == math.prod(batch):
        return (u.unsqueeze(-1) * v.unsqueeze(-2)).reshape(target)
    if len(tb) == 0 or math.prod(tb) == 1:
        return (u.reshape(-1, u.shape[-1]).mT @ v.reshape(-1, v.shape[-1])).reshape(target)
    return (u.unsqueeze(-1) * v.unsqueeze(-2)).sum_to_size(target)


def _backward(ctx: Any, gz: Any, glam: Any, gmu: Any, gnu: Any, *_: Any) -> tuple:
    Q, A, G, h, lb, ub, z, lam, mu, nu, info = ctx.saved_tensors
    need = ctx.needs_input_grad[:8]
    grads: list[Any] = [None] * len(ctx.needs_input_grad)
    if not any(need):
        return tuple(grads)
    gz = torch.zeros_like(z) if gz is None else gz
    glam = torch.zeros_like(lam) if glam is None else glam
    gmu = torch.zeros_like(mu) if gmu is None else gmu
    gnu = torch.zeros_like(nu) if gnu is None else gnu
    op = torch.ops.fastkkt.qp_adjoint if traced(z) else _qp_adjoint_impl
    dz, dlam, dmu, dnu_up, dnu_lo, mu_act = op(
        Q, A, G, h, lb, ub, z, lam, mu, nu, info, gz, glam, gmu, gnu
    )
    ok = (info == QP_SOLVED).unsqueeze(-1)
    zf = torch.where(ok, z, 0)
    sQ, sq, sA, sc, sG, sh, slb, sub = ctx.shapes
    if need[0]:
        grads[0] = 0.5 * (_outer(dz, zf, sQ) + _outer(zf, dz, sQ))
    if need[1]:
        grads[1] = dz.sum_to_size(sq)
    if need[2]:
        lamf = torch.where(ok, lam, 0)
        grads[2] = _outer(dlam, zf, sA) + _outer(lamf, dz, sA)
    if need[3]:
        grads[3] = (-dlam).sum_to_size(sc)
    if need[4]:
        grads[4] = _outer(dmu, zf, sG) + _outer(mu_act, dz, sG)
    if need[5]:
        grads[5] = (-dmu).sum_to_size(sh)
    if need[6]:
        grads[6] = (-dnu_lo).sum_to_size(slb)
    if need[7]:
        grads[7] = (-dnu_up).sum_to_size(sub)
    return tuple(grads)


_qp_solve.register_autograd(_backward, setup_context=_setup)


class _Solve(Function):
    """``fastkkt::qp_solve`` for eager calls (without the dispatcher's Python hops)."""

    @staticmethod
    def forward(*args: Any) -> tuple:  # type: ignore[override]
        return _qp_solve_impl(*args)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        _setup(ctx, inputs, output)
        ctx.mark_non_differentiable(output[4], output[5])

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
    extra = (float(tol), int(max_iter), bool(check_finite), check)
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return torch.ops.fastkkt.qp_solve(*ts, *extra)
    grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in ts)
    if grad:
        return _Solve.apply(*ts, *extra)
    return _qp_solve_impl(*ts, *extra)  # type: ignore[arg-type, call-arg]


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
