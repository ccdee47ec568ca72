"""fastkkt.torch under torch.func (grad, vmap, jvp, jacrev, jacfwd, hessian) and forward-mode
AD (torch.autograd.forward_ad), against the pure-NumPy reference solution, autograd through
``torch.linalg.solve`` on the assembled KKT matrix, loops and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.autograd import forward_ad as fwAD  # noqa: E402
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vmap  # noqa: E402
from torch_reference import F64, SHAPES, reference, shaped, tensors  # noqa: E402

import fastkkt  # noqa: E402
import fastkkt.torch as ft  # noqa: E402

# torch's forward-mode AD loads its jvp decompositions on first use with torch.jit.script,
# which warns (torch 2.13) — a warning from torch itself, not from fastkkt.
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)


def _solve(Q, q, A, c):
    return ft.solve(Q, q, A, c, return_multipliers=True)


def _tangents(inputs, seed):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(x.shape, generator=gen, dtype=x.dtype) for x in inputs)


@pytest.mark.parametrize("case", SHAPES)
def test_jvp_matches_reference_and_finite_differences(case):
    inputs = shaped(SHAPES[case], seed=1, grad=False)
    tangents = _tangents(inputs, 2)
    _, (dz, dlam) = jvp(_solve, inputs, tangents)
    _, (dz_ref, dlam_ref) = jvp(reference, inputs, tangents)
    torch.testing.assert_close(dz, dz_ref, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(dlam, dlam_ref, rtol=1e-9, atol=1e-11)
    h = 1e-6  # central differences of fastkkt.solve along the tangent
    plus = fastkkt.solve(*(x + h * t for x, t in zip(inputs, tangents)), return_multipliers=True)
    minus = fastkkt.solve(*(x - h * t for x, t in zip(inputs, tangents)), return_multipliers=True)
    for d, p, m in zip((dz, dlam), plus, minus):
        np.testing.assert_allclose(d.numpy(), (p - m) / (2 * h), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("case", ["batched", "shared_Q_A", "broadcast_mixed"])
@pytest.mark.parametrize("mode", [jacrev, jacfwd], ids=["jacrev", "jacfwd"])
def test_jacobians_match_reference(case, mode):
    inputs = shaped(SHAPES[case], seed=3, grad=False)
    got = mode(_solve, argnums=(0, 1, 2, 3))(*inputs)
    want = jacrev(reference, argnums=(0, 1, 2, 3))(*inputs)
    for out, out_ref in zip(got, want):  # z, λ
        for g, w in zip(out, out_ref):  # with respect to Q, q, A, c
            assert g.shape == w.shape
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-11)


def test_func_hessian_matches_reference():
    Q, q, A, c = shaped(SHAPES["shared_Q_A"], seed=4, grad=False)

    def loss(fn):
        def f(Q, q):
            z, lam = fn(Q, q, A, c)
            return z.square().sum() + (z.sum() * lam).sum()

        return f

    got = hessian(loss(_solve), argnums=(0, 1))(Q, q)
    want = hessian(loss(reference), argnums=(0, 1))(Q, q)
    for row, row_ref in zip(got, want):
        for g, w in zip(row, row_ref):
            torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-10)


def test_per_sample_gradients_vmap_grad():
    """vmap(grad(loss)) over a batch (Q shared, q, A, c per sample) against a loop of
    autograd gradients, one problem at a time, through torch.linalg.solve."""
    Qb, q, A, c = tensors(5, 4, 2, seed=5, grad=False)
    Q = Qb[0]

    def loss(Q, q, A, c):
        z, lam = _solve(Q, q, A, c)
        return z.square().sum() + lam.sum()

    got = vmap(grad(loss, argnums=(0, 1, 2, 3)), in_dims=(None, 0, 0, 0))(Q, q, A, c)
    for i in range(5):
        xs = [x.detach().clone().requires_grad_() for x in (Q, q[i], A[i], c[i])]
        z, lam = reference(*xs)
        want = torch.autograd.grad(z.square().sum() + lam.sum(), xs)
        for g, w in zip(got, want):
            torch.testing.assert_close(g[i], w, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize(
    "in_dims", [(0, 0, 0, 0), (None, 0, None, 0), (0, None, None, None), (None, 1, 2, None)]
)
def test_vmap_matches_reference_solve(in_dims):
    """vmap over any subset of the operands (also along a dimension other than the first),
    with the other operands broadcast, against fastkkt.reference.solve element by element."""
    gen = torch.Generator().manual_seed(6)
    Q, q, A, c = tensors(3, 4, 2, seed=6, grad=False)  # batch 3 inside the vmapped function
    V = 2
    ext = [Q, q, A, c]
    for i, d in enumerate(in_dims):
        if d is not None:
            shape = list(ext[i].shape)
            shape.insert(d, V)
            noise = 0.1 * torch.randn(shape, generator=gen, dtype=F64)
            ext[i] = ext[i].unsqueeze(d) + noise
    z, lam = vmap(_solve, in_dims=in_dims)(*ext)
    assert z.shape == (V, 3, 4)
    assert lam.shape == (V, 3, 2)
    for v in range(V):
        args = [x.select(d, v) if d is not None else x for x, d in zip(ext, in_dims)]
        zr, lr = fastkkt.reference.solve(*(a.numpy() for a in args), return_multipliers=True)
        np.testing.assert_allclose(z[v].numpy(), zr, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(lam[v].numpy(), lr, rtol=1e-10, atol=1e-12)


def test_vmap_solve_ex_and_shape_errors():
    Q, q, A, c = tensors(4, 3, 2, seed=7, grad=False)
    A[2, 1] = 2 * A[2, 0]  # one singular element
    z, _, info = vmap(ft.solve_ex, in_dims=(0, 0, 0, None))(Q, q, A, c[0])
    assert info.tolist() == [0, 0, 1, 0]
    assert torch.isnan(z[2]).all()
    good = [0, 1, 3]
    zr = fastkkt.reference.solve(Q[good].numpy(), q[good].numpy(), A[good].numpy(), c[0].numpy())
    np.testing.assert_allclose(z[good].numpy(), zr, rtol=1e-10, atol=1e-12)
    match = r"q must have shape \(\.\.\., n\) with n = 3, got shape \(5,\)"  # the vmapped shape
    with pytest.raises(ValueError, match=match):
        vmap(ft.solve, in_dims=(0, 0, 0, None))(Q, torch.zeros(4, 5, dtype=F64), A, c[0])


@pytest.mark.parametrize("requires_grad", [False, True])
def test_forward_ad_dual_inputs(requires_grad):
    """A dual tensor as input (requiring grad or not) gets its tangent through the solve."""
    inputs = shaped(SHAPES["broadcast_mixed"], seed=8, grad=requires_grad)
    tangents = _tangents(inputs, 9)
    _, (dz_ref, dlam_ref) = jvp(reference, tuple(x.detach() for x in inputs), tangents)
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x, t) for x, t in zip(inputs, tangents)]
        z, lam = _solve(*duals)
        dz, dlam = fwAD.unpack_dual(z).tangent, fwAD.unpack_dual(lam).tangent
        assert dz is not None
        assert dlam is not None
        torch.testing.assert_close(dz, dz_ref, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(dlam, dlam_ref, rtol=1e-9, atol=1e-11)
        # only q dual, no grad mode: still a tangent
        with torch.no_grad():
            zq = ft.solve(inputs[0], fwAD.make_dual(inputs[1].detach(), tangents[1]), *inputs[2:])
        assert fwAD.unpack_dual(zq).tangent is not None


def test_forward_ad_zero_tangent_for_failed_elements():
    Q, q, A, c = tensors(3, 3, 2, seed=10, grad=False)
    A[1, 1] = A[1, 0]
    _, (dz, dlam, _) = jvp(ft.solve_ex, (Q, q, A, c), _tangents((Q, q, A, c), 11))
    assert not dz[1].any()
    assert not dlam[1].any()
    assert torch.isfinite(dz).all()
