"""fastkkt.torch's eager autograd.Function apply: torch.autograd.Function.apply, which binds
the forward's default arguments with inspect.signature on every call, against fastkkt's
apply (`fastkkt._torch_common.Function.apply`), which skips that binding and does the rest. Forward
+ backward (gradients of sum(w * z) with respect to Q, q, A, c) on the two smallest cases of
BENCH.md, where the per-call overhead shows; the gradients are checked in each."""

from __future__ import annotations

import pytest
from methods import Problem, case_name

torch = pytest.importorskip("torch")

import fastkkt.torch as ft  # noqa: E402
from fastkkt import _torch_common  # noqa: E402

CASES = [(1, 16, 4), (128, 16, 4)]


@pytest.fixture(scope="module", params=CASES, ids=case_name)
def small(request: pytest.FixtureRequest) -> Problem:
    return Problem(request.param)


@pytest.mark.parametrize("apply", ["fastkkt apply", "torch.autograd.Function.apply"])
def test_torch_apply(benchmark, small, apply, monkeypatch):
    benchmark.group = f"torch apply, fwd+bwd {case_name(small.case)}"
    if apply != "fastkkt apply":
        monkeypatch.setattr(_torch_common, "_FAST_APPLY", False)  # the ordinary apply
    args = [torch.from_numpy(x).requires_grad_() for x in (small.Q, small.q, small.A, small.c)]
    w = torch.from_numpy(small.w)

    def run():
        return torch.autograd.grad((w * ft.solve(*args)).sum(), args)

    grads = benchmark(run)
    small.check_grads(tuple(g.numpy() for g in grads))
