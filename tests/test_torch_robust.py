"""fastkkt.torch with failing elements: zero, finite gradients, and training that survives them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fastkkt.testing import kkt_matrix, psd_qp, random_qp

torch = pytest.importorskip("torch")
import fastkkt.torch as fkt  # noqa: E402


def _mixed_batch(dtype=torch.float64):
    """12 good problems, then 4 singular (repeated A row) and 4 saddles (−Q on null(A))."""
    Q, q, A, c = random_qp(20, 6, 2, seed=40)
    A[12:16, 1] = A[12:16, 0]
    Qs = psd_qp(4, 6, 2, seed=41)[0]
    Q[16:], A[16:] = -Qs, psd_qp(4, 6, 2, seed=41)[2]
    expected = np.r_[np.zeros(12), np.ones(4), 2 * np.ones(4)].astype(np.int32)
    return [torch.tensor(x, dtype=dtype) for x in (Q, q, A, c)], expected


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_failed_elements_get_zero_finite_gradients(dtype):
    ts, expected = _mixed_batch(dtype)
    ts = [t.requires_grad_() for t in ts]
    z, lam, info = fkt.solve_ex(*ts)
    np.testing.assert_array_equal(info.numpy(), expected)
    ok = (info == 0).unsqueeze(-1)
    assert torch.isnan(z[~ok.squeeze(-1)]).all()
    w = torch.linspace(-1, 1, 6, dtype=dtype)
    loss = (torch.where(ok, z, 0) * w).sum() + torch.where(ok, lam, 0).sum()
    grads = torch.autograd.grad(loss, ts)
    for g in grads:
        assert torch.isfinite(g).all()
        assert not g[12:].any(), "failed elements must contribute exactly zero"
    # good elements: the gradient of the same loss through torch.linalg.solve on K
    Qd, qd, Ad, cd = (t.detach()[:12].double().requires_grad_() for t in ts)
    K = torch.cat(
        [torch.cat([(Qd + Qd.mT) / 2, Ad.mT], -1), torch.cat([Ad, torch.zeros(12, 2, 2)], -1)], -2
    )
    x = torch.linalg.solve(K, torch.cat([-qd, cd], -1))
    loss_ref = (x[:, :6] * w.double()).sum() + x[:, 6:].sum()
    ref = torch.autograd.grad(loss_ref, (Qd, qd, Ad, cd))
    tol = 1e-10 if dtype == torch.float64 else 2e-3
    for g, r in zip(grads, ref):
        torch.testing.assert_close(g[:12].double(), r, rtol=tol, atol=tol)


def test_training_with_bad_problems_masked_out_stays_finite():
    """A small model whose batches contain singular and saddle problems, masked out of the
    loss with info, trains for 50 steps without NaN and reduces the loss."""
    gen = torch.Generator().manual_seed(0)
    n, m, B = 5, 2, 32
    Q0, _, A0, c0 = random_qp(B, n, m, seed=50)
    A0, c0 = torch.tensor(A0), torch.tensor(c0)
    Qbase = torch.tensor(Q0)
    feats = torch.randn(B, 3, generator=gen, dtype=torch.float64)
    W_true = torch.randn(3, n, generator=gen, dtype=torch.float64)
    with torch.no_grad():  # the teacher: the same layer with known q = feats @ W_true
        target = fkt.solve(Qbase + torch.eye(n, dtype=torch.float64), feats @ W_true, A0, c0)
    model = torch.nn.Linear(3, n, dtype=torch.float64)
    L = torch.nn.Parameter(torch.eye(n, dtype=torch.float64))
    opt = torch.optim.Adam([*model.parameters(), L], lr=0.05)
    losses = []
    for step in range(50):
        A = A0.clone()
        Qb = Qbase.clone()
        bad = torch.randint(0, B, (4,), generator=gen)
        A[bad[:2], 1] = A[bad[:2], 0]  # singular: dependent rows
        Qb[bad[2:]] = -Qb[bad[2:]] - 5 * torch.eye(n, dtype=torch.float64)  # saddle
        Q = Qb + L @ L.mT
        q = model(feats)
        z, _, info = fkt.solve_ex(Q, q, A, c0)
        ok = info == 0
        assert (~ok).sum() >= 1 or step > 0
        zm = torch.where(ok.unsqueeze(-1), z, 0)
        tm = torch.where(ok.unsqueeze(-1), target, 0)
        loss = ((zm - tm) ** 2).sum() / ok.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
        for p in [*model.parameters(), L]:
            assert torch.isfinite(p).all()
            assert torch.isfinite(p.grad).all()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses


def _np_problem():
    Q, q, A, c = random_qp((), 3, 1, seed=60)
    return Q, q, A, c


def _negative(x):
    return np.flip(np.flip(x, -1).copy(), -1)


def _bigendian(x):
    return x.astype(">f8")


@pytest.mark.parametrize("layout", [_negative, _bigendian], ids=lambda f: f.__name__)
def test_numpy_layouts_torch_cannot_represent(layout):
    Q, q, A, c = _np_problem()
    z = fkt.solve(layout(Q), q, A, c)
    K = kkt_matrix(Q, A)
    x = np.linalg.solve(K, np.r_[-q, c])
    np.testing.assert_allclose(z.numpy(), x[:3], rtol=1e-12)


def test_read_only_ndarray_does_not_warn():
    # torch warns once per process, so the check runs in a fresh interpreter
    code = (
        "import numpy as np, fastkkt.torch as fkt\n"
        "from fastkkt.testing import random_qp\n"
        "Q, q, A, c = random_qp((), 3, 1, seed=60)\n"
        "Q.flags.writeable = False\n"
        "fkt.solve(Q, q, A, c)\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, capture_output=True)
