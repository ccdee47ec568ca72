"""The differentiable QP layer fastkkt.torch.solve_qp: gradients against finite differences
(gradcheck) and against central differences of the pure-NumPy fastkkt.reference.solve_qp;
the documented rule at degenerate points; masked failures; dtypes; no_grad; modules and
optimizers; torch.compile; errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastkkt  # noqa: E402
import fastkkt.torch as ft  # noqa: E402

F64 = torch.float64
NAMES = ("Q", "q", "A", "c", "G", "h", "lb", "ub")


def strict_qp(batch, n, m=0, p=0, *, rows=0, low=0, up=0, free=0, seed=0):
    """Random strictly complementary QPs with a known optimum z⋆ and a controlled active set:
    `rows` of the p rows of G active (μ ~ U(0.5, 1.5)), the others slack by U(0.3, 1);
    `low` coordinates at lb and `up` at ub (|ν| ~ U(0.5, 1.5)), the rest `free` inside a box
    (when ``low + up + free > 0``, bounds are given on those coordinates, ±inf elsewhere).
    With m + rows + low + up ≤ n and random data the active constraints are independent, so
    z and the multipliers are differentiable (the active set is stable)."""
    assert m + rows + low + up <= n
    assert low + up + free <= n
    rng = np.random.default_rng([seed, n, m, p, rows, low, up])
    B = int(np.prod(batch))
    N, U = rng.standard_normal, rng.uniform
    M = N((B, n, n))
    Q = M @ M.transpose(0, 2, 1) / n + 0.5 * np.eye(n)
    z = N((B, n))
    A = N((B, m, n))
    lam = N((B, m))
    G = N((B, p, n))
    mu = np.zeros((B, p))
    mu[:, :rows] = U(0.5, 1.5, (B, rows))
    slack = np.zeros((B, p))
    slack[:, rows:] = U(0.3, 1.0, (B, p - rows))
    h = np.einsum("bij,bj->bi", G, z) + slack
    nu = np.zeros((B, n))
    nu[:, :low] = -U(0.5, 1.5, (B, low))
    nu[:, low : low + up] = U(0.5, 1.5, (B, up))
    out = {"Q": Q, "A": A, "c": np.einsum("bij,bj->bi", A, z), "G": G, "h": h}
    if low + up + free:
        lb = np.full((B, n), -np.inf)
        ub = np.full((B, n), np.inf)
        lb[:, :low] = z[:, :low]
        ub[:, :low] = z[:, :low] + U(0.3, 1.0, (B, low))
        ub[:, low : low + up] = z[:, low : low + up]
        lb[:, low : low + up] = z[:, low : low + up] - U(0.3, 1.0, (B, up))
        k = low + up
        lb[:, k : k + free] = z[:, k : k + free] - U(0.3, 1.0, (B, free))
        ub[:, k : k + free] = z[:, k : k + free] + U(0.3, 1.0, (B, free))
        out.update(lb=lb, ub=ub)
    grad = np.einsum("bij,bj->bi", Q, z) + np.einsum("bji,bj->bi", A, lam)
    out["q"] = -(grad + np.einsum("bji,bj->bi", G, mu) + nu)
    shape = tuple(batch)
    res = {k: v.reshape(shape + v.shape[1:]) for k, v in out.items()}
    if m == 0:
        res["A"] = res["c"] = None
    if p == 0:
        res["G"] = res["h"] = None
    res.update(z_star=z.reshape(shape + (n,)), mu_star=mu.reshape(shape + (p,)))
    return res


def kwargs(P):
    return {k: P.get(k) for k in NAMES[2:] if P.get(k) is not None}


def leaves(P, names=NAMES, dtype=F64):
    return {
        k: torch.tensor(P[k], dtype=dtype, requires_grad=True)
        for k in names
        if P.get(k) is not None
    }


def layer_fn(names, outputs="all"):
    """f(*tensors) -> the solution's outputs, for gradcheck."""

    def f(*xs):
        d = dict(zip(names, xs))
        sol = ft.solve_qp_ex(d.pop("Q"), d.pop("q"), **d)
        return (sol.z, sol.lam, sol.mu, sol.nu) if outputs == "all" else sol.z

    return f


# --------------------------------------------------------------------------------------------
# forward


def test_forward_is_the_numpy_solver():
    P = strict_qp((3,), 6, 1, 4, rows=2, low=1, up=1, free=2, seed=1)
    t = leaves(P)
    sol = ft.solve_qp_ex(t.pop("Q"), t.pop("q"), **t)
    ref = fastkkt.solve_qp_ex(P["Q"], P["q"], **kwargs(P))
    for a, b in zip(sol, ref):
        np.testing.assert_array_equal(a.detach().numpy(), b)
    np.testing.assert_allclose(sol.z.detach().numpy(), P["z_star"], atol=1e-9)
    assert isinstance(sol, fastkkt.QPSolution)
    assert sol.z.requires_grad
    assert sol.mu.requires_grad
    assert not sol.info.requires_grad
    _z, _lam, mu, _nu = ft.solve_qp(
        torch.tensor(P["Q"]), torch.tensor(P["q"]), return_multipliers=True, **kwargs(P)
    )
    np.testing.assert_array_equal(mu.numpy(), ref.mu)


# --------------------------------------------------------------------------------------------
# gradcheck: every input, every output, on strictly complementary problems

GRADCHECK_CASES = {
    "inequalities": dict(batch=(2,), n=4, p=3, rows=2),
    "equalities+inequalities": dict(batch=(2,), n=5, m=2, p=3, rows=2),
    "bounds": dict(batch=(2,), n=4, low=1, up=1, free=2),
    "everything": dict(batch=(2,), n=6, m=1, p=3, rows=1, low=1, up=1, free=2),
    "lower only, unbatched": dict(batch=(), n=4, p=2, rows=1, low=2),
}


@pytest.mark.parametrize("case", GRADCHECK_CASES)
def test_gradcheck_every_input_and_output(case):
    spec = dict(GRADCHECK_CASES[case])
    P = strict_qp(spec.pop("batch"), **spec, seed=2)
    if case == "lower only, unbatched":
        P.pop("ub")
    t = leaves(P)
    f = layer_fn(list(t))
    assert torch.autograd.gradcheck(
        f, tuple(t.values()), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True
    )


def test_gradcheck_broadcast_operands():
    """A shared Q and G (one (n, n) and (p, n) gradient), a per-element q and h, scalar-shaped
    and per-coordinate bounds broadcast over a (2, 2) batch."""
    P = strict_qp((4,), 5, 0, 3, rows=1, low=1, free=2, seed=3)
    Q, G = P["Q"][0], P["G"][0]
    z = P["z_star"]
    # rebuild q and h for the shared Q, G with the same active structure
    mu = P["mu_star"]
    nu = np.zeros_like(z)
    nu[:, 0] = -0.7
    h = np.einsum("ij,bj->bi", G, z) + np.where(mu > 0, 0.0, 0.5)
    q = -(z @ Q.T + mu @ G + nu)
    lb = P["lb"].copy()
    t = {
        "Q": torch.tensor(Q, requires_grad=True),
        "q": torch.tensor(q.reshape(2, 2, 5), requires_grad=True),
        "G": torch.tensor(G, requires_grad=True),
        "h": torch.tensor(h.reshape(2, 2, 3), requires_grad=True),
        "lb": torch.tensor(lb.reshape(2, 2, 5), requires_grad=True),
        "ub": torch.tensor(np.full(5, 10.0), requires_grad=True),
    }
    f = layer_fn(list(t))
    out = f(*t.values())
    np.testing.assert_allclose(out[0].detach().numpy().reshape(4, 5), z, atol=1e-9)
    assert torch.autograd.gradcheck(
        f, tuple(t.values()), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True
    )
    # the shared gradient is the sum of the per-element ones
    w = torch.randn(2, 2, 5, dtype=F64, generator=torch.Generator().manual_seed(0))
    (f(*t.values())[0] * w).sum().backward()
    gG = t["G"].grad.clone()
    total = torch.zeros_like(gG)
    for i in range(2):
        for j in range(2):
            Gi = torch.tensor(G, requires_grad=True)
            zi = ft.solve_qp(
                t["Q"].detach(), t["q"].detach()[i, j], G=Gi, h=t["h"].detach()[i, j],
                lb=t["lb"].detach()[i, j], ub=t["ub"].detach(),
            )  # fmt: skip
            (zi * w[i, j]).sum().backward()
            total += Gi.grad
    torch.testing.assert_close(gG, total, rtol=1e-10, atol=1e-12)


def test_scalar_bounds_tensor_and_python():
    P = strict_qp((3,), 4, 0, 2, rows=1, seed=4)
    Q, q = torch.tensor(P["Q"]), torch.tensor(P["q"], requires_grad=True)
    lo = float(P["z_star"].min()) + 0.2  # makes some lower bounds active
    lbt = torch.tensor(lo, dtype=F64, requires_grad=True)
    z = ft.solve_qp(Q, q, G=torch.tensor(P["G"]), h=torch.tensor(P["h"]), lb=lbt)
    ref = fastkkt.solve_qp(P["Q"], P["q"], G=P["G"], h=P["h"], lb=lo)
    np.testing.assert_array_equal(z.detach().numpy(), ref)
    z.sum().backward()
    assert lbt.grad.shape == ()
    assert lbt.grad.dtype == F64
    # d(sum z)/d lb by central differences of the reference solver
    eps = 1e-6
    up = fastkkt.reference.solve_qp(P["Q"], P["q"], G=P["G"], h=P["h"], lb=lo + eps).sum()
    dn = fastkkt.reference.solve_qp(P["Q"], P["q"], G=P["G"], h=P["h"], lb=lo - eps).sum()
    assert float(lbt.grad) == pytest.approx((up - dn) / (2 * eps), rel=1e-5, abs=1e-7)
    assert np.count_nonzero(np.isclose(ref, lo)) > 0
    z2 = ft.solve_qp(Q, q, G=torch.tensor(P["G"]), h=torch.tensor(P["h"]), lb=lo)
    torch.testing.assert_close(z2, z.detach(), rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# against central differences of the independent pure-NumPy reference solver


def _reference_loss(P, W):
    sol = fastkkt.reference.solve_qp_ex(P["Q"], P["q"], **kwargs(P), tol=1e-12)
    assert (sol.info == 0).all()
    return sum(float((W[k] * getattr(sol, k)).sum()) for k in W)


@pytest.mark.parametrize("seed", [0, 1])
def test_gradients_match_central_differences_of_the_reference(seed):
    """∂ℓ/∂θ · v for ℓ = Σ w·(z, λ, μ, ν) and a random direction v in every input, against
    (ℓ(θ + εv) − ℓ(θ − εv)) / 2ε computed with fastkkt.reference.solve_qp (valid: the active
    set is stable under the small step)."""
    P = strict_qp((3,), 7, 2, 5, rows=2, low=1, up=1, free=3, seed=10 + seed)
    rng = np.random.default_rng(seed)
    t = leaves(P)
    sol = ft.solve_qp_ex(t["Q"], t["q"], **{k: v for k, v in t.items() if k not in "Qq"})
    W = {k: rng.standard_normal(getattr(sol, k).shape) for k in ("z", "lam", "mu", "nu")}
    loss = sum((torch.tensor(W[k]) * getattr(sol, k)).sum() for k in W)
    grads = torch.autograd.grad(loss, list(t.values()))
    V = {k: rng.standard_normal(P[k].shape) for k in t}
    analytic = sum(float((g.numpy() * V[k]).sum()) for k, g in zip(t, grads))
    eps = 1e-6
    plus = {**P, **{k: P[k] + eps * V[k] for k in t}}
    minus = {**P, **{k: P[k] - eps * V[k] for k in t}}
    fd = (_reference_loss(plus, W) - _reference_loss(minus, W)) / (2 * eps)
    assert analytic == pytest.approx(fd, rel=1e-5, abs=1e-6)


# --------------------------------------------------------------------------------------------
# the documented rule at degenerate points


def test_weakly_active_row_counts_as_inactive():
    """A row with μ = 0 and Gz = h: the gradient is the one of the problem without the row
    (its one-sided derivative for perturbations that keep the row slack), finite and
    deterministic."""
    n = 4
    rng = np.random.default_rng(5)
    M = rng.standard_normal((n, n))
    Q = M @ M.T / n + 0.5 * np.eye(n)
    q = rng.standard_normal(n)
    z0 = np.linalg.solve(Q, -q)  # the unconstrained minimizer
    g = rng.standard_normal((1, n))
    G = np.concatenate([g, rng.standard_normal((1, n))])
    h = np.array([g[0] @ z0, G[1] @ z0 + 1.0])  # row 0 weakly active, row 1 slack
    t = {k: torch.tensor(v, requires_grad=True) for k, v in dict(Q=Q, q=q, G=G, h=h).items()}
    grads = []
    for _ in range(2):
        sol = ft.solve_qp_ex(t["Q"], t["q"], G=t["G"], h=t["h"])
        assert int(sol.info) == 0
        assert float(sol.mu[0].detach()) <= 1e-10
        grads.append(torch.autograd.grad(sol.z.sum(), list(t.values())))
    for a, b in zip(*grads):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    _gQ, gq, gG, gh = grads[0]
    # without the row: z = −Q⁻¹q, d(sum z)/dq = −Q⁻¹1
    np.testing.assert_allclose(gq.numpy(), -np.linalg.solve(Q, np.ones(n)), rtol=1e-8)
    np.testing.assert_allclose(gh.numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(gG.numpy(), 0.0, atol=1e-12)


def test_fixed_coordinate_gradient_goes_to_the_holding_bound():
    """lb_j = ub_j: always active; with ν_j > 0 the gradient of z_j goes to ub (∂z_j/∂ub_j = 1,
    ∂/∂lb_j = 0), with ν_j < 0 to lb."""
    n = 3
    Q = np.eye(n)
    lb = np.array([-1.0, -5.0, -5.0])
    ub = np.array([-1.0, 5.0, 5.0])
    for qj, to in ((5.0, "ub"), (-5.0, "lb")):  # q_0 > 0 pushes z_0 down: lb holds...
        q = np.array([-qj, 0.3, -0.2])  # ν_0 = −(z_0 + q_0) = qj − (−1)... sign by qj
        tl = torch.tensor(lb, requires_grad=True)
        tu = torch.tensor(ub, requires_grad=True)
        z, _, _, nu = ft.solve_qp(
            torch.tensor(Q), torch.tensor(q), lb=tl, ub=tu, return_multipliers=True
        )
        z[0].backward()
        assert float(z[0].detach()) == -1.0
        holding = "ub" if float(nu[0].detach()) >= 0 else "lb"
        assert holding == to
        got = (tu if to == "ub" else tl).grad
        other = (tl if to == "ub" else tu).grad
        assert float(got[0]) == pytest.approx(1.0, abs=1e-12)
        assert float(other[0]) == 0.0
        np.testing.assert_allclose(got[1:].numpy(), 0.0, atol=1e-12)


def test_dependent_active_constraints_give_finite_deterministic_gradients():
    """A degenerate vertex: two identical active rows (LICQ fails, K singular): the adjoint
    system is solved in the least-squares sense — finite, and the same on every call."""
    Q = np.eye(2)
    q = np.array([-2.0, -2.0])
    G = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    h = np.array([1.0, 1.0, 1.0])
    out = []
    for _ in range(2):
        t = {k: torch.tensor(v, requires_grad=True) for k, v in dict(Q=Q, q=q, G=G, h=h).items()}
        sol = ft.solve_qp_ex(t["Q"], t["q"], G=t["G"], h=t["h"])
        assert int(sol.info) == 0
        np.testing.assert_allclose(sol.z.detach().numpy(), [1.0, 1.0], atol=1e-8)
        out.append(torch.autograd.grad(sol.z.sum() + sol.mu.sum(), list(t.values())))
    for a, b in zip(*out):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # z does not depend on q at this vertex (both coordinates pinned by active rows)
    np.testing.assert_allclose(out[0][1].numpy(), [-1.0, -1.0], atol=1e-8)  # from Σμ


# --------------------------------------------------------------------------------------------
# failures, dtypes, modes


def test_failed_element_nan_forward_zero_gradient_others_unchanged():
    P = strict_qp((3,), 4, 0, 3, rows=1, low=1, free=2, seed=6)
    lb, ub = P["lb"].copy(), P["ub"].copy()
    lb[1, 2], ub[1, 2] = 1.0, 0.0  # element 1 infeasible (lb > ub)
    P.update(lb=lb, ub=ub)
    t = leaves(P)
    sol = ft.solve_qp_ex(t["Q"], t["q"], G=t["G"], h=t["h"], lb=t["lb"], ub=t["ub"])
    assert sol.info.tolist() == [0, 1, 0]
    assert torch.isnan(sol.z[1]).all()
    assert torch.isnan(sol.mu[1]).all()
    loss = sum(torch.nansum(x) for x in (sol.z, sol.lam, sol.mu, sol.nu))
    loss.backward()
    for k, v in t.items():
        assert torch.isfinite(v.grad).all(), k
        assert (v.grad[1] == 0).all(), k
    # the good elements: exactly as solved alone
    for i in (0, 2):
        ti = {k: torch.tensor(P[k][i], requires_grad=True) for k in t}
        s = ft.solve_qp_ex(ti["Q"], ti["q"], G=ti["G"], h=ti["h"], lb=ti["lb"], ub=ti["ub"])
        torch.testing.assert_close(s.z, sol.z[i].detach(), rtol=0, atol=0)
        sum(x.sum() for x in (s.z, s.lam, s.mu, s.nu)).backward()
        for k in t:
            torch.testing.assert_close(ti[k].grad, t[k].grad[i], rtol=1e-12, atol=1e-14)
    with pytest.raises(fastkkt.QPError) as err:
        ft.solve_qp(t["Q"], t["q"], G=t["G"], h=t["h"], lb=t["lb"], ub=t["ub"])
    assert err.value.indices == [(1,)]
    assert err.value.info.tolist() == [0, 1, 0]


def test_float32_stays_float32_and_mixed_dtypes_promote():
    P = strict_qp((2,), 5, 1, 3, rows=1, low=1, free=2, seed=7)
    t32 = leaves(P, dtype=torch.float32)
    sol = ft.solve_qp_ex(t32["Q"], t32["q"], **{k: v for k, v in t32.items() if k not in "Qq"})
    assert sol.z.dtype == torch.float32
    assert sol.mu.dtype == torch.float32
    sol.z.sum().backward()
    t64 = leaves(P)
    s64 = ft.solve_qp_ex(t64["Q"], t64["q"], **{k: v for k, v in t64.items() if k not in "Qq"})
    s64.z.sum().backward()
    for k in t32:
        assert t32[k].grad.dtype == torch.float32
        np.testing.assert_allclose(t32[k].grad.numpy(), t64[k].grad.numpy(), atol=2e-3, rtol=0)
    # one float64 input: computed in float64, each gradient in its input's dtype
    mixed = leaves(P, dtype=torch.float32)
    mixed["h"] = torch.tensor(P["h"], requires_grad=True)
    s = ft.solve_qp_ex(mixed["Q"], mixed["q"], **{k: v for k, v in mixed.items() if k not in "Qq"})
    assert s.z.dtype == F64
    s.z.sum().backward()
    assert mixed["G"].grad.dtype == torch.float32
    assert mixed["h"].grad.dtype == F64
    # a Python scalar bound does not promote float32
    z = ft.solve_qp(t32["Q"].detach(), t32["q"].detach(), lb=-3.0)
    assert z.dtype == torch.float32
    # float32 with int8 or bool stays float32, int32 makes float64: NumPy's promotion, as
    # fastkkt.solve_qp computes it (the one rule of fastkkt/_validate.py)
    Q32 = t32["Q"].detach()
    for other, want in [(torch.int8, torch.float32), (torch.bool, torch.float32),
                        (torch.int32, F64)]:  # fmt: skip
        q_int = torch.ones(Q32.shape[:-1], dtype=other)
        z = ft.solve_qp(Q32, q_int, lb=-3.0, ub=3.0)
        assert z.dtype == want, other
        want_np = fastkkt.solve_qp(Q32.numpy(), q_int.numpy(), lb=-3.0, ub=3.0).dtype
        assert str(want_np) == str(want).removeprefix("torch."), other


def test_empty_batch():
    Q = torch.eye(3, dtype=F64).expand(0, 3, 3).requires_grad_()
    h = torch.ones(0, 2, dtype=F64, requires_grad=True)
    sol = ft.solve_qp_ex(Q, torch.zeros(3, dtype=F64), G=torch.ones(2, 3, dtype=F64), h=h, lb=0.0)
    assert sol.z.shape == (0, 3)
    assert sol.mu.shape == (0, 2)
    assert sol.info.shape == (0,)
    (sol.z.sum() + sol.mu.sum()).backward()
    assert h.grad.shape == (0, 2)


def test_no_grad_and_detached_inputs():
    P = strict_qp((2,), 4, 0, 2, rows=1, seed=8)
    t = leaves(P)
    with torch.no_grad():
        z = ft.solve_qp(t["Q"], t["q"], G=t["G"], h=t["h"])
    assert not z.requires_grad
    z2 = ft.solve_qp(*(x.detach() for x in (t["Q"], t["q"])), G=P["G"], h=P["h"])
    assert not z2.requires_grad
    torch.testing.assert_close(z, z2, rtol=0, atol=0)


def test_module_and_optimizer_learn_h():
    """An nn.Module holding h as a parameter: Adam fits it so that the layer's output matches
    targets made with a hidden h⋆ (the loss falls by 100×)."""
    rng = np.random.default_rng(9)
    n, p, B = 3, 4, 16
    G = rng.standard_normal((p, n))
    h_star = rng.uniform(0.2, 1.0, p)
    X = rng.standard_normal((B, n)) * 2
    target = fastkkt.solve_qp(np.eye(n), -X, G=G, h=h_star)

    class Projection(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.h = torch.nn.Parameter(torch.ones(p, dtype=F64))

        def forward(self, x):
            return ft.solve_qp(torch.eye(n, dtype=F64), -x, G=torch.tensor(G), h=self.h)

    model = Projection()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    Xt, Tt = torch.tensor(X), torch.tensor(target)
    first = None
    for _ in range(150):
        opt.zero_grad()
        loss = ((model(Xt) - Tt) ** 2).sum()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < first / 100


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_torch_compile_fullgraph_forward_and_backward():
    P = strict_qp((3,), 5, 1, 3, rows=1, low=1, free=2, seed=11)

    def model(Q, q, A, c, G, h, lb, ub):
        sol = ft.solve_qp_ex(Q, q, A=A, c=c, G=G, h=h, lb=lb, ub=ub)
        return (sol.z**2).sum() + sol.mu.sum() + sol.nu.sum() + sol.lam.sum()

    t = leaves(P)
    eager = model(*t.values())
    ge = torch.autograd.grad(eager, list(t.values()))
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(*t.values())
    gc = torch.autograd.grad(out, list(t.values()))
    torch.testing.assert_close(out, eager, rtol=1e-12, atol=0)
    for a, b in zip(gc, ge):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_registered_operators_pass_opcheck():
    P = strict_qp((2,), 4, 1, 2, rows=1, low=1, free=1, seed=12)
    args = [torch.tensor(P[k]) for k in NAMES]
    torch.library.opcheck(
        torch.ops.fastkkt.qp_solve.default,
        (*args, 1e-8, 100, True, False),
        test_utils=("test_schema", "test_faketensor"),
    )


# --------------------------------------------------------------------------------------------
# errors


def test_errors():
    Q, q = torch.eye(3, dtype=F64), torch.zeros(3, dtype=F64)
    with pytest.raises(ValueError, match="G was given without h"):
        ft.solve_qp(Q, q, G=torch.ones(2, 3))
    with pytest.raises(ValueError, match="q must have shape"):
        ft.solve_qp(Q, torch.zeros(4))
    with pytest.raises(ValueError, match=r"h"):
        ft.solve_qp(Q, q, G=torch.ones(2, 3), h=torch.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        ft.solve_qp(Q, torch.tensor([np.nan, 0.0, 0.0]))
    with pytest.raises(TypeError, match="complex"):
        ft.solve_qp(Q.to(torch.complex128), q)
    with pytest.raises(NotImplementedError, match="CPU"):
        ft.solve_qp(Q.to("meta"), q)
    with pytest.raises(fastkkt.QPError):
        ft.solve_qp(Q, q, lb=1.0, ub=0.0)
