"""The solve_qp helpers of fastkkt.testing: the BENCH_QP.md generators follow their recipe,
the built-in optima of feasible_qp satisfy the KKT conditions, and the checkers
(qp_kkt_residuals, assert_qp_kkt) reject wrong answers."""

from __future__ import annotations

import numpy as np
import pytest

from fastkkt.testing import (
    QP_CASES,
    assert_qp_kkt,
    feasible_qp,
    qp_case,
    qp_kkt_residuals,
)


@pytest.mark.parametrize("name", ["tiny", "scqpth_small", "mpc"])
def test_bench_case_shapes_and_recipe(name):
    B, n, m, p, box, kind = QP_CASES[name]
    P = qp_case(name)
    assert P["Q"].shape == (B, n, n)
    assert P["w"].shape == (B, n)
    np.testing.assert_array_equal(P["Q"], np.swapaxes(P["Q"], -1, -2))
    assert (np.linalg.eigvalsh(P["Q"]) > 0).all()
    assert (P["A"] is None) == (m == 0)
    assert (P["G"] is None) == (p == 0)
    assert (P["lb"] is None) == (not box)
    if kind == "generic":  # z0 (drawn right after q) is feasible, ~30 % of rows tight
        rng = np.random.default_rng([0, B, n, m, p])
        rng.standard_normal((B, n, n))
        rng.standard_normal((B, n))
        z0 = rng.standard_normal((B, n))
        if m:
            np.testing.assert_allclose(np.einsum("bij,bj->bi", P["A"], z0), P["c"], atol=1e-12)
        if box:
            assert (P["lb"] <= z0).all()
            assert (z0 <= P["ub"]).all()
    if kind == "scqpth":  # two-sided rows: G = [Ã; −Ã], h = [u; −l], l < 0 < u
        k = p // 2
        np.testing.assert_array_equal(P["G"][:, :k], -P["G"][:, k:])
        assert (P["h"] > 0).all()
        assert ((P["G"][:, :k] != 0).sum(-1) >= 1).all()  # no empty row


def test_svm_case():
    pytest.importorskip("sklearn")
    P = qp_case("svm")
    y = P["A"][0, 0]
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert len(y) == 569
    np.testing.assert_array_equal(P["q"], -1.0)
    np.testing.assert_array_equal(P["lb"], 0.0)
    np.testing.assert_array_equal(P["ub"], 1.0)
    # Q = yyᵀ∘K with an RBF kernel: unit diagonal, positive semidefinite
    np.testing.assert_allclose(np.diag(P["Q"][0]), 1.0)
    assert np.linalg.eigvalsh(P["Q"][0]).min() > -1e-10


@pytest.mark.parametrize(
    "kw",
    [
        dict(bounds="box"),
        dict(bounds="inf", fixed=2, weak=2),
        dict(bounds="lower", rank_Q=0),
        dict(bounds="upper", rank_A=1),
        dict(bounds="none", rank_Q=2),
    ],
)
def test_feasible_qp_optimum_satisfies_kkt(kw):
    """The optimum and multipliers the problem was built from pass the checker at 1e-12."""
    P = feasible_qp((2, 3), 7, 3, 6, seed=1, **kw)
    assert P["z_star"].shape == (2, 3, 7)
    assert_qp_kkt(P, P["z_star"], P["lam_star"], P["mu_star"], P["nu_star"], 1e-12)


def _solved():
    """A problem, and its exact optimum with multipliers (the box of z ≥ 0 on min ½‖z − v‖²)."""
    v = np.array([1.0, -2.0, 0.5])
    P = {"Q": np.eye(3), "q": -v, "lb": np.zeros(3), "G": np.ones((1, 3)), "h": np.array([1.0])}
    z = np.array([0.75, 0.0, 0.25])  # projection of v onto {z ≥ 0, Σz ≤ 1}: θ = 0.25
    mu = np.array([0.25])
    nu = np.array([0.0, -2.25, 0.0])  # z − v + μ·1 + ν = 0
    return P, z, np.zeros(0), mu, nu


def test_checker_accepts_the_exact_answer():
    P, z, lam, mu, nu = _solved()
    assert_qp_kkt(P, z, lam, mu, nu, 1e-14)
    p, d, g = qp_kkt_residuals(P["Q"], P["q"], z, lam, mu, nu, G=P["G"], h=P["h"], lb=P["lb"])
    assert max(p, d, g) <= 1e-15


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda z, mu, nu: (z + [0.0, -1e-6, 0.0], mu, nu), "primal"),  # below lb
        (lambda z, mu, nu: (z + [1e-6, 0.0, 0.0], mu, nu), "primal|dual"),  # Σz > 1
        (lambda z, mu, nu: (z, mu + 1e-6, nu), "dual"),
        (lambda z, mu, nu: (z, -mu, nu + 2 * mu), r"μ|gap|ν"),  # stationary, wrong sign
        (lambda z, mu, nu: (z, mu, -nu), "dual|ν"),
    ],
)
def test_checker_rejects_wrong_answers(change, message):
    P, z, lam, mu, nu = _solved()
    z2, mu2, nu2 = change(z, mu, nu)
    with pytest.raises(AssertionError, match=message):
        assert_qp_kkt(P, z2, lam, mu2, nu2, 1e-8)


def test_checker_rejects_multiplier_on_inactive_bound():
    """ν ≠ 0 on a coordinate strictly inside its bounds (stationarity kept by moving q)."""
    P, z, lam, mu, nu = _solved()
    nu_bad = nu + [-0.1, 0.0, 0.0]  # lower-bound multiplier on z₀ = 0.75 > 0
    P = {**P, "q": P["q"] + 0.1 * np.array([1.0, 0.0, 0.0])}
    with pytest.raises(AssertionError, match=r"ν|gap"):
        assert_qp_kkt(P, z, lam, mu, nu_bad, 1e-8)
