"""Property tests of solve_qp on both implementations (hypothesis): random constraint mixes
with a built-in optimum, and invariances that hold whatever the optimum is."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastkkt.testing import assert_qp_kkt, feasible_qp

ARGS = ("Q", "q", "A", "c", "G", "h", "lb", "ub")


def args(problem: dict) -> dict:
    return {k: problem[k] for k in ARGS if problem.get(k) is not None}


@st.composite
def problems(draw):
    n = draw(st.integers(1, 8))
    m = draw(st.integers(0, n - 1))
    p = draw(st.integers(0, 6))
    bounds = draw(st.sampled_from(["none", "lower", "upper", "box", "inf"]))
    fixed = draw(st.integers(0, min(2, n))) if bounds in ("box", "inf") else 0
    weak = draw(st.integers(0, p))
    batch = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    return feasible_qp(batch, n, m, p, bounds=bounds, fixed=fixed, weak=weak, seed=seed)


@settings(max_examples=25)
@given(P=problems())
def test_random_mix_reaches_the_built_in_optimum(qp, P):
    sol = qp.solve_qp_ex(**args(P))
    np.testing.assert_array_equal(sol.info, 0)
    assert_qp_kkt(P, *sol[:4], 1e-8)
    scale = 1 + np.abs(P["z_star"]).max()
    np.testing.assert_allclose(sol.z, P["z_star"], atol=1e-6 * scale, rtol=0)


@settings(max_examples=15)
@given(P=problems(), alpha=st.floats(0.1, 10.0))
def test_objective_scaling(qp, P, alpha):
    """min α(½zᵀQz + qᵀz) has the same minimizer; the multipliers scale by α."""
    base = qp.solve_qp_ex(**args(P))
    scaled = qp.solve_qp_ex(**{**args(P), "Q": alpha * P["Q"], "q": alpha * P["q"]})
    np.testing.assert_array_equal(scaled.info, 0)
    scale = 1 + np.abs(base.z).max()
    np.testing.assert_allclose(scaled.z, base.z, atol=1e-6 * scale, rtol=0)
    assert_qp_kkt({**P, "Q": alpha * P["Q"], "q": alpha * P["q"]}, *scaled[:4], 1e-8)


@settings(max_examples=15)
@given(P=problems(), shift=st.floats(-3.0, 3.0))
def test_translation(qp, P, shift):
    """Substituting z = y + t·1 (constraints and objective rewritten for y) moves the
    minimizer by −t·1 and leaves the multipliers as they are."""
    n = P["q"].shape[-1]
    t = np.full(n, shift)
    moved = dict(args(P))
    moved["q"] = P["q"] + np.einsum("...ij,j->...i", P["Q"], t)
    if "A" in moved:
        moved["c"] = P["c"] - np.einsum("...ij,j->...i", P["A"], t)
    if "G" in moved:
        moved["h"] = P["h"] - np.einsum("...ij,j->...i", P["G"], t)
    for name in ("lb", "ub"):
        if name in moved:
            moved[name] = P[name] - t
    sol = qp.solve_qp_ex(**moved)
    np.testing.assert_array_equal(sol.info, 0)
    scale = 1 + np.abs(P["z_star"]).max() + abs(shift)
    np.testing.assert_allclose(sol.z, P["z_star"] - t, atol=1e-6 * scale, rtol=0)
