"""fastkkt.solve_qp / solve_qp_ex: answers against Clarabel, the KKT conditions of API.md,
per-element status, threads, dtypes, broadcasting and every input error the contract names."""

from __future__ import annotations

import pickle

import clarabel
import numpy as np
import pytest
import scipy.sparse as sp

import fastkkt

TOL = 1e-8


def clarabel_solve(Q, q, A=None, c=None, G=None, h=None, lb=None, ub=None):
    """(status, z, objective) from Clarabel at tight tolerances, bounds as rows."""
    n = len(q)
    rows, rhs, cones = [], [], []
    if A is not None and len(c):
        rows.append(A)
        rhs.append(c)
        cones.append(clarabel.ZeroConeT(len(c)))
    ineq, ineq_rhs = [], []
    if G is not None:
        keep = np.isfinite(h)
        ineq.append(G[keep])
        ineq_rhs.append(h[keep])
    for bound, sign in ((ub, 1.0), (lb, -1.0)):
        if bound is not None:
            b = np.broadcast_to(bound, (n,))
            keep = np.isfinite(b)
            ineq.append(sign * np.eye(n)[keep])
            ineq_rhs.append(sign * b[keep])
    if ineq:
        rows.append(np.vstack(ineq))
        rhs.append(np.concatenate(ineq_rhs))
        cones.append(clarabel.NonnegativeConeT(len(rhs[-1])))
    s = clarabel.DefaultSettings()
    s.verbose = False
    s.tol_gap_abs = s.tol_gap_rel = s.tol_feas = 1e-11
    s.max_iter = 300
    Qs = (Q + Q.T) / 2
    Amat = sp.csc_matrix(np.vstack(rows)) if rows else sp.csc_matrix((0, n))
    b = np.concatenate(rhs) if rhs else np.zeros(0)
    sol = clarabel.DefaultSolver(sp.csc_matrix(np.triu(Qs)), q, Amat, b, cones, s).solve()
    z = np.array(sol.x)
    return str(sol.status), z, 0.5 * z @ Qs @ z + q @ z


def random_problem(
    rng, n, m, p, *, box=False, lp=False, rank=None, rank_a=False, fixed=0, infbounds=False
):
    M = rng.standard_normal((n, n))
    if lp:
        Q = np.zeros((n, n))
    elif rank is not None:
        V = rng.standard_normal((n, rank))
        Q = V @ V.T
    else:
        Q = M @ M.T / n + 0.1 * np.eye(n)
    q = rng.standard_normal(n)
    z0 = rng.standard_normal(n)
    A = rng.standard_normal((m, n))
    if m >= 2 and rank_a:
        A[-1] = A[0] - 2 * A[1]  # dependent but consistent rows
    c = A @ z0
    G = rng.standard_normal((p, n))
    s0 = rng.uniform(size=p)
    s0[rng.uniform(size=p) < 0.3] = 0
    h = G @ z0 + s0
    kw = {}
    if m:
        kw.update(A=A, c=c)
    if p:
        kw.update(G=G, h=h)
    if box or lp:
        lb = z0 - rng.uniform(size=n)
        ub = z0 + rng.uniform(size=n)
        if fixed:
            lb[:fixed] = ub[:fixed] = z0[:fixed]
        if infbounds:
            lb[rng.uniform(size=n) < 0.3] = -np.inf
            ub[rng.uniform(size=n) < 0.3] = np.inf
        kw.update(lb=lb, ub=ub)
    return Q, q, kw


def kkt_check(Q, q, kw, z, lam, mu, nu, tol=TOL, slack=10.0):
    """The stopping rule of API.md (with a margin factor `slack`) and the multiplier signs."""
    n = len(q)
    Qs = (Q + Q.T) / 2
    A = kw.get("A", np.zeros((0, n)))
    c = kw.get("c", np.zeros(0))
    G = kw.get("G", np.zeros((0, n)))
    h = kw.get("h", np.zeros(0))
    lb = np.broadcast_to(kw.get("lb", -np.inf), (n,))
    ub = np.broadcast_to(kw.get("ub", np.inf), (n,))
    fin = np.isfinite(h)
    Az, Gz, Qz = A @ z, G @ z, Qs @ z
    nrm = lambda v: np.abs(v).max(initial=0.0)  # noqa: E731
    pscale = 1 + max(nrm(Az), nrm(c), nrm(Gz), nrm(h[fin]), nrm(z))
    pres = max(nrm(Az - c), nrm(np.maximum(Gz[fin] - h[fin], 0)), nrm(np.maximum(lb - z, 0)),
               nrm(np.maximum(z - ub, 0)))  # fmt: skip
    assert pres <= slack * tol * pscale
    r = Qz + q + A.T @ lam + G.T @ mu + nu
    dscale = 1 + max(nrm(Qz), nrm(q), nrm(A.T @ lam), nrm(G.T @ mu), nrm(nu))
    assert nrm(r) <= slack * tol * dscale
    assert (mu >= 0).all()
    assert (mu[~fin] == 0).all()
    assert (nu[np.isneginf(lb) & (nu < 0)] == 0).all()
    assert (nu[np.isposinf(ub) & (nu > 0)] == 0).all()
    bterm = (
        np.where(nu > 0, nu * np.where(nu > 0, ub, 0), 0).sum()
        + np.where(nu < 0, nu * np.where(nu < 0, lb, 0), 0).sum()
    )
    terms = [z @ Qz, q @ z, c @ lam, h[fin] @ mu[fin], bterm]
    gap = abs(sum(terms))
    assert gap <= slack * tol * (1 + abs(z @ Qz / 2 + q @ z) + max(abs(t) for t in terms))
    # ν ≥ 0 only at the upper bound, ≤ 0 only at the lower one, 0 off the bounds (to scale)
    span = slack * tol * pscale
    assert (nu[z < ub - span] <= slack * tol * dscale).all()
    assert (nu[z > lb + span] >= -slack * tol * dscale).all()


MIXES = {
    "eq_box": dict(n=12, m=4, p=0, box=True),
    "ineq": dict(n=10, m=0, p=20),
    "eq_ineq_box": dict(n=30, m=6, p=30, box=True),
    "fixed_vars": dict(n=15, m=3, p=10, box=True, fixed=3),
    "inf_bounds": dict(n=15, m=2, p=10, box=True, infbounds=True),
    "rank_deficient_A": dict(n=12, m=4, p=8, box=True, rank_a=True),
}


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_strictly_convex_matches_clarabel(mix):
    rng = np.random.default_rng(sorted(MIXES).index(mix))
    for _ in range(4):
        Q, q, kw = random_problem(rng, **MIXES[mix])
        sol = fastkkt.solve_qp_ex(Q, q, **kw)
        assert sol.info == 0
        status, zr, _ = clarabel_solve(Q, q, **kw)
        assert status == "Solved"
        assert np.abs(sol.z - zr).max() <= 1e-6 * max(1, np.abs(zr).max())
        kkt_check(Q, q, kw, sol.z, sol.lam, sol.mu, sol.nu)
        assert sol.iterations.dtype == np.int32
        assert 0 <= sol.iterations <= 100


@pytest.mark.parametrize("kind", ["lp", "singular_psd"])
def test_lp_and_singular_q_objective_matches_clarabel(kind):
    # the minimizer need not be unique: compare the optimal value and check the KKT conditions
    rng = np.random.default_rng(7)
    for _ in range(4):
        extra = dict(lp=True) if kind == "lp" else dict(rank=3, box=True)
        Q, q, kw = random_problem(rng, 12, 3, 10, **extra)
        z, lam, mu, nu = fastkkt.solve_qp(Q, q, return_multipliers=True, **kw)
        status, _, fr = clarabel_solve(Q, q, **kw)
        assert status == "Solved"
        f = 0.5 * z @ Q @ z + q @ z
        assert abs(f - fr) <= 1e-7 * (1 + abs(fr))
        kkt_check(Q, q, kw, z, lam, mu, nu)


def test_lp_vertex_exact():
    # min qᵀz on the box [0, 1]ⁿ with Σz = 3: the 3 smallest q at 1
    rng = np.random.default_rng(3)
    q = rng.standard_normal(8)
    z = fastkkt.solve_qp(np.zeros((8, 8)), q, A=np.ones((1, 8)), c=[3.0], lb=0, ub=1)
    expected = np.zeros(8)
    expected[np.argsort(q)[:3]] = 1
    np.testing.assert_allclose(z, expected, atol=1e-9)


def test_statuses_in_a_batch_do_not_touch_the_good_elements():
    rng = np.random.default_rng(11)
    n = 6
    Q = np.stack([np.eye(n)] * 6)
    q = rng.standard_normal((6, n))
    lb = np.full((6, n), -1.0)
    ub = np.ones((6, n))
    G = np.zeros((6, 2, n))
    h = np.ones((6, 2))
    lb[1, 0] = 2.0  # lb > ub: primal infeasible
    G[2, 0, 1], G[2, 1, 1], h[2] = 1.0, -1.0, [-3.0, -3.0]  # z₁ ≤ −3 and z₁ ≥ 3
    Q[3] = 0.0  # linear objective, unbounded below: drop the bounds of element 3 below
    lb[3], ub[3] = -np.inf, np.inf
    Q[4] = -np.eye(n)  # not positive semidefinite
    sol = fastkkt.solve_qp_ex(Q, q, G=G, h=h, lb=lb, ub=ub)
    np.testing.assert_array_equal(sol.info, [0, 1, 1, 2, 2, 0])
    for b in (1, 2, 3, 4):
        for arr in (sol.z[b], sol.mu[b], sol.nu[b]):
            assert np.isnan(arr).all()
    for b in (0, 5):
        alone = fastkkt.solve_qp_ex(Q[b], q[b], G=G[b], h=h[b], lb=lb[b], ub=ub[b])
        np.testing.assert_array_equal(alone.z, sol.z[b])
        np.testing.assert_array_equal(alone.nu, sol.nu[b])
    with pytest.raises(fastkkt.QPError) as exc:
        fastkkt.solve_qp(Q, q, G=G, h=h, lb=lb, ub=ub)
    err = exc.value
    assert isinstance(err, fastkkt.KKTError)
    assert isinstance(err, np.linalg.LinAlgError)
    assert err.indices == [(1,), (2,), (3,), (4,)]
    np.testing.assert_array_equal(err.info, sol.info)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is fastkkt.QPError
    assert again.indices == err.indices
    np.testing.assert_array_equal(again.info, err.info)
    assert str(again) == str(err)


def test_infeasible_and_unbounded_certificates():
    n = 5
    q = np.arange(1.0, n + 1)
    # inconsistent equalities
    A = np.vstack([np.ones(n), np.ones(n)])
    assert fastkkt.solve_qp_ex(np.eye(n), q, A=A, c=[1.0, 2.0]).info == 1
    # equalities against bounds
    assert fastkkt.solve_qp_ex(np.eye(n), q, A=np.ones((1, n)), c=[10.0], lb=0, ub=1).info == 1
    # LP unbounded along a ray inside G z ≤ h
    G = -np.eye(n)[:2]
    assert fastkkt.solve_qp_ex(np.zeros((n, n)), -q, G=G, h=np.zeros(2), lb=-1, ub=np.inf).info == 2
    # singular PSD Q, unbounded along its null space
    Q = np.diag([1.0, 1, 1, 1, 0])
    assert fastkkt.solve_qp_ex(Q, q).info == 2
    # ... but bounded when that direction is boxed (q₅ > 0: from below)
    assert fastkkt.solve_qp_ex(Q, q, ub=3.0).info == 2
    assert fastkkt.solve_qp_ex(Q, q, lb=-3.0).info == 0


def test_threads_bitwise():
    rng = np.random.default_rng(5)
    B, n, m, p = 24, 20, 3, 25
    Qs, qs, Gs, hs, As, cs = [], [], [], [], [], []
    for _ in range(B):
        Q, q, kw = random_problem(rng, n, m, p)
        Qs.append(Q), qs.append(q), Gs.append(kw["G"]), hs.append(kw["h"])
        As.append(kw["A"]), cs.append(kw["c"])
    args = dict(A=np.stack(As), c=np.stack(cs), G=np.stack(Gs), h=np.stack(hs), lb=-3.0, ub=3.0)
    fastkkt.set_num_threads(1)  # (conftest's thread-count guard restores the setting)
    one = fastkkt.solve_qp_ex(np.stack(Qs), np.stack(qs), **args)
    fastkkt.set_num_threads(3)
    three = fastkkt.solve_qp_ex(np.stack(Qs), np.stack(qs), **args)
    assert (one.info == 0).all()
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)


def test_broadcasting_and_shared_operands():
    rng = np.random.default_rng(9)
    Q, _q, kw = random_problem(rng, 8, 2, 6, box=True)
    qb = rng.standard_normal((3, 1, 8))
    hb = kw["h"] + rng.uniform(size=(4, 6))
    saved = {k: np.copy(v) for k, v in kw.items()}
    args = dict(kw, h=hb)
    sol = fastkkt.solve_qp_ex(Q, qb, **args)
    assert sol.z.shape == (3, 4, 8)
    assert sol.lam.shape == (3, 4, 2)
    assert sol.mu.shape == (3, 4, 6)
    assert sol.info.shape == (3, 4)
    assert sol.iterations.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            alone = fastkkt.solve_qp_ex(Q, qb[i, 0], **dict(kw, h=hb[j]))
            np.testing.assert_array_equal(alone.z, sol.z[i, j])
    for k, v in saved.items():  # inputs not modified
        np.testing.assert_array_equal(kw[k], v)


def test_layouts_and_integer_input():
    rng = np.random.default_rng(12)
    Q, q, kw = random_problem(rng, 7, 2, 9, box=True)
    z = fastkkt.solve_qp(Q, q, **kw)
    # transposed / strided / byte-swapped views give the same bits
    Qt = np.asfortranarray(Q)
    G2 = np.zeros((9, 14))
    G2[:, ::2] = kw["G"]
    swapped = kw["h"].astype(kw["h"].dtype.newbyteorder())
    args = dict(kw, G=G2[:, ::2], h=swapped)
    np.testing.assert_array_equal(fastkkt.solve_qp(Qt, q, **args), z)
    # integers become float64
    zi = fastkkt.solve_qp(np.eye(3, dtype=np.int64), np.array([1, -2, 3]), lb=-1, ub=1)
    assert zi.dtype == np.float64
    np.testing.assert_allclose(zi, [-1, 1, -1], atol=1e-10)


def test_only_the_symmetric_part_of_q_matters():
    rng = np.random.default_rng(13)
    Q, q, kw = random_problem(rng, 9, 2, 12, box=True)
    K = rng.standard_normal((9, 9))
    skew = K - K.T  # adds nothing to zᵀQz
    z = fastkkt.solve_qp(Q + skew, q, **kw)
    np.testing.assert_allclose(z, fastkkt.solve_qp(Q, q, **kw), rtol=0, atol=1e-12)


def test_scalar_bounds_and_infinite_rows():
    rng = np.random.default_rng(4)
    Q, q, kw = random_problem(rng, 6, 0, 4)
    z1 = fastkkt.solve_qp(Q, q, G=kw["G"], h=kw["h"], lb=-5.0, ub=0.3)
    z2 = fastkkt.solve_qp(Q, q, G=kw["G"], h=kw["h"], lb=np.full(6, -5.0), ub=np.full(6, 0.3))
    np.testing.assert_array_equal(z1, z2)
    # rows with h = +inf are no constraint; their μ is 0
    G = np.vstack([kw["G"], rng.standard_normal((3, 6))])
    h = np.concatenate([kw["h"], np.full(3, np.inf)])
    z, lam, mu, nu = fastkkt.solve_qp(Q, q, G=G, h=h, return_multipliers=True)
    zr = fastkkt.solve_qp(Q, q, G=kw["G"], h=kw["h"])
    np.testing.assert_allclose(z, zr, atol=1e-12)
    assert (mu[4:] == 0).all()
    assert lam.shape == (0,)
    assert (nu == 0).all()


def test_float32():
    rng = np.random.default_rng(6)
    for _ in range(5):
        Q, q, kw = random_problem(rng, 10, 2, 12, box=True)
        kw32 = {k: v.astype(np.float32) for k, v in kw.items()}
        sol = fastkkt.solve_qp_ex(Q.astype(np.float32), q.astype(np.float32), **kw32)
        assert sol.z.dtype == np.float32
        assert sol.nu.dtype == np.float32
        assert sol.info == 0
        z64 = fastkkt.solve_qp(*(a.astype(np.float32).astype(np.float64) for a in (Q, q)),
                               **{k: v.astype(np.float64) for k, v in kw32.items()})  # fmt: skip
        assert np.abs(sol.z - z64).max() <= 1e-3 * max(1, np.abs(z64).max())
    # mixed float32 / float64 promotes to float64; Python scalar bounds do not promote
    assert fastkkt.solve_qp(Q.astype(np.float32), q).dtype == np.float64
    assert fastkkt.solve_qp(Q.astype(np.float32), q.astype(np.float32), lb=-1.0).dtype == np.float32


def test_empty_batch_and_zero_size():
    sol = fastkkt.solve_qp_ex(
        np.zeros((0, 3, 3)), np.zeros((0, 3)), G=np.zeros((2, 3)), h=np.ones(2)
    )
    assert sol.z.shape == (0, 3)
    assert sol.mu.shape == (0, 2)
    assert sol.info.shape == (0,)
    sol = fastkkt.solve_qp_ex(np.zeros((0, 0)), np.zeros(0), G=np.zeros((2, 0)), h=np.ones(2))
    assert sol.info == 0
    assert sol.z.shape == (0,)
    assert (sol.mu == 0).all()
    # n = 0 with an unsatisfiable constraint 0 ≤ −1
    assert (
        fastkkt.solve_qp_ex(np.zeros((0, 0)), np.zeros(0), G=np.zeros((1, 0)), h=[-1.0]).info == 1
    )
    # every coordinate fixed
    z, _lam, _mu, nu = fastkkt.solve_qp(np.eye(2), [1.0, -1.0], lb=[0.5, 0.5], ub=[0.5, 0.5],
                                      return_multipliers=True)  # fmt: skip
    np.testing.assert_allclose(z, [0.5, 0.5])
    np.testing.assert_allclose(nu, [-1.5, 0.5])


def test_max_iter():
    rng = np.random.default_rng(8)
    Q, q, kw = random_problem(rng, 20, 2, 30, box=True)
    sol = fastkkt.solve_qp_ex(Q, q, max_iter=1, **kw)
    assert sol.info == 3
    assert np.isnan(sol.z).all()
    with pytest.raises(fastkkt.QPError, match="max_iter"):
        fastkkt.solve_qp(Q, q, max_iter=1, **kw)


def test_errors():
    Q, q = np.eye(3), np.ones(3)
    G, h = np.ones((2, 3)), np.ones(2)
    with pytest.raises(ValueError, match="A was given without c"):
        fastkkt.solve_qp(Q, q, A=np.ones((1, 3)))
    with pytest.raises(ValueError, match="c was given without A"):
        fastkkt.solve_qp(Q, q, c=np.ones(1))
    with pytest.raises(ValueError, match="G was given without h"):
        fastkkt.solve_qp(Q, q, G=G)
    with pytest.raises(ValueError, match="h was given without G"):
        fastkkt.solve_qp(Q, q, h=h)
    with pytest.raises(TypeError):
        fastkkt.solve_qp(Q, q, np.ones((1, 3)), np.ones(1))  # keyword-only
    with pytest.raises(ValueError, match=r"G must have shape .*\(2, 4\)"):
        fastkkt.solve_qp(Q, q, G=np.ones((2, 4)), h=h)
    with pytest.raises(ValueError, match=r"h must have shape .*\(3,\)"):
        fastkkt.solve_qp(Q, q, G=G, h=np.ones(3))
    with pytest.raises(ValueError, match=r"lb must have shape .*\(2,\)"):
        fastkkt.solve_qp(Q, q, lb=np.zeros(2))
    with pytest.raises(ValueError, match=r"c must have shape .*\(2,\)"):
        fastkkt.solve_qp(Q, q, A=np.ones((1, 3)), c=np.ones(2))
    with pytest.raises(ValueError, match=r"Q must be square"):
        fastkkt.solve_qp(np.ones((3, 2)), q)
    with pytest.raises(ValueError, match="batch dimensions do not broadcast"):
        fastkkt.solve_qp(np.stack([Q] * 2), np.ones((3, 3)))
    for kw, name in [
        (dict(G=G, h=[1.0, -np.inf]), "h"),
        (dict(G=G, h=[1.0, np.nan]), "h"),
        (dict(lb=[0, np.inf, 0]), "lb"),
        (dict(ub=[0, -np.inf, 0]), "ub"),
        (dict(lb=np.nan), "lb"),
        (dict(G=[[1, np.inf, 0], [0, 0, 0]], h=h), "G"),
    ]:
        with pytest.raises(ValueError, match=f"^{name} contains"):
            fastkkt.solve_qp(Q, q, **kw)
    with pytest.raises(ValueError, match=r"^q contains"):
        fastkkt.solve_qp(Q, [1, np.nan, 0])
    with pytest.raises(TypeError):
        fastkkt.solve_qp(Q.astype(complex), q)
    with pytest.raises(ValueError, match="tol"):
        fastkkt.solve_qp(Q, q, tol=0)
    with pytest.raises(ValueError, match="max_iter"):
        fastkkt.solve_qp(Q, q, max_iter=-1)


def test_nonfinite_input_found_in_every_batch_element_and_layout():
    """The finiteness check (in the core's boundary) walks every element of batched, broadcast
    and non-contiguous operands, on the fast path (ndarrays of one dtype and batch) and the
    general one, and names the operand; check_finite=False skips it."""
    rng = np.random.default_rng(3)
    B, n, p = 5, 4, 3
    args = dict(
        Q=np.broadcast_to(np.eye(n), (B, n, n)),
        q=rng.standard_normal((B, n)),
        G=rng.standard_normal((B, p, n)),
        h=np.ones((B, p)),
        lb=np.full((n, B), -np.inf).T,  # non-contiguous
        ub=np.full((B, n), np.inf),
    )
    for name, idx, value in [
        ("q", (4, 2), np.nan),
        ("G", (3, 1, 0), np.inf),
        ("h", (2, 1), -np.inf),
        ("lb", (4, 3), np.inf),
        ("ub", (1, 0), -np.inf),
        ("Q", (0, 1, 1), np.nan),
    ]:
        bad = np.array(args[name])  # a writeable copy (Q is a broadcast view)
        bad[idx] = value
        for kw in ({**args, name: bad}, {**args, name: bad.astype(np.float32)}):  # mixed: general
            with pytest.raises(ValueError, match=f"^{name} contains"):
                fastkkt.solve_qp_ex(**kw)
            fastkkt.solve_qp_ex(**kw, check_finite=False)  # no check: no error
    # +inf in h and ub and -inf in lb mean no constraint
    sol = fastkkt.solve_qp_ex(**{**args, "h": np.full((B, p), np.inf)})
    np.testing.assert_array_equal(sol.info, 0)


def test_float32_feasible_batch_has_no_false_infeasibility_certificate():
    """In float32, Aᵀλ + Gᵀμ rounded in float can cancel into what looks like a primal
    infeasibility certificate: one of these 40 feasible problems was reported primal infeasible
    (status 1 at iteration 4) before the verdict was confirmed in double (qp.hpp)."""
    from fastkkt.testing import clarabel_qp, feasible_qp

    P = feasible_qp(40, 6, 0, 5, seed=3)
    args = {k: P[k] for k in ("Q", "q", "G", "h")}
    sol = fastkkt.solve_qp_ex(**{k: v.astype(np.float32) for k, v in args.items()})
    np.testing.assert_array_equal(sol.info, 0)
    ref = clarabel_qp(**args)
    assert np.abs(sol.z.astype(np.float64) - ref["z"]).max() < 2e-3


@pytest.mark.parametrize("n", [2, 5, 20])
@pytest.mark.parametrize("rank_Q", [0, 1])
def test_singular_q_two_rows_has_no_false_infeasibility_certificate(n, rank_Q):
    """Feasible problems with Q singular (rank 0: an LP, often with q = 0, a pure feasibility
    problem) and two inequality rows, whose optimum feasible_qp builds. A rejected polish left
    its candidate's Gᵀμ in the residual pieces that the primal-infeasibility test then read beside
    the iterate's hᵀμ: 2-14 of each 64 came back status 1 (qp.hpp run_ipm)."""
    from fastkkt.testing import assert_qp_kkt, feasible_qp

    P = feasible_qp(64, n, 0, 2, bounds="none", rank_Q=rank_Q, seed=n * 1000 + 2)
    args = {k: P[k] for k in ("Q", "q", "G", "h")}
    sol = fastkkt.solve_qp_ex(**args)
    np.testing.assert_array_equal(sol.info, 0)
    assert_qp_kkt(args, sol.z, sol.lam, sol.mu, sol.nu, 1e-7)
    # the optimal value (z need not be unique) against that of the optimum it was built from

    def obj(z):
        return 0.5 * np.einsum("bi,bij,bj->b", z, P["Q"], z) + np.einsum("bi,bi->b", P["q"], z)

    np.testing.assert_allclose(obj(sol.z), obj(P["z_star"]), atol=1e-6)


def test_no_cycling_between_two_faces():
    """A feasible QP (n = 2, m = 1, p = 2, upper bounds; at the optimum no inequality or bound
    is active) on which Mehrotra's full steps put one pair at 10⁻³–10⁻⁴ of the mean product and
    the next direction jumped to another face: the iterates cycled between the two faces with a
    period of 4 until max_iter (status 3). The step's centrality safeguard (qp.hpp) ends it; the
    reference solver and Clarabel solve it at once. (Found by test_qp_properties.py.)"""
    from fastkkt.testing import clarabel_qp

    P = {
        "Q": np.array([[2.64533707, -0.2225467], [-0.2225467, 1.39000525]]),
        "q": np.array([-5.75442903, 1.22054545]),
        "A": np.array([[-0.23081664, -0.52585712]]),
        "c": np.array([-0.55811191]),
        "G": np.array([[-1.65853311, 1.35739342], [-0.18298994, 0.87736159]]),
        "h": np.array([-3.61815842, 0.45886015]),
        "ub": np.array([2.40843333, 0.68221827]),
    }
    sol = fastkkt.solve_qp_ex(**P)
    assert sol.info == 0
    ref = clarabel_qp(**{k: v[None] for k, v in P.items()})
    np.testing.assert_allclose(sol.z, ref["z"][0], atol=1e-7)
    np.testing.assert_allclose(sol.z, fastkkt.reference.solve_qp(**P), atol=1e-7)


@pytest.mark.parametrize(
    ("n", "m", "p", "rank_Q"), [(2, 1, 30, 0), (3, 0, 30, 1), (5, 0, 30, None)]
)
def test_many_rows_in_few_dimensions_keep_the_best_iterate(n, m, p, rank_Q):
    """Thirty inequality rows in 2–5 dimensions (degenerate vertices). One element of each batch
    met the stopping rule, failed the polish, iterated on as μ → 0 and lost accuracy again; the
    last iterate to meet the rule then failed the final check on the full problem by a hair
    (status 3 at iteration 14–15). The solver then returns the best iterate that met the rule
    (qp.hpp)."""
    from fastkkt.testing import assert_qp_kkt, feasible_qp

    P = feasible_qp(64, n, m, p, bounds="none", rank_Q=rank_Q, seed=n * 1000 + m * 100 + p)
    args = {k: P[k] for k in ("Q", "q", "A", "c", "G", "h") if P.get(k) is not None}
    sol = fastkkt.solve_qp_ex(**args)
    np.testing.assert_array_equal(sol.info, 0)
    assert_qp_kkt(args, sol.z, sol.lam, sol.mu, sol.nu, 1e-7)
    if rank_Q is None:  # Q positive definite: the optimum is unique
        scale = 1 + np.abs(P["z_star"]).max(-1, keepdims=True)
        assert (np.abs(sol.z - P["z_star"]) <= 1e-6 * scale).all()
