"""The C++ adjoint of the torch QP layer (cpp/include/fastkkt/qp_adjoint.hpp): its gradients
against the independent PyTorch computation of tests/torch_qp_reference.py (the adjoint system
assembled in Python, its own active-set rule, a batched LU); the kept factorization against a
fresh one; bitwise independence of the thread count; the operator's registration."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_torch_qp import NAMES, leaves, strict_qp  # noqa: E402
from torch_qp_reference import reference_grads  # noqa: E402

import fastkkt  # noqa: E402
import fastkkt.torch as ft  # noqa: E402
from fastkkt import _torch_qp  # noqa: E402

CASES = {
    "inequalities": dict(batch=(5,), n=8, p=6, rows=3),
    "equalities+inequalities": dict(batch=(4,), n=9, m=2, p=7, rows=3),
    "bounds": dict(batch=(6,), n=7, low=2, up=2, free=3),
    "everything": dict(batch=(2, 3), n=10, m=2, p=6, rows=2, low=2, up=1, free=4),
    "unbatched": dict(batch=(), n=12, m=1, p=9, rows=4, low=1, up=1, free=5),
}


def _solve(t):
    rest = {k: v for k, v in t.items() if k not in ("Q", "q")}
    return ft.solve_qp_ex(t["Q"], t["q"], **rest)


def _loss_grads(t, sol, seed):
    """Incoming gradients W of ℓ = Σ W·(z, λ, μ, ν) and ∂ℓ/∂inputs by the layer."""
    rng = np.random.default_rng(seed)
    W = {
        k: torch.tensor(rng.standard_normal(getattr(sol, k).shape))
        for k in ("z", "lam", "mu", "nu")
    }
    loss = sum((W[k] * getattr(sol, k)).sum() for k in W)
    grads = torch.autograd.grad(loss, list(t.values()))
    return W, dict(zip(t, grads))


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_the_independent_pytorch_adjoint(case):
    spec = dict(CASES[case])
    P = strict_qp(spec.pop("batch"), **spec, seed=21)
    t = leaves(P)
    sol = _solve(t)
    assert (sol.info == 0).all()
    W, got = _loss_grads(t, sol, 0)
    want = reference_grads({k: v.detach() for k, v in t.items()}, sol, W)
    assert set(want) == set(got)
    for k in got:
        scale = max(1.0, float(want[k].abs().max()))
        err = float((got[k] - want[k]).abs().max()) / scale
        assert err <= 1e-9, (k, err)


def test_broadcast_operands_match_the_independent_adjoint():
    """A shared Q, G and scalar-shaped ub, (2, 1)- and (1, 3)-shaped batch operands: each
    gradient summed to its input's shape, as the reference's sum_to_size does."""
    P = strict_qp((6,), 6, 0, 4, rows=2, low=1, free=2, seed=22)
    Q, G = P["Q"][0], P["G"][0]
    z = P["z_star"]
    mu = P["mu_star"]
    nu = np.zeros_like(z)
    nu[:, 0] = -0.8
    h = np.einsum("ij,bj->bi", G, z) + np.where(mu > 0, 0.0, 0.5)
    q = -(z @ Q.T + mu @ G + nu)
    t = {
        "Q": torch.tensor(Q, requires_grad=True),
        "q": torch.tensor(q.reshape(2, 3, 6), requires_grad=True),
        "G": torch.tensor(G, requires_grad=True),
        "h": torch.tensor(h.reshape(2, 3, 4), requires_grad=True),
        "lb": torch.tensor(P["lb"].reshape(2, 3, 6), requires_grad=True),
        "ub": torch.tensor(10.0, dtype=torch.float64, requires_grad=True),
    }
    sol = _solve(t)
    assert (sol.info == 0).all()
    W, got = _loss_grads(t, sol, 1)
    want = reference_grads({k: v.detach() for k, v in t.items()}, sol, W)
    for k in got:
        assert got[k].shape == t[k].shape, k
        torch.testing.assert_close(got[k], want[k], rtol=1e-9, atol=1e-11)


def _adjoint_paths(ts, out, factor, g):
    """The core's count of elements solved (with the kept factorization, with a fresh one, by
    least squares), no gradient requested."""
    Q, _, A, _, G = (None if t is None else t.numpy() for t in ts[:5])
    z, lam, mu, _, info, _, active, _ = (x.numpy() for x in out)
    return fastkkt._qp.core.qp_adjoint(
        Q, A, G, z, lam, mu, info, active, factor.numpy(),
        *(x.numpy() for x in g), *([None] * 8), 1,
    )  # fmt: skip


# (n, m, p, rows, low, up, free): n₁, k ≤ 32 (the plain kernels' solve), n₁ in (32, 64] (plain
# factor, Eigen's solve), n₁ > 64 (Eigen's blocked kernels)
KEPT_SIZES = [(10, 2, 8, 3, 1, 1, 4), (40, 3, 30, 12, 2, 2, 10), (80, 0, 70, 20, 0, 0, 0)]


@pytest.mark.parametrize("size", KEPT_SIZES, ids=lambda s: f"n{s[0]}")
def test_kept_factorization_gives_the_gradients_of_a_fresh_one(size):
    """The forward pass keeps the polish's factorization (state byte 1) on these strictly
    complementary problems; the adjoint solves every such element with it (no fresh
    factorization, no least-squares fallback: a stale piece of the kept factorization would
    only show as a fallback, whose answer is right but ~20× slower), and its gradients and
    those of factorizations made afresh (an empty factor tensor) agree to rounding."""
    n, m, p, rows, low, up, free = size
    P = strict_qp((8,), n, m, p, rows=rows, low=low, up=up, free=free, seed=23)
    ts = [torch.tensor(P[k]) if P.get(k) is not None else None for k in NAMES]
    out = _torch_qp._qp_solve_impl(*ts, 1e-8, 100, True, False, True)
    z, lam, mu, nu, info, _, active, factor = out
    assert (info == 0).all()
    assert active.shape == (8, p + n + 1)
    assert factor.shape == (8, _torch_qp._factor_size(n, m, p))
    nkept = int(active[:, -1].sum())
    assert nkept >= 6  # polished: kept
    rng = np.random.default_rng(2)
    g = [torch.tensor(rng.standard_normal(x.shape)) for x in (z, lam, mu, nu)]
    assert _adjoint_paths(ts, out, factor, g) == (nkept, 8 - nkept, 0)
    assert _adjoint_paths(ts, out, factor[:, :0], g) == (0, 8, 0)
    args = (*ts, z, lam, mu, info, active)
    kept = _torch_qp._qp_adjoint_impl(*args, factor, *g, 255)
    fresh = _torch_qp._qp_adjoint_impl(*args, factor[:, :0], *g, 255)
    for a, b in zip(kept, fresh):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    # the no-grad forward keeps nothing
    none = _torch_qp._qp_solve_impl(*ts, 1e-8, 100, True, False, False)
    assert none[6].shape == (8, 0)
    assert none[7].shape == (8, 0)
    for a, b in zip(none[:6], out[:6]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_factor_size_is_the_cores():
    for n, m, p in ((1, 0, 0), (10, 0, 20), (12, 4, 0), (50, 10, 50), (5, 20, 30)):
        assert _torch_qp._factor_size(n, m, p) == fastkkt._qp.core.qp_factor_size(n, m, p)


def test_gradients_bitwise_identical_for_any_thread_count():
    P = strict_qp((64,), 9, 1, 6, rows=2, low=1, up=1, free=3, seed=24)
    P["Q"] = P["Q"][0]  # shared: its gradient sums 64 elements
    P["q"] = P["q"]  # per element (Q shared: not the strict optimum, any QP will do)
    res = []
    old = fastkkt.get_num_threads()
    try:
        for k in (1, 2):
            fastkkt.set_num_threads(k)
            t = leaves(P)
            sol = _solve(t)
            res.append(_loss_grads(t, sol, 3)[1])
    finally:
        fastkkt.set_num_threads(old)
    for k in res[0]:
        assert torch.equal(res[0][k], res[1][k]), k


BROADCASTS = [((6,), (False,)), ((2, 3), (True, False)), ((2, 3), (False, True)),
              ((3, 1, 2), (False, True, True))]  # fmt: skip


@pytest.mark.parametrize(("shape", "keep"), BROADCASTS)
def test_broadcast_gradients_are_the_element_gradients_summed_in_order(shape, keep):
    """A gradient into an operand broadcast along some batch dimensions (the core's grouped
    reduction) equals the per-element gradients (its one-block-per-element path, an operand of
    the full batch shape) added in increasing element order, bit for bit."""
    import itertools

    P = strict_qp(shape, 7, 1, 5, rows=2, low=1, up=1, free=3, seed=31)
    ops = [np.ascontiguousarray(P[k]) for k in NAMES]
    sol, active, factor = fastkkt._qp._solve_qp_ex(*ops, 1e-8, 100, True, True)
    assert (sol.info == 0).all()
    rng = np.random.default_rng(5)
    gz, gmu = rng.standard_normal(sol.z.shape), rng.standard_normal(sol.mu.shape)
    core = fastkkt._qp.core
    Q, _, A, _, G = ops[:5]
    full = [np.empty(x.shape) for x in ops]
    core.qp_adjoint(Q, A, G, sol.z, sol.lam, sol.mu, sol.info, active, factor, gz, None, gmu,
                    None, *full, 1)  # fmt: skip
    cut = tuple(s if k else 1 for s, k in zip(shape, keep))
    red = [np.empty(cut + x.shape[len(shape) :]) for x in ops]
    core.qp_adjoint(Q, A, G, sol.z, sol.lam, sol.mu, sol.info, active, factor, gz, None, gmu,
                    None, *red, 2)  # fmt: skip
    for name, x, r in zip(NAMES, full, red):
        expected = np.zeros(r.shape)
        for idx in itertools.product(*map(range, shape)):
            to = tuple(i if k else 0 for i, k in zip(idx, keep))
            expected[to] = expected[to] + x[idx]
        assert np.array_equal(expected, r), name


def test_adjoint_operator_passes_opcheck():
    P = strict_qp((2,), 4, 1, 2, rows=1, low=1, free=1, seed=12)
    ts = [torch.tensor(P[k]) for k in NAMES]
    z, lam, mu, nu, info, _, active, factor = _torch_qp._qp_solve_impl(
        *ts, 1e-8, 100, True, False, True
    )
    g = [torch.ones_like(x) for x in (z, lam, mu, nu)]
    torch.library.opcheck(
        torch.ops.fastkkt.qp_adjoint.default,
        (*ts, z, lam, mu, info, active, factor, *g, 255),
        test_utils=("test_schema", "test_faketensor"),
    )
    torch.library.opcheck(
        torch.ops.fastkkt.qp_solve.default,
        (*ts, 1e-8, 100, True, False, True),
        test_utils=("test_schema", "test_faketensor"),
    )
