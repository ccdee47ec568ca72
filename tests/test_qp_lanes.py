"""The lane path of solve_qp (cpp/include/fastkkt/qp_lanes.hpp): small QPs whose interior-point
iterations run W at a time across SIMD lanes before each finishes on the scalar solver.

Batches here are large enough to fill several lane groups (W = 2–16 by ISA and dtype) and are
checked against independent answers: the optimum that feasible_qp builds its problems from,
Clarabel (polished), and the pure-NumPy reference solver; bad elements (infeasible, unbounded,
fixed coordinates, lb > ub) sit inside lane groups next to good ones. The lane path's guarantee:
an element's result depends only on its own data (no arithmetic across lanes, and the path is
chosen by the shapes n, m, p only), so it is bitwise the same for any thread count and in any
batch that contains it, a batch of one included."""

from __future__ import annotations

import numpy as np
import pytest

import fastkkt
from fastkkt import reference
from fastkkt.testing import assert_qp_kkt, clarabel_qp, feasible_qp, qp_case

ARGS = ("Q", "q", "A", "c", "G", "h", "lb", "ub")


def _args(P):
    return {k: P[k] for k in ARGS if P.get(k) is not None}


def _take(P, idx):
    return {k: v[idx] for k, v in P.items()}


def _zerr(z, zref):
    return np.abs(z - zref).max(-1, initial=0.0) / np.maximum(1.0, np.abs(zref).max(-1))


@pytest.mark.parametrize(
    ("n", "m", "p", "bounds"),
    [(12, 4, 0, "box"), (10, 0, 20, "none"), (8, 2, 6, "inf"), (20, 5, 30, "lower")],
)
def test_known_optimum(n, m, p, bounds):
    # "inf" has h = +inf rows and infinite bounds: some elements leave the lane path
    P = feasible_qp(67, n, m, p, bounds=bounds, seed=n + p)
    sol = fastkkt.solve_qp_ex(**_args(P))
    assert (sol.info == 0).all()
    assert _zerr(sol.z, P["z_star"]).max() < 1e-6
    # the multipliers need not be unique (more active constraints than n): KKT conditions
    assert_qp_kkt(_args(P), sol.z, sol.lam, sol.mu, sol.nu, 1e-8)


@pytest.mark.parametrize("case", ["mpc", "scqpth_small"])
def test_bench_cases_against_clarabel(case):
    P = {k: v for k, v in qp_case(case).items() if k in ARGS and v is not None}
    if case == "mpc":
        P = _take(P, slice(0, 96))
    sol = fastkkt.solve_qp_ex(**P)
    ref = clarabel_qp(**P)
    assert (sol.info == 0).all()
    assert (ref["status"] == 0).all()
    assert _zerr(sol.z, ref["z"]).max() < 1e-6


def test_against_reference_solver():
    P = feasible_qp(24, 6, 1, 5, bounds="box", seed=3)
    sol = fastkkt.solve_qp_ex(**_args(P))
    ref = reference.solve_qp(**_args(P))
    assert (sol.info == 0).all()
    np.testing.assert_allclose(sol.z, ref, atol=1e-6)


def _mixed():
    """32 elements (n = 10, m = 2, p = 8, box bounds), bad ones scattered across lane groups."""
    P = _args(feasible_qp(32, 10, 2, 8, bounds="box", seed=7))
    P = {k: v.copy() for k, v in P.items()}
    expect = np.zeros(32, np.int32)
    rng = np.random.default_rng(1)
    # primal infeasible through two contradictory rows (eligible: the lanes diverge, hand over)
    for b in (3, 17):
        g = rng.standard_normal(10)
        P["G"][b, 0], P["G"][b, 1] = g, -g
        P["h"][b, 0], P["h"][b, 1] = -1.0, -1.0
        expect[b] = 1
    # lb > ub (not eligible)
    P["ub"][5, 2] = P["lb"][5, 2] - 0.5
    expect[5] = 1
    # unbounded LP: Q = 0, q = −1, no effective constraint on z (eligible, diverges)
    for b in (9, 26):
        P["Q"][b] = 0.0
        P["q"][b] = -1.0
        P["A"][b] = 0.0
        P["c"][b] = 0.0
        P["G"][b] = 0.0
        P["h"][b] = 1.0
        P["lb"][b] = -np.inf
        P["ub"][b] = np.inf
        expect[b] = 2
    # a fixed coordinate (not eligible, solved by the scalar path)
    P["lb"][12, 4] = P["ub"][12, 4] = 0.25
    return P, expect


def test_mixed_batch_statuses_and_good_elements_unaffected():
    P, expect = _mixed()
    sol = fastkkt.solve_qp_ex(**P)
    np.testing.assert_array_equal(sol.info, expect)
    good = expect == 0
    ref = clarabel_qp(**P)
    assert (ref["status"][good] == 0).all()
    assert _zerr(sol.z[good], ref["z"][good]).max() < 1e-6
    assert np.isnan(sol.z[~good]).all()
    # each good element alone in a batch of two (with a copy of itself): the same bits
    for b in np.flatnonzero(good)[:6]:
        pair = fastkkt.solve_qp_ex(**_take(P, [b, b]))
        np.testing.assert_array_equal(pair.z[0], sol.z[b])
        np.testing.assert_array_equal(pair.z[1], sol.z[b])


def test_max_iter_in_lane_groups():
    P, expect = _mixed()
    full = fastkkt.solve_qp_ex(**P)
    for k in (4, 8):
        sol = fastkkt.solve_qp_ex(**P, max_iter=k)
        assert set(np.unique(sol.info)) <= {0, 1, 2, 3}
        solved = sol.info == 0
        assert np.isin(sol.info[expect == 0], (0, 3)).all()
        assert (sol.iterations <= k).all()
        assert _zerr(sol.z[solved], full.z[solved]).max(initial=0.0) < 1e-6
        assert np.isnan(sol.z[sol.info == 3]).all()
    assert (fastkkt.solve_qp_ex(**P, max_iter=2).info[expect == 0] == 3).all()


def test_float32():
    P = feasible_qp(64, 12, 4, 0, bounds="box", seed=5)
    P32 = {k: v.astype(np.float32) for k, v in _args(P).items()}
    sol = fastkkt.solve_qp_ex(**P32)
    assert sol.z.dtype == np.float32
    assert (sol.info == 0).all()
    assert _zerr(sol.z.astype(np.float64), P["z_star"]).max() < 2e-3
    # bad elements in float32 lane groups (16 lanes with AVX-512)
    Pm, expect = _mixed()
    sol = fastkkt.solve_qp_ex(**{k: v.astype(np.float32) for k, v in Pm.items()})
    np.testing.assert_array_equal(sol.info, expect)
    ref = clarabel_qp(**Pm)
    good = expect == 0
    assert _zerr(sol.z[good].astype(np.float64), ref["z"][good]).max() < 2e-3


def test_bitwise_threads_and_grouping(restore_threads):
    P, _ = _mixed()
    P2 = _args(feasible_qp(40, 12, 4, 0, bounds="box", seed=9))
    for Pb in (P, P2):
        runs = []
        for k in (1, 2):
            fastkkt.set_num_threads(k)
            runs.append(fastkkt.solve_qp_ex(**Pb))
        for a, b in zip(*runs):
            np.testing.assert_array_equal(a, b)
        # other groupings: a shifted slice and a permutation of the batch
        B = len(Pb["q"])
        singles = [np.array([b]) for b in (0, 5, 9, B - 1)]  # batches of one (dask chunks of 1)
        # 17 = 16 + 1 = 8·2 + 1 = …: a tail group of a single element for every W in 2–16
        tail = np.arange(B - 17, B)
        for idx in (np.arange(3, B - 2), np.random.default_rng(2).permutation(B), tail, *singles):
            sub = fastkkt.solve_qp_ex(**_take(Pb, idx))
            for a, b in zip(sub, runs[0]):
                np.testing.assert_array_equal(a, b[idx])


def test_bitwise_float32_groupings():
    """float32 (twice the lanes of float64): batches of one and a batch whose last group holds a
    single element give the bits of the same elements in the whole batch."""
    P, _ = _mixed()
    P = {k: v.astype(np.float32) for k, v in P.items()}
    full = fastkkt.solve_qp_ex(**P)
    for idx in (np.arange(32 - 17, 32), np.array([0]), np.array([17]), np.array([31])):
        sub = fastkkt.solve_qp_ex(**_take(P, idx))
        for a, b in zip(sub, full):
            np.testing.assert_array_equal(a, b[idx])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("n", "m", "p", "bounds"), [(10, 0, 20, "none"), (8, 2, 6, "box"), (20, 5, 30, "lower")]
)
def test_every_element_alone_gives_its_bits_in_the_batch(dtype, n, m, p, bounds):
    """Each element solved as a batch of one (a group of one lane, W = 1 kernels) gives the
    bits it gets in a full W-wide group, for every element (inequality rows and equality rows
    included: the lanes factor K_reg with the engine's interleaved LDLᵀ)."""
    P = {
        k: v.astype(dtype)
        for k, v in _args(feasible_qp(24, n, m, p, bounds=bounds, seed=7)).items()
    }
    full = fastkkt.solve_qp_ex(**P)
    assert (full.info == 0).all()
    for b in range(len(P["q"])):
        one = fastkkt.solve_qp_ex(**_take(P, slice(b, b + 1)))
        for a, f in zip(one, full):
            np.testing.assert_array_equal(a[0], f[b])


def test_not_positive_semidefinite_in_lane_groups():
    """Elements whose Q is not PSD (the lanes' test of sym(Q) + √ε·max(1, max|Q|)·I) are status
    2 beside good ones, which keep the bits they get alone."""
    P = {k: v.copy() for k, v in _args(feasible_qp(24, 7, 1, 5, bounds="box", seed=11)).items()}
    bad = [2, 9, 23]
    P["Q"][2] = -np.eye(7)
    P["Q"][9] -= 3 * np.eye(7)
    P["Q"][23] = np.diag([1.0] * 6 + [-1e-3])  # indefinite by one small eigenvalue
    sol = fastkkt.solve_qp_ex(**P)
    expect = np.zeros(24, np.int32)
    expect[bad] = 2
    np.testing.assert_array_equal(sol.info, expect)
    good = expect == 0
    assert _zerr(sol.z[good], clarabel_qp(**_take(P, good))["z"]).max() < 1e-6
    for b in (0, 8, 10, 22):
        one = fastkkt.solve_qp_ex(**_take(P, slice(b, b + 1)))
        for a, f in zip(one, sol):
            np.testing.assert_array_equal(a[0], f[b])


@pytest.mark.parametrize(
    ("n", "m", "p", "bounds"), [(8, 2, 6, "box"), (10, 0, 20, "none"), (40, 2, 20, "box")]
)
def test_kept_factorization_is_the_active_sets_regularized_kkt(n, m, p, bounds):
    """The factorization the forward pass keeps for the backward (qp_adjoint.hpp's packed L and D,
    state byte 1) — on the lane path the lanes' masked polish compacted to the active set — is
    an LDLᵀ of the active set's K_reg = [Q_FF + ρI, C_Fᵀ; C_F, −δI], C = [A; G_R] (ρ = 1e-10·
    max(1, max|Q|), δ = 1e-10), rebuilt here from the data and the returned active set."""
    P = _args(feasible_qp(40, n, m, p, bounds=bounds, seed=13))
    ops = [np.ascontiguousarray(P[k]) if k in P else None for k in ARGS]
    sol, active, factor = fastkkt._qp._solve_qp_ex(*ops, None, 100, True, True)
    assert (sol.info == 0).all()
    kept = active[:, -1] == 1
    # kept where the polish's set is the adjoint's and K is nonsingular (m + |R| ≤ |F|)
    assert kept.sum() >= 10
    for b in np.flatnonzero(kept):
        act = active[b]
        F = np.flatnonzero(act[p : p + n] == 0)
        R = np.flatnonzero(act[:p] != 0)
        Q = (P["Q"][b] + P["Q"][b].T) / 2
        C = np.vstack([P["A"][b][:, F] if m else np.zeros((0, len(F))), P["G"][b][R][:, F]])
        N, k = len(F) + len(C), len(C)
        rho = 1e-10 * max(1.0, np.abs(Q).max())
        K = np.block([[Q[np.ix_(F, F)] + rho * np.eye(len(F)), C.T], [C, -1e-10 * np.eye(k)]])
        L = np.eye(N)
        L[np.tril_indices(N, -1)] = factor[b, : N * (N - 1) // 2]
        D = factor[b, N * (N - 1) // 2 : N * (N + 1) // 2]
        assert (D[: len(F)] > 0).all()
        assert (D[len(F) :] < 0).all()
        err = np.abs(L @ np.diag(D) @ L.T - K).max() / np.abs(K).max()
        assert err < 1e-12, (b, err)
