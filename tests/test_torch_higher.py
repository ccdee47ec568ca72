"""Second and higher derivatives of fastkkt.torch: the backward pass is itself differentiable.

Checked against finite differences (gradgradcheck; central differences of the gradient) and
against autograd through ``torch.linalg.solve`` on the assembled KKT matrix, for one problem,
a batch, and Q and A shared across a batch."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch_reference import F64, SHAPES, reference, shaped, tensors  # noqa: E402

import fastkkt.torch as ft  # noqa: E402


def _solve(Q, q, A, c):
    return ft.solve(Q, q, A, c, return_multipliers=True)


def _loss(fn, wz, wl):
    """A scalar loss of z and λ that is not linear in them: Σ wz·z² + Σ wl·λ + (Σ z)(Σ λ)."""

    def loss(Q, q, A, c):
        z, lam = fn(Q, q, A, c)
        return (wz * z.square()).sum() + (wl * lam).sum() + z.sum() * lam.sum()

    return loss


def _weights(case, seed=0):
    z, lam = reference(*shaped(SHAPES[case], grad=False))
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(z.shape, generator=gen, dtype=F64), torch.randn(
        lam.shape, generator=gen, dtype=F64
    )


@pytest.mark.parametrize("case", SHAPES)
def test_gradgradcheck(case):
    """Second derivatives of z and λ (both outputs checked) against finite differences of
    the first derivatives, for each input, also where Q and A are broadcast."""
    inputs = shaped(SHAPES[case])
    assert torch.autograd.gradgradcheck(_solve, inputs)


def test_gradgradcheck_unconstrained():
    Q, q, A, c = tensors(2, 3, 0)
    assert torch.autograd.gradgradcheck(lambda Q, q: ft.solve(Q, q, A, c), (Q, q))


@pytest.mark.parametrize("case", ["batched", "shared_Q_A", "broadcast_mixed"])
def test_hessian_matches_reference(case):
    """torch.autograd.functional.hessian of a loss of z and λ with respect to all four inputs
    (every block, mixed ones included) against the hessian through torch.linalg.solve."""
    inputs = shaped(SHAPES[case], seed=3, grad=False)
    wz, wl = _weights(case)
    got = torch.autograd.functional.hessian(_loss(_solve, wz, wl), inputs)
    want = torch.autograd.functional.hessian(_loss(reference, wz, wl), inputs)
    assert any(bool(g.abs().max() > 1e-3) for row in got for g in row)
    for i, (row, row_ref) in enumerate(zip(got, want)):
        for j, (g, w) in enumerate(zip(row, row_ref)):
            assert g.shape == w.shape, (i, j)
            torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-9, msg=f"block {i}, {j}")


def test_hessian_shared_Q_matches_finite_differences():
    """The Hessian with respect to a Q shared by a batch (one of the cases that used to be
    wrong) against central differences of the gradient."""
    Q, q, A, c = shaped(SHAPES["shared_Q_A"], seed=4, grad=False)
    wz, wl = _weights("shared_Q_A", seed=5)
    loss = _loss(_solve, wz, wl)

    def f(Q):
        return loss(Q, q, A, c)

    H = torch.autograd.functional.hessian(f, Q).reshape(16, 16)
    h = 1e-5
    fd = torch.empty(16, 16, dtype=F64)
    for k in range(16):
        e = torch.zeros(16, dtype=F64)
        e[k] = h
        gp = torch.autograd.functional.jacobian(f, Q + e.reshape(4, 4))
        gm = torch.autograd.functional.jacobian(f, Q - e.reshape(4, 4))
        fd[:, k] = ((gp - gm) / (2 * h)).reshape(16)
    assert H.abs().max() > 1e-2
    torch.testing.assert_close(H, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", SHAPES)
def test_first_order_paths_agree(case):
    """The fused first-order backward (create_graph=False) and the differentiable one
    (create_graph=True) are one rule: the same gradients, to rounding."""
    inputs = shaped(SHAPES[case], seed=6)
    wz, wl = _weights(case, seed=7)
    fast = torch.autograd.grad(_loss(_solve, wz, wl)(*inputs), inputs)
    graph = torch.autograd.grad(_loss(_solve, wz, wl)(*inputs), inputs, create_graph=True)
    for g, h in zip(fast, graph):
        assert h.requires_grad
        torch.testing.assert_close(g, h.detach(), rtol=1e-12, atol=1e-13)


def test_float32_second_derivatives_keep_dtype():
    inputs32 = shaped(SHAPES["batched"], seed=8, dtype=torch.float32)
    inputs64 = tuple(x.detach().double().requires_grad_() for x in inputs32)
    wz, wl = _weights("batched", seed=9)
    results = []
    for inputs, dt in ((inputs32, torch.float32), (inputs64, F64)):
        loss = _loss(_solve, wz.to(dt), wl.to(dt))(*inputs)
        (gq,) = torch.autograd.grad(loss, inputs[1], create_graph=True)
        second = torch.autograd.grad(gq.square().sum(), inputs)
        assert all(s.dtype == dt for s in second)
        results.append(second)
    for s32, s64 in zip(*results):
        scale = s64.abs().max()
        torch.testing.assert_close(s32.double(), s64, rtol=0, atol=2e-3 * float(scale))


@pytest.mark.parametrize("shared", [False, True])
def test_failed_elements_zero_second_derivatives(shared):
    """solve_ex with a singular element: its second-order contributions are exactly zero and
    the good elements' match the reference."""
    Q, q, A, c = tensors(4, 3, 2, seed=10, grad=False)
    A[2, 1] = 2 * A[2, 0]  # singular KKT matrix
    if shared:
        Q = Q[0].clone()
    inputs = tuple(x.clone().requires_grad_() for x in (Q, q, A, c))
    z, lam, info = ft.solve_ex(*inputs)
    assert info.tolist() == [0, 0, 1, 0]
    ok = (info == 0).unsqueeze(-1)
    loss = torch.where(ok, z, 0).square().sum() + torch.where(ok, lam, 0).sum()
    (gq,) = torch.autograd.grad(loss, inputs[1], create_graph=True)
    second = torch.autograd.grad(gq.square().sum(), inputs)
    good = [0, 1, 3]
    refs = tuple(x.detach().clone().requires_grad_() for x in inputs)
    Qr = refs[0] if shared else refs[0][good]
    zr, lr = reference(Qr, refs[1][good], refs[2][good], refs[3][good])
    (gqr,) = torch.autograd.grad(zr.square().sum() + lr.sum(), refs[1], create_graph=True)
    second_ref = torch.autograd.grad(gqr.square().sum(), refs)
    for s, r in zip(second, second_ref):
        assert torch.isfinite(s).all()
        if s.shape[:1] == (4,):
            assert not s[2].any()
        torch.testing.assert_close(s, r, rtol=1e-9, atol=1e-11)


def test_raw_operator_without_kept_factorization_is_differentiable():
    """The registered operator called with keep=False factors K again in its backward."""
    Q, q, A, c = tensors(3, 4, 2, seed=11)
    z, lam, *_ = torch.ops.fastkkt.kkt_solve(Q, q, A, c, True, False, False)
    (z.square().sum() + lam.sum()).backward()
    refs = tuple(x.detach().clone().requires_grad_() for x in (Q, q, A, c))
    zr, lr = reference(*refs)
    (zr.square().sum() + lr.sum()).backward()
    for x, r in zip((Q, q, A, c), refs):
        torch.testing.assert_close(x.grad, r.grad, rtol=1e-9, atol=1e-11)
