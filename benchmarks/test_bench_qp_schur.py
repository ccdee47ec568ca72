"""fastkkt.solve_qp on a shape the dual Schur complement is chosen for (qp_schur.hpp: Q ≻ 0,
no A, no bounds, p ≤ n/2; OptNet's generator with fewer rows than variables), with the path on
(the default) and off (FASTKKT_QP_SCHUR=0), one group; z checked against Clarabel. And OptNet's
layer shape with Q and G shared by the batch (passed once, and materialized) against PIQP and
Clarabel, one group, z checked against the polished Clarabel reference, iterations recorded."""

from __future__ import annotations

import importlib.util

import clarabel
import numpy as np
import pytest
import scipy.sparse as sp
from methods import QP_RTOL, QPProblem, qp_clarabel, qp_piqp

import fastkkt


@pytest.fixture(scope="module")
def narrow_optnet():
    B, n, p = 32, 200, 50
    rng = np.random.default_rng([0, B, n, 0, p])
    L = rng.uniform(size=(B, n, n))
    Q = L @ np.swapaxes(L, 1, 2) + 1e-3 * np.eye(n)
    G = rng.standard_normal((B, p, n))
    h = np.einsum("bij,bj->bi", G, rng.standard_normal((B, n))) + rng.uniform(size=(B, p))
    q = rng.standard_normal((B, n))
    s = clarabel.DefaultSettings()
    s.verbose = False
    s.tol_gap_abs = s.tol_gap_rel = s.tol_feas = 1e-11
    refs = []
    for b in range(4):
        cones = [clarabel.NonnegativeConeT(p)]
        P = sp.csc_matrix(np.triu(Q[b]))
        sol = clarabel.DefaultSolver(P, q[b], sp.csc_matrix(G[b]), h[b], cones, s).solve()
        refs.append(np.array(sol.x))
    return Q, q, G, h, np.stack(refs)


@pytest.mark.parametrize("mode", ["", "0"], ids=["schur", "default-path"])
def test_qp_schur_forward(benchmark, monkeypatch, narrow_optnet, mode):
    Q, q, G, h, zref = narrow_optnet
    monkeypatch.setenv("FASTKKT_QP_SCHUR", mode)
    benchmark.group = "qp optnet 32x200x50 (Schur path)"
    sol = benchmark(lambda: fastkkt.solve_qp_ex(Q, q, G=G, h=h))
    assert (sol.info == 0).all()
    err = np.abs(sol.z[: len(zref)] - zref).max() / max(1.0, np.abs(zref).max())
    assert err <= 1e-6


# --------------------------------------------------------------------------------------------
# OptNet's layer: one Q and G (layer parameters) shared by a batch of q and h (per sample)


class SharedOptnet(QPProblem):
    """BENCH_QP.md's optnet shape (B = 128, n = p = 100) and generator, with Q and G drawn once
    for the batch: Q = sym(LLᵀ + 1e-3·I), L = U(n, n); G = N(p, n); per element z₀ = N(n),
    s₀ = U(p), q = N(n), h = Gz₀ + s₀. `args` holds Q and G materialized (B copies, for the
    peers' loops and the reference), `shared` the same call with Q (n, n) and G (p, n)."""

    def __init__(self, B: int = 128, n: int = 100, p: int = 100) -> None:
        self.name = f"optnet shared Q, G {B}x{n}x{p}"
        self.B, self.n, self.m, self.p, self.box = B, n, 0, p, False
        rng = np.random.default_rng([0, B, n, 0, p, 1])
        L = rng.uniform(size=(n, n))
        Q = L @ L.T + 1e-3 * np.eye(n)
        Q = (Q + Q.T) / 2
        G = rng.standard_normal((p, n))
        z0 = rng.standard_normal((B, n))
        s0 = rng.uniform(size=(B, p))
        q = rng.standard_normal((B, n))
        h = z0 @ G.T + s0
        self.w = rng.standard_normal((B, n))
        self.shared = {"Q": Q, "q": q, "G": G, "h": h}
        self.args = {
            "Q": np.broadcast_to(Q, (B, n, n)).copy(),
            "q": q,
            "G": np.broadcast_to(G, (B, p, n)).copy(),
            "h": h,
        }


@pytest.fixture(
    scope="module", params=[(128, 100, 100), (128, 100, 50)], ids=lambda s: "x".join(map(str, s))
)
def shared_optnet(request: pytest.FixtureRequest) -> SharedOptnet:
    """OptNet's shape (p = n: the default path, the PSD test shared) and one with fewer rows
    (p = n/2: the Schur complement, its factors shared)."""
    prob = SharedOptnet(*request.param)
    prob.z_ref  # the reference first, outside the timing  # noqa: B018
    return prob


def _fastkkt(args):
    def run():
        sol = fastkkt.solve_qp_ex(**args)
        return sol.z, sol.iterations

    return run


SHARED_METHODS = {
    "fastkkt-shared": lambda p: _fastkkt(p.shared),
    "fastkkt-materialized": lambda p: _fastkkt(p.args),
    "piqp": qp_piqp,
    "clarabel": qp_clarabel,
}


@pytest.mark.parametrize("method", list(SHARED_METHODS))
def test_qp_shared_optnet(benchmark, shared_optnet, method):
    """fastkkt with Q and G passed once (stride-0 views in the core: the PSD test and, where the
    shape takes the Schur complement, its factors computed once per call) and materialized,
    against the peers' loops; z within 1e-6 of the polished Clarabel reference."""
    if method in ("piqp", "clarabel") and importlib.util.find_spec(method) is None:
        pytest.skip(f"{method} is not installed")
    run = SHARED_METHODS[method](shared_optnet)
    run()  # warm-up
    benchmark.group = f"qp {shared_optnet.name}"
    z, iterations = benchmark(run)
    shared_optnet.check_z(z, QP_RTOL)
    iterations = np.asarray(iterations)
    benchmark.extra_info["iterations"] = {
        "min": int(iterations.min()),
        "median": float(np.median(iterations)),
        "max": int(iterations.max()),
    }
