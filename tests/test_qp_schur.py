"""fastkkt.solve_qp through the dual Schur complement (qp_schur.hpp: Q ≻ 0 factored once, the
p×p system G Q⁻¹ Gᵀ + W⁻¹ per iteration) against Clarabel, on the shapes where it is chosen,
on near-degenerate and weakly active constraints, in float32, and its fallback to the default
path. FASTKKT_QP_SCHUR=0/1 (read per call) switches the path off / on wherever it qualifies."""

from __future__ import annotations

import clarabel
import numpy as np
import pytest
import scipy.sparse as sp

import fastkkt


def clarabel_z(Q, q, G, h):
    """Clarabel at tight tolerances, then its active set solved as equalities (polished) when
    that is feasible with multipliers of the right sign: the exact optimum."""
    n = len(q)
    s = clarabel.DefaultSettings()
    s.verbose = False
    s.tol_gap_abs = s.tol_gap_rel = s.tol_feas = 1e-11
    s.max_iter = 300
    Qs = (Q + Q.T) / 2
    cones = [clarabel.NonnegativeConeT(len(h))]
    sol = clarabel.DefaultSolver(
        sp.csc_matrix(np.triu(Qs)), q, sp.csc_matrix(G), h, cones, s
    ).solve()
    assert str(sol.status) == "Solved"
    x, y, sl = np.array(sol.x), np.array(sol.z), np.array(sol.s)
    act = sl < y
    C = G[act]
    k = len(C)
    K = np.block([[Qs, C.T], [C, np.zeros((k, k))]])
    rhs = np.concatenate([-q, h[act]])
    sol2 = np.linalg.lstsq(K, rhs, rcond=None)[0]
    z = sol2[:n]
    ok = (G @ z <= h + 1e-9 * (1 + np.abs(h))).all() and (sol2[n:] >= -1e-9).all()
    return z if ok else x


def optnet_like(rng, B, n, p):
    L = rng.uniform(size=(B, n, n))
    Q = L @ np.swapaxes(L, 1, 2) / n + 1e-2 * np.eye(n)
    G = rng.standard_normal((B, p, n))
    z0 = rng.standard_normal((B, n))
    h = np.einsum("bij,bj->bi", G, z0) + rng.uniform(size=(B, p))
    return Q, rng.standard_normal((B, n)), G, h


def scqpth_like(rng, B, n, p):
    k = p // 2
    M = rng.standard_normal((B, n, n)) * (rng.uniform(size=(B, n, n)) < 0.5)
    Q = np.swapaxes(M, 1, 2) @ M + 0.01 * np.eye(n)
    V = rng.standard_normal((B, k, n)) * (rng.uniform(size=(B, k, n)) < 0.15)
    V[:, :, 0] += 1.0  # no empty row
    G = np.concatenate([V, -V], 1)
    h = np.concatenate([rng.uniform(size=(B, k)), rng.uniform(size=(B, k))], 1)
    return Q, rng.standard_normal((B, n)), G, h


def solve(monkeypatch, mode, Q, q, G, h):
    monkeypatch.setenv("FASTKKT_QP_SCHUR", mode)
    return fastkkt.solve_qp_ex(Q, q, G=G, h=h)


def assert_matches_clarabel(sol, Q, q, G, h, tol=1e-6):
    assert (sol.info == 0).all()
    for b in range(len(q)):
        zr = clarabel_z(Q[b], q[b], G[b], h[b])
        err = np.abs(sol.z[b] - zr).max() / max(1.0, np.abs(zr).max())
        assert err <= tol, (b, err)


@pytest.mark.parametrize(
    ("gen", "n", "p"), [(optnet_like, 80, 30), (optnet_like, 100, 50), (scqpth_like, 60, 120)]
)
def test_schur_path_matches_clarabel(monkeypatch, gen, n, p):
    rng = np.random.default_rng([1, n, p])
    Q, q, G, h = gen(rng, 4, n, p)
    on = solve(monkeypatch, "1", Q, q, G, h)
    assert_matches_clarabel(on, Q, q, G, h)


@pytest.mark.parametrize(
    ("n", "p", "routed"),
    [(100, 30, "1"), (64, 32, "1"), (100, 75, "1"), (80, 60, "1"), (64, 48, "0"), (100, 100, "0")],
)
def test_shape_rule(monkeypatch, n, p, routed):
    # the default follows the rule (m = 0; n ≥ 32, p ≤ n/2 or n ≥ 80, p ≤ 3n/4): bitwise the
    # forced path's result
    rng = np.random.default_rng(2)
    Q, q, G, h = optnet_like(rng, 2, n, p)
    monkeypatch.delenv("FASTKKT_QP_SCHUR", raising=False)
    default = fastkkt.solve_qp_ex(Q, q, G=G, h=h)
    forced = solve(monkeypatch, routed, Q, q, G, h)
    for a, b in zip(default, forced):
        np.testing.assert_array_equal(a, b)
    assert_matches_clarabel(default, Q, q, G, h)


def test_near_degenerate_and_weakly_active(monkeypatch):
    rng = np.random.default_rng(3)
    B, n, p = 4, 40, 60
    Q, q, G, h = optnet_like(rng, B, n, p)
    zs = np.stack([np.linalg.solve(Q[b], -q[b]) for b in range(B)])
    # weakly active: the unconstrained minimizer on 10 rows (zero slack and zero multiplier)
    h[:, :10] = np.einsum("bij,bj->bi", G[:, :10], zs)
    # near-degenerate: rows 10–19 repeated up to 1e-9 (dependent active rows)
    G[:, 20:30] = G[:, 10:20] * (1 + 1e-9)
    h[:, 20:30] = h[:, 10:20] * (1 + 1e-9)
    # strongly active cut through the minimizer on rows 30–39
    h[:, 30:40] = np.einsum("bij,bj->bi", G[:, 30:40], zs) - rng.uniform(0.1, 1, (B, 10))
    sol = solve(monkeypatch, "1", Q, q, G, h)
    assert_matches_clarabel(sol, Q, q, G, h)


def test_ill_conditioned_q_falls_back_to_the_default_path(monkeypatch):
    rng = np.random.default_rng(4)
    B, n, p = 3, 40, 40
    U = np.linalg.qr(rng.standard_normal((B, n, n)))[0]
    Q = U * np.logspace(0, -12, n) @ np.swapaxes(U, 1, 2)
    Q = (Q + np.swapaxes(Q, 1, 2)) / 2
    _, q, G, h = optnet_like(rng, B, n, p)
    on = solve(monkeypatch, "1", Q, q, G, h)
    off = solve(monkeypatch, "0", Q, q, G, h)
    for a, b in zip(on, off):  # κ(Q) = 1e12 > 1/√ε: never the Schur path
        np.testing.assert_array_equal(a, b)
    assert (on.info == 0).all()


def test_float32(monkeypatch):
    rng = np.random.default_rng(5)
    B, n, p = 3, 48, 48
    M = rng.standard_normal((B, n, n))
    Q = M @ np.swapaxes(M, 1, 2) / n + np.eye(n)
    _, q, G, h = optnet_like(rng, B, n, p)
    args32 = [a.astype(np.float32) for a in (Q, q, G, h)]
    on = solve(monkeypatch, "1", *args32)
    assert on.z.dtype == np.float32
    assert (on.info == 0).all()
    Q64, q64, G64, h64 = (a.astype(np.float64) for a in args32)
    for b in range(B):
        zr = clarabel_z(Q64[b], q64[b], G64[b], h64[b])
        assert np.abs(on.z[b] - zr).max() <= 1e-3 * max(1.0, np.abs(zr).max())


def test_threads_bitwise(monkeypatch):
    rng = np.random.default_rng(6)
    Q, q, G, h = optnet_like(rng, 6, 64, 64)
    monkeypatch.setenv("FASTKKT_QP_SCHUR", "1")
    fastkkt.set_num_threads(1)  # (conftest's thread-count guard restores the setting)
    one = fastkkt.solve_qp_ex(Q, q, G=G, h=h)
    fastkkt.set_num_threads(2)
    two = fastkkt.solve_qp_ex(Q, q, G=G, h=h)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_unpolished_schur_element_solved_again(monkeypatch):
    """A near-degenerate OptNet element (an active row with μ ≈ 4e-5) on which the Schur
    iterations end without an accepted polish (z was 1.8e-4 off): it is solved again on the
    default path, so the routed result (n = 100, p = 50) is as accurate as the default path's."""
    B, n, p, b = 96, 100, 50, 22
    rng = np.random.default_rng([1, B, n, p])
    L = rng.uniform(size=(B, n, n))[b]
    G = rng.standard_normal((B, p, n))[b]
    z0 = rng.standard_normal((B, n))[b]
    h = G @ z0 + rng.uniform(size=(B, p))[b]
    q = rng.standard_normal((B, n))[b]
    Q = L @ L.T + 1e-3 * np.eye(n)
    Q = (Q + Q.T) / 2
    monkeypatch.delenv("FASTKKT_QP_SCHUR", raising=False)
    routed = fastkkt.solve_qp_ex(Q, q, G=G, h=h)
    forced = solve(monkeypatch, "1", Q, q, G, h)
    for x, y in zip(routed, forced):
        np.testing.assert_array_equal(x, y)
    zr = clarabel_z(Q, q, G, h)
    assert routed.info == 0
    assert np.abs(routed.z - zr).max() <= 1e-6 * max(1.0, np.abs(zr).max())
