"""fastkkt.solve_qp on a shape the dual Schur complement is chosen for (qp_schur.hpp: Q ≻ 0,
no A, no bounds, p ≤ n/2; OptNet's generator with fewer rows than variables), with the path on
(the default) and off (FASTKKT_QP_SCHUR=0), one group; z checked against Clarabel."""

from __future__ import annotations

import clarabel
import numpy as np
import pytest
import scipy.sparse as sp

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
