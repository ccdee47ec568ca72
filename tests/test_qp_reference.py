"""fastkkt.reference.solve_qp against independent solvers: Clarabel (an interior-point conic
solver, polished on its active set) and PIQP (a proximal interior-point QP solver), on random
problems of every constraint mix, on BENCH_QP.md's small cases, and on the status of
infeasible and unbounded problems."""

from __future__ import annotations

import numpy as np
import pytest

from fastkkt import reference
from fastkkt.testing import (
    assert_qp_kkt,
    clarabel_qp,
    feasible_qp,
    infeasible_qp,
    qp_case,
    unbounded_qp,
)

pytest.importorskip("clarabel")

ARGS = ("Q", "q", "A", "c", "G", "h", "lb", "ub")


def args(problem: dict) -> dict:
    return {k: problem[k] for k in ARGS if problem.get(k) is not None}


def rel_err(z: np.ndarray, z_ref: np.ndarray) -> np.ndarray:
    return np.abs(z - z_ref).max(-1) / np.maximum(1.0, np.abs(z_ref).max(-1))


def _random_generic(B: int, n: int, m: int, p: int, box: bool, seed: int) -> dict:
    """BENCH_QP.md's 'generic' recipe at small sizes: the optimum is not known in advance
    (q is unrelated to the constraints)."""
    rng = np.random.default_rng([seed, B, n, m, p])
    M = rng.standard_normal((B, n, n))
    Q = M @ M.transpose(0, 2, 1) / n + 0.1 * np.eye(n)
    z0 = rng.standard_normal((B, n))
    A = rng.standard_normal((B, m, n))
    G = rng.standard_normal((B, p, n))
    out = {
        "Q": Q,
        "q": rng.standard_normal((B, n)),
        "A": A,
        "c": np.einsum("bij,bj->bi", A, z0),
        "G": G,
        "h": np.einsum("bij,bj->bi", G, z0)
        + rng.uniform(0, 1, (B, p)) * (rng.uniform(size=(B, p)) > 0.3),
    }
    if box:
        out["lb"] = z0 - rng.uniform(size=(B, n))
        out["ub"] = z0 + rng.uniform(size=(B, n))
    return out


@pytest.mark.parametrize(
    ("n", "m", "p", "box"),
    [(8, 0, 16, False), (12, 4, 0, True), (10, 3, 10, True), (15, 0, 30, True), (6, 5, 0, False)],
)
def test_matches_polished_clarabel(n, m, p, box):
    P = _random_generic(16, n, m, p, box, seed=1)
    ours = reference.solve_qp_ex(**args(P))
    theirs = clarabel_qp(**args(P))
    np.testing.assert_array_equal(ours.info, 0)
    np.testing.assert_array_equal(theirs["status"], 0)
    assert theirs["polished"].all()
    assert rel_err(ours.z, theirs["z"]).max() <= 1e-9
    # multipliers are unique here (Q ≻ 0, independent active rows): compare them too
    for name in ("lam", "mu", "nu"):
        got, want = getattr(ours, name), theirs[name]
        scale = 1 + np.abs(want).max(initial=0)
        assert np.abs(got - want).max(initial=0) <= 1e-7 * scale, name
    assert_qp_kkt(P, *ours[:4], 1e-12)


@pytest.mark.parametrize(
    "kw",
    [
        dict(bounds="inf", fixed=2, weak=3),
        dict(bounds="lower", weak=4),
        dict(bounds="box", rank_A=1),
        dict(bounds="upper"),
    ],
)
def test_degenerate_problems_exact(kw):
    """Weakly active rows (slack 0 and multiplier 0), fixed variables, ±inf bounds,
    rank-deficient A: the polish still lands on the built-in optimum, far below tol.
    (Clarabel polished on its own active-set guess misses it by up to 4e-6 here: on
    degenerate rows slack and multiplier are both ~0, so its guess can be wrong.)"""
    P = feasible_qp(12, 9, 3, 8, seed=2, **kw)
    ours = reference.solve_qp_ex(**args(P))
    np.testing.assert_array_equal(ours.info, 0)
    assert rel_err(ours.z, P["z_star"]).max() <= 1e-9
    assert_qp_kkt(P, *ours[:4], 1e-10)


def test_lp_objective_matches_clarabel():
    P = feasible_qp(10, 8, 2, 6, bounds="box", rank_Q=0, seed=3)
    ours = reference.solve_qp_ex(**args(P))
    theirs = clarabel_qp(**args(P))
    np.testing.assert_array_equal(ours.info, 0)
    f_ours, f_theirs = (P["q"] * ours.z).sum(-1), (P["q"] * theirs["z"]).sum(-1)
    np.testing.assert_allclose(f_ours, f_theirs, atol=1e-8 * (1 + np.abs(f_theirs).max()))


@pytest.mark.parametrize("name", ["tiny", "scqpth_small"])
def test_bench_cases(name):
    """BENCH_QP.md's bar on its small cases: within 1e-6 of the polished reference (the
    reference reaches ~1e-13; larger cases are measured in benchmarks/)."""
    P = qp_case(name)
    ours = reference.solve_qp_ex(**args(P))
    theirs = clarabel_qp(**args(P))
    np.testing.assert_array_equal(ours.info, 0)
    assert rel_err(ours.z, theirs["z"]).max() <= 1e-10


@pytest.mark.parametrize("kind", ["rows", "mixed", "equality"])
def test_infeasible_agrees_with_clarabel(kind):
    P = infeasible_qp(3, 6, kind=kind, seed=4)
    np.testing.assert_array_equal(reference.solve_qp_ex(**args(P)).info, 1)
    if kind != "equality":  # Clarabel's presolve-free IPM may stall on inconsistent Az = c
        np.testing.assert_array_equal(clarabel_qp(**args(P))["status"], 1)


def test_unbounded_agrees_with_clarabel():
    P = unbounded_qp(3, 6, 1, 4, seed=5)
    np.testing.assert_array_equal(reference.solve_qp_ex(**args(P)).info, 2)
    np.testing.assert_array_equal(clarabel_qp(**args(P))["status"], 2)


def test_matches_piqp():
    piqp = pytest.importorskip("piqp")
    P = _random_generic(6, 10, 2, 12, True, seed=6)
    ours = reference.solve_qp_ex(**args(P))
    for b in range(6):
        solver = piqp.DenseSolver()
        solver.settings.eps_abs = 1e-12
        solver.settings.eps_rel = 0.0
        F = np.asfortranarray
        solver.setup(F(P["Q"][b]), P["q"][b], F(P["A"][b]), P["c"][b], F(P["G"][b]),
                     h_u=P["h"][b], x_l=P["lb"][b], x_u=P["ub"][b])  # fmt: skip
        assert solver.solve() == piqp.PIQP_SOLVED
        assert rel_err(ours.z[b], solver.result.x) <= 1e-8


def test_float32_is_the_rounded_float64_answer():
    """float32 inputs are solved in float64 (then rounded): within a few float32 ulps of the
    float64 answer to the same (float32) data."""
    P = feasible_qp(4, 6, 1, 5, bounds="upper", seed=7)
    P32 = {k: v.astype(np.float32) for k, v in args(P).items()}
    sol32 = reference.solve_qp_ex(**P32)
    sol64 = reference.solve_qp_ex(**{k: v.astype(np.float64) for k, v in P32.items()})
    for x in sol32[:4]:
        assert x.dtype == np.float32
    # (the multipliers need not be unique: as many rows may be active as there are variables)
    ulp = np.finfo(np.float32).eps * (1 + np.abs(sol64.z).max())
    np.testing.assert_allclose(sol32.z, sol64.z, atol=4 * ulp, rtol=0)
