"""An independent computation of the torch QP layer's gradients, for tests: the adjoint of
the active KKT system assembled and solved in PyTorch (its active-set rule evaluated in Python,
one batched LU by torch.linalg.solve_ex, least squares where that fails), and the outer
products as torch operations — the pure-Python backward pass that fastkkt.torch.solve_qp used
before its C++ adjoint (cpp/include/fastkkt/qp_adjoint.hpp), kept here as the yardstick.

The mathematics (Amos & Kolter 2017): with the active KKT matrix K (module docstring of
fastkkt/_torch_qp.py) and the incoming gradients g of (z, λ, μ, ν), d = −K⁻¹g and
∂q = d_z, ∂Q = ½(d_z zᵀ + z d_zᵀ), ∂c = −d_λ, ∂A = d_λ zᵀ + λ d_zᵀ, ∂h = −D_G d_μ,
∂G = D_G d_μ zᵀ + μ_𝒜 d_zᵀ, ∂ub = −d_ν (upper-active), ∂lb = −d_ν (lower-active).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

NAMES = ("Q", "q", "A", "c", "G", "h", "lb", "ub")


def _adjoint_vectors(
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
    ok = (info == 0).reshape(B)
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


def _outer(u: Tensor, v: Tensor, target: tuple) -> Tensor:
    """Σ over the broadcast batch dimensions of u vᵀ, shape `target` = (*tb, k, l)."""
    batch = tuple(u.shape[:-1])
    tb = tuple(target[:-2])
    if math.prod(tb) == math.prod(batch):
        return (u.unsqueeze(-1) * v.unsqueeze(-2)).reshape(target)
    if len(tb) == 0 or math.prod(tb) == 1:
        return (u.reshape(-1, u.shape[-1]).mT @ v.reshape(-1, v.shape[-1])).reshape(target)
    return (u.unsqueeze(-1) * v.unsqueeze(-2)).sum_to_size(target)


def reference_grads(inputs: dict, sol, g: dict) -> dict:
    """The gradients of the inputs (dict name -> tensor in the compute dtype, absent ones
    missing) for the solution `sol` (QPSolution of tensors) and incoming gradients g (dict of
    z, lam, mu, nu; missing ones zero), each of its input's shape."""
    Q, A, G, h, lb, ub = (inputs.get(k) for k in ("Q", "A", "G", "h", "lb", "ub"))
    z, lam, mu, nu, info = (t.detach() for t in (sol.z, sol.lam, sol.mu, sol.nu, sol.info))
    gz, glam, gmu, gnu = (g.get(k, torch.zeros_like(x)) for k, x in zip(
        ("z", "lam", "mu", "nu"), (z, lam, mu, nu)))  # fmt: skip
    with torch.no_grad():
        dz, dlam, dmu, dnu_up, dnu_lo, mu_act = _adjoint_vectors(
            Q, A, G, h, lb, ub, z, lam, mu, nu, info, gz, glam, gmu, gnu
        )
        ok = (info == 0).unsqueeze(-1)
        zf = torch.where(ok, z, 0)
        lamf = torch.where(ok, lam, 0)
        shape = {k: tuple(v.shape) for k, v in inputs.items()}
        out = {}
        if "Q" in shape:
            out["Q"] = 0.5 * (_outer(dz, zf, shape["Q"]) + _outer(zf, dz, shape["Q"]))
        if "q" in shape:
            out["q"] = dz.sum_to_size(shape["q"])
        if "A" in shape:
            out["A"] = _outer(dlam, zf, shape["A"]) + _outer(lamf, dz, shape["A"])
            out["c"] = (-dlam).sum_to_size(shape["c"])
        if "G" in shape:
            out["G"] = _outer(dmu, zf, shape["G"]) + _outer(mu_act, dz, shape["G"])
            out["h"] = (-dmu).sum_to_size(shape["h"])
        if "lb" in shape:
            out["lb"] = (-dnu_lo).sum_to_size(shape["lb"])
        if "ub" in shape:
            out["ub"] = (-dnu_up).sum_to_size(shape["ub"])
    return out
