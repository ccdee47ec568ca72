"""The PyTorch layer: gradients against finite differences (gradcheck) and against autograd
through ``torch.linalg.solve`` on the assembled KKT matrix; errors; masking; torch.compile."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch_reference import F64, SHAPES, reference, shaped, tensors  # noqa: E402

import fastkkt  # noqa: E402
import fastkkt.torch as ft  # noqa: E402
from fastkkt import _torch_common  # noqa: E402
from fastkkt.testing import assert_allclose_normwise  # noqa: E402

_reference, _shaped, _tensors = reference, shaped, tensors


def _grads(fn, inputs, wz, wl):
    """Gradients of the loss Σ wz·z + Σ wl·λ (λ in the loss) with respect to `inputs`."""
    z, lam = fn(*inputs)
    loss = (wz * z).sum() + (wl * lam).sum()
    return torch.autograd.grad(loss, [x for x in inputs if x.requires_grad])


def _solve(Q, q, A, c):
    return ft.solve(Q, q, A, c, return_multipliers=True)


@pytest.mark.parametrize("case", SHAPES)
def test_gradcheck(case):
    inputs = _shaped(SHAPES[case])
    assert torch.autograd.gradcheck(_solve, inputs)  # z and λ both enter the checked loss


def test_gradcheck_unconstrained():
    Q, q, A, c = _tensors(2, 3, 0)
    assert torch.autograd.gradcheck(lambda Q, q: ft.solve(Q, q, A, c), (Q, q))


@pytest.mark.parametrize("case", SHAPES)
def test_matches_linalg_solve_autograd(case):
    inputs = _shaped(SHAPES[case], seed=1)
    z, lam = _solve(*inputs)
    z_ref, lam_ref = _reference(*inputs)
    assert z.shape == z_ref.shape
    assert lam.shape == lam_ref.shape
    torch.testing.assert_close(z, z_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(lam, lam_ref, rtol=1e-10, atol=1e-12)
    gen = torch.Generator().manual_seed(2)
    wz = torch.randn(z.shape, generator=gen, dtype=F64)
    wl = torch.randn(lam.shape, generator=gen, dtype=F64)
    got = _grads(_solve, inputs, wz, wl)
    want = _grads(_reference, inputs, wz, wl)
    for g, w, x in zip(got, want, inputs):
        assert g.shape == x.shape
        assert g.dtype == x.dtype
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-11)


def test_float32_gradients():
    inputs32 = _tensors(5, 6, 3, seed=3, dtype=torch.float32)
    inputs64 = tuple(x.detach().to(F64).requires_grad_() for x in inputs32)
    z, lam = _solve(*inputs32)
    assert z.dtype == lam.dtype == torch.float32
    gen = torch.Generator().manual_seed(4)
    wz, wl = torch.randn(5, 6, generator=gen), torch.randn(5, 3, generator=gen)
    got = _grads(_solve, inputs32, wz, wl)
    want = _grads(_reference, inputs64, wz.to(F64), wl.to(F64))
    for g, w in zip(got, want):
        assert g.dtype == torch.float32
        g2, w2 = g.detach().double().flatten(1).numpy(), w.flatten(1).numpy()
        assert_allclose_normwise(g2, w2, rtol=1e-3)


def test_mixed_dtypes_promote_and_gradients_keep_input_dtype():
    Q, q, A, c = _tensors((), 3, 1, seed=5)
    q32 = q.detach().float().requires_grad_()
    z = ft.solve(Q, q32, A, c)
    assert z.dtype == F64  # as NumPy promotes float32 with float64
    z.sum().backward()
    assert q32.grad.dtype == torch.float32
    assert Q.grad.dtype == F64


def test_requires_grad_on_some_inputs_only():
    Q, q, A, c = _tensors(3, 4, 2, seed=6, grad=False)
    q.requires_grad_()
    A.requires_grad_()
    z, lam = _solve(Q, q, A, c)
    (z.sum() + lam.square().sum()).backward()
    assert Q.grad is None
    assert c.grad is None
    qr, Ar = q.detach().requires_grad_(), A.detach().requires_grad_()
    zr, lr = _reference(Q, qr, Ar, c)
    (zr.sum() + lr.square().sum()).backward()
    torch.testing.assert_close(q.grad, qr.grad, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(A.grad, Ar.grad, rtol=1e-9, atol=1e-11)


@pytest.fixture
def keep_flags(monkeypatch):
    """Record the `keep` argument of every call of the fastkkt::kkt_solve implementation (eager
    calls reach it through an autograd.Function, compiled ones through the operator)."""
    calls: list[bool] = []
    impl = ft._kkt_solve_impl

    def spy(*args):
        calls.append(args[-1])
        return impl(*args)

    monkeypatch.setattr(ft, "_kkt_solve_impl", spy)
    return calls


def test_no_grad_keeps_no_factorization(keep_flags):
    Q, q, A, c = _tensors(2, 3, 1, seed=7)
    with torch.no_grad():
        z = ft.solve(Q, q, A, c)
    assert not z.requires_grad
    assert z.grad_fn is None
    z2 = ft.solve(*(x.detach() for x in (Q, q, A, c)))  # nothing requires grad
    assert z2.grad_fn is None
    z3 = ft.solve(Q, q, A, c)
    assert z3.grad_fn is not None
    assert keep_flags == [False, False, True]
    torch.testing.assert_close(z, z3.detach(), rtol=0, atol=0)


def test_module_with_optimizer_step():
    class Projection(torch.nn.Module):
        """z = argmin ‖z − r‖² s.t. a·z = b with learned a, b (Q = 2I, q = −2r)."""

        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Parameter(torch.tensor([[1.0, 0.5, -0.5]], dtype=F64))
            self.b = torch.nn.Parameter(torch.zeros(1, dtype=F64))

        def forward(self, r):
            return ft.solve(2 * torch.eye(3, dtype=F64), -2 * r, self.a, self.b)

    gen = torch.Generator().manual_seed(8)
    r = torch.randn(16, 3, generator=gen, dtype=F64)
    target = r - (r.sum(-1, keepdim=True) - 1.0) / 3  # projections onto 1·z = 1
    model = Projection()
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = (model(r) - target).square().sum(-1).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert model.a.grad is not None
    assert model.a.grad.shape == (1, 3)
    assert losses[-1] < 0.05 * losses[0]


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_torch_compile_fullgraph_forward_and_backward():
    class Layer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = torch.nn.Parameter(torch.tensor([0.5, -1.0], dtype=F64))

        def forward(self, Q, q, A):
            z, lam = ft.solve(Q, q, A, self.c, return_multipliers=True)
            return z.square().sum() + lam.sum()

    Q, q, A, _ = _tensors(3, 4, 2, seed=9, grad=False)
    layer = Layer()
    loss = torch.compile(layer, fullgraph=True)(Q, q, A)
    loss.backward()
    c = layer.c.detach().requires_grad_()
    z, lam = _reference(Q, q, A, c)
    loss_ref = z.square().sum() + lam.sum()
    loss_ref.backward()
    torch.testing.assert_close(loss.detach(), loss_ref.detach(), rtol=1e-10, atol=0)
    torch.testing.assert_close(layer.c.grad, c.grad, rtol=1e-9, atol=1e-11)


def test_opcheck():
    Q, q, A, c = _tensors(3, 4, 2, seed=10)
    plain = tuple(x.detach() for x in (Q, q, A, c))
    torch.library.opcheck(torch.ops.fastkkt.kkt_solve.default, (*plain, True, False, False))
    torch.library.opcheck(torch.ops.fastkkt.kkt_solve.default, (Q, q, A, c, True, False, True))
    out = [x.detach() for x in torch.ops.fastkkt.kkt_solve(Q, q, A, c, True, False, True)]
    z, lam, info, records, finfo = out
    grads = (torch.ones(3, 4, dtype=F64), torch.ones(3, 2, dtype=F64))
    torch.library.opcheck(
        torch.ops.fastkkt.kkt_solve_factored.default,
        (records, finfo, plain[0], grads[0], plain[2], grads[1]),
    )
    torch.library.opcheck(  # differentiable: the backward of the backward pass
        torch.ops.fastkkt.kkt_solve_factored.default,
        (records, finfo, Q, q, A, c),
    )
    for want in ((True, True), (False, True), (True, False)):
        torch.library.opcheck(
            torch.ops.fastkkt.kkt_backward.default,
            (records, finfo, *plain[::2], z, lam, info, *grads, *want),
        )


# ---------------------------------------------------------------------------------------
# errors, as in the NumPy API


@pytest.mark.parametrize(
    ("shapes", "match"),
    [
        (((4, 3), (3,), (2, 3), (2,)), r"Q must be square"),
        (((4, 4), (3,), (2, 4), (2,)), r"q must have shape \(\.\.\., n\) with n = 4"),
        (((4, 4), (4,), (2, 3), (2,)), r"A must have shape \(\.\.\., m, n\) with n = 4"),
        (((4, 4), (4,), (2, 4), (3,)), r"c must have shape \(\.\.\., m\) with m = 2"),
        (((2, 4, 4), (3, 4), (2, 4), (2,)), r"batch dimensions do not broadcast: Q \(2,\)"),
        (((4,), (4,), (2, 4), (2,)), r"Q must have shape \(\.\.\., n, n\)"),
    ],
)
def test_bad_shapes_raise_value_error(shapes, match):
    inputs = [torch.zeros(s, dtype=F64) for s in shapes]
    with pytest.raises(ValueError, match=match):
        ft.solve(*inputs)
    with pytest.raises(ValueError, match=match):
        ft.solve_ex(*inputs)


def test_nonfinite_input_raises_value_error():
    Q, q, A, c = _tensors(2, 3, 1, grad=False)
    q[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"q contains NaN or Inf \(batch element \(1,\)\)"):
        ft.solve_ex(Q, q, A, c)
    z, _, info = ft.solve_ex(Q, q, A, c, check_finite=False)
    assert info[0] == 0
    assert torch.isfinite(z[0]).all()


def test_kkt_error_names_failing_elements():
    Q, q, A, c = _tensors(3, 3, 2, grad=False)
    A[2, 1] = A[2, 0]  # rank-deficient A: singular KKT matrix
    with pytest.raises(fastkkt.KKTError, match=r"singular KKT matrix") as exc:
        ft.solve(Q, q, A, c)
    assert exc.value.indices == [(2,)]
    assert isinstance(exc.value, np.linalg.LinAlgError)


def test_complex_and_non_cpu_inputs():
    Q, q, A, c = _tensors((), 2, 1, grad=False)
    with pytest.raises(TypeError, match=r"Q has dtype torch\.complex128"):
        ft.solve(Q.to(torch.complex128), q, A, c)
    with pytest.raises(NotImplementedError, match="CPU tensors only"):
        ft.solve(Q, q.to("meta"), A, c)


# ---------------------------------------------------------------------------------------
# solve_ex masking, dtypes, layouts


@pytest.mark.parametrize("shared_Q", [False, True])
def test_solve_ex_masks_failed_elements(shared_Q):
    Q, q, A, c = _tensors(4, 3, 2, seed=11, grad=False)
    A[1, 1] = 2 * A[1, 0]  # rank-deficient A: singular KKT matrix
    if shared_Q:
        Q, expected = Q[0].clone(), [0, 1, 0, 0]
    else:
        Q[3] = -torch.eye(3, dtype=F64)  # negative definite on null(A): not a strict minimum
        expected = [0, 1, 0, 2]
    inputs = tuple(x.clone().requires_grad_() for x in (Q, q, A, c))
    z, lam, info = ft.solve_ex(*inputs)
    assert info.tolist() == expected
    assert info.dtype == torch.int32
    ok = info == 0
    assert torch.isnan(z[~ok]).all()
    assert torch.isnan(lam[~ok]).all()
    okv = ok.unsqueeze(-1)
    (torch.where(okv, z, 0).sum() + torch.where(okv, lam, 0).square().sum()).backward()
    # reference: the same loss over the good elements only
    refs = tuple(x.detach().clone().requires_grad_() for x in inputs)
    Qr = refs[0] if shared_Q else refs[0][ok]
    zr, lr = _reference(Qr, refs[1][ok], refs[2][ok], refs[3][ok])
    (zr.sum() + lr.square().sum()).backward()
    for x, xr in zip(inputs, refs):
        assert torch.isfinite(x.grad).all()
        if x.grad.shape[:1] == (4,):
            assert (x.grad[~ok] == 0).all()
        torch.testing.assert_close(x.grad, xr.grad, rtol=1e-9, atol=1e-11)


def test_integer_inputs():
    Q = 2 * torch.eye(2, dtype=torch.int64)  # minimize ‖z − r‖² s.t. z₁ + z₂ = c
    r = torch.tensor([[1, 3], [0, 0]])
    A = torch.tensor([[1, 1]], dtype=torch.int32)
    c = torch.tensor([2.0], requires_grad=True)  # float32
    z, lam = ft.solve(Q, -2 * r, A, c, return_multipliers=True)
    assert z.dtype == F64  # integers become float64
    # closed form: z = r + (c − (r₁ + r₂))/2 · (1, 1), λ = −(c − (r₁ + r₂))
    shift = (2.0 - r.sum(-1, keepdim=True).double()) / 2
    torch.testing.assert_close(z.detach(), r + shift, rtol=0, atol=1e-14)
    torch.testing.assert_close(lam.detach(), -2 * shift, rtol=0, atol=1e-14)
    z.sum().backward()  # ∂(Σz)/∂c = 2 elements · 2 coordinates · ½
    assert c.grad.dtype == torch.float32
    torch.testing.assert_close(c.grad, torch.tensor([2.0]))


def test_noncontiguous_and_expanded_inputs():
    Qb, qb, Ab, cb = _tensors(3, 4, 2, seed=12, grad=False)
    Q = Qb[0].clone().requires_grad_()
    Qe = Q.expand(5, 3, 4, 4)  # stride 0 in the batch dimensions
    q = torch.empty(4, 3, dtype=F64).copy_(qb.mT).mT.requires_grad_()  # column-major leaf
    A = torch.empty(3, 4, 2, dtype=F64).copy_(Ab.mT).mT.requires_grad_()
    c = torch.stack([cb, cb], -1)[..., 0].detach().requires_grad_()  # strided leaf
    assert not q.is_contiguous()
    assert not A.is_contiguous()
    assert not c.is_contiguous()
    z, lam = _solve(Qe, q, A, c)
    assert z.shape == (5, 3, 4)
    assert lam.shape == (5, 3, 2)
    (z.sum() + lam.sum()).backward()
    refs = [x.detach().contiguous().requires_grad_() for x in (Q, q, A, c)]
    zr, lr = _reference(refs[0].expand(5, 3, 4, 4), *refs[1:])
    (zr.sum() + lr.sum()).backward()
    torch.testing.assert_close(z, zr, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(lam, lr, rtol=1e-10, atol=1e-12)
    for x, xr in zip((Q, q, A, c), refs):
        torch.testing.assert_close(x.grad, xr.grad, rtol=1e-9, atol=1e-11)


def test_empty_batch_and_unconstrained_shapes():
    Q, q, A, c = _tensors(0, 3, 2)
    z, lam, info = ft.solve_ex(Q, q, A, c)
    assert z.shape == (0, 3)
    assert lam.shape == (0, 2)
    assert info.shape == (0,)
    (z.sum() + lam.sum()).backward()
    assert Q.grad.shape == (0, 3, 3)
    assert A.grad.shape == (0, 2, 3)
    Q, q, A, c = _tensors(2, 3, 0)
    z, lam = _solve(Q, q, A, c)
    assert lam.shape == (2, 0)
    z.sum().backward()
    assert A.grad.shape == (2, 0, 3)
    assert c.grad.shape == (2, 0)
    # unconstrained: z = −Q⁻¹q, so ∂(Σz)/∂q = −Q⁻ᵀ 1
    ones = torch.ones(2, 3, 1, dtype=F64)
    want = -torch.linalg.solve(Q.detach().mT, ones)[..., 0]
    torch.testing.assert_close(q.grad, want, rtol=1e-10, atol=1e-12)


def test_fast_apply_is_the_ordinary_apply(monkeypatch):
    """fastkkt's autograd.Function.apply (no per-call signature binding) gives exactly what
    torch.autograd.Function.apply gives, results and gradients."""
    results = []
    for fast in (True, False):
        monkeypatch.setattr(_torch_common, "_FAST_APPLY", fast)
        inputs = _shaped(SHAPES["broadcast_mixed"], seed=13)
        z, lam = _solve(*inputs)
        assert z.grad_fn is not None
        grads = torch.autograd.grad(z.square().sum() + lam.sum(), inputs)
        results.append((z.detach(), lam.detach(), *grads))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
