"""torch.jit.trace of functions and modules that call fastkkt.torch: the trace records the
registered operator (torch.ops.fastkkt.kkt_solve), so a traced function solves new inputs
instead of replaying the trace-time result, and differentiates them."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch_reference import F64, reference, tensors  # noqa: E402

import fastkkt  # noqa: E402
import fastkkt.torch as ft  # noqa: E402

# torch.jit.trace itself is deprecated in torch 2.13 (a warning from torch, not fastkkt); any
# other warning, a TracerWarning about a value recorded as a constant included, fails.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")


def _layer(Q, q, A, c):
    z, lam = ft.solve(Q, q, A, c, return_multipliers=True)
    return 2 * z, lam.sum(-1)


@pytest.mark.parametrize("grad_at_trace", [False, True])
def test_traced_function_solves_new_inputs(grad_at_trace):
    traced = torch.jit.trace(_layer, tensors(3, 4, 2, seed=0, grad=grad_at_trace))
    assert "fastkkt::kkt_solve" in str(traced.graph)
    for seed in (1, 2):
        Q, q, A, c = tensors(3, 4, 2, seed=seed, grad=False)
        z2, s = traced(Q, q, A, c)
        arrays = (x.numpy() for x in (Q, q, A, c))
        z, lam = fastkkt.reference.solve(*arrays, return_multipliers=True)
        np.testing.assert_allclose(z2.numpy(), 2 * z, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(s.numpy(), lam.sum(-1), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("grad_at_trace", [False, True])
def test_traced_function_is_differentiable(grad_at_trace):
    traced = torch.jit.trace(_layer, tensors(3, 4, 2, seed=3, grad=grad_at_trace))
    inputs = tensors(3, 4, 2, seed=4)
    z2, s = traced(*inputs)
    (z2.square().sum() + s.sum()).backward()
    refs = [x.detach().clone().requires_grad_() for x in inputs]
    z, lam = reference(*refs)
    ((2 * z).square().sum() + lam.sum()).backward()
    for x, r in zip(inputs, refs):
        torch.testing.assert_close(x.grad, r.grad, rtol=1e-9, atol=1e-11)


def test_traced_module_and_failures():
    class Layer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = torch.nn.Parameter(torch.tensor([0.5, -1.0], dtype=F64))

        def forward(self, Q, q, A):
            return ft.solve(Q, q, A, self.c)

    Q, q, A, _ = tensors(3, 4, 2, seed=5, grad=False)
    traced = torch.jit.trace(Layer(), (Q, q, A))
    Q2, q2, A2, _ = tensors(3, 4, 2, seed=6, grad=False)
    z = traced(Q2, q2, A2)
    want = fastkkt.reference.solve(Q2.numpy(), q2.numpy(), A2.numpy(), np.array([0.5, -1.0]))
    np.testing.assert_allclose(z.detach().numpy(), want, rtol=1e-10, atol=1e-12)
    A2[1, 1] = A2[1, 0]  # singular: the TorchScript interpreter reports the KKTError
    with pytest.raises(RuntimeError, match=r"KKTError: 1 of 3 problems failed: singular"):
        traced(Q2, q2, A2)
