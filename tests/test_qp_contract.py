"""The contract of API.md "Inequality-constrained QPs", checked on both implementations
(``qp`` fixture: fastkkt.reference and fastkkt): optimality to tol, multiplier signs,
statuses, broadcasting, bounds, dtypes, empty batches, input immutability, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastkkt
from fastkkt.testing import assert_qp_kkt, feasible_qp, infeasible_qp, unbounded_qp

ARGS = ("Q", "q", "A", "c", "G", "h", "lb", "ub")
TOL = 1e-8  # the float64 default


def args(problem: dict) -> dict:
    return {k: problem[k] for k in ARGS if problem.get(k) is not None}


MIXES = [
    pytest.param(dict(m=0, p=6, bounds="none"), id="G"),
    pytest.param(dict(m=3, p=0, bounds="none"), id="A"),
    pytest.param(dict(m=0, p=0, bounds="box"), id="box"),
    pytest.param(dict(m=2, p=5, bounds="box"), id="A-G-box"),
    pytest.param(dict(m=2, p=5, bounds="lower"), id="A-G-lb"),
    pytest.param(dict(m=0, p=5, bounds="upper"), id="G-ub"),
    pytest.param(dict(m=2, p=6, bounds="inf", fixed=2, weak=2), id="inf-fixed-weak"),
    pytest.param(dict(m=0, p=0, bounds="none"), id="unconstrained"),
]


@pytest.mark.parametrize("mix", MIXES)
def test_solves_to_tol_with_right_signs(qp, mix):
    P = feasible_qp(6, 8, seed=3, **mix)
    sol = qp.solve_qp_ex(**args(P))
    np.testing.assert_array_equal(sol.info, 0)
    assert sol.info.dtype == np.int32
    assert sol.iterations.dtype == np.int32
    assert (sol.iterations > 0).all() or mix["p"] == 0
    assert_qp_kkt(P, sol.z, sol.lam, sol.mu, sol.nu, TOL)
    # Q positive definite: the optimum built into the problem is the unique one
    np.testing.assert_allclose(sol.z, P["z_star"], atol=1e-6, rtol=0)
    assert sol.z.shape == (6, 8)
    assert sol.lam.shape == (6, mix["m"])
    assert sol.mu.shape == (6, mix["p"])
    assert sol.nu.shape == (6, 8)


@pytest.mark.parametrize(
    "kw",
    [
        pytest.param(dict(rank_Q=0, bounds="box"), id="LP"),
        pytest.param(dict(rank_Q=3, bounds="inf"), id="singular-Q"),
        pytest.param(dict(rank_A=1, bounds="box"), id="rank-deficient-A"),
    ],
)
def test_singular_q_and_rank_deficient_a(qp, kw):
    """Q = 0 (LPs), PSD singular Q and consistent A without full row rank are allowed: the
    optimum may not be unique, so optimality is judged by the KKT measures and the
    objective value of the known optimum."""
    P = feasible_qp(5, 7, 3, 6, seed=4, **kw)
    sol = qp.solve_qp_ex(**args(P))
    np.testing.assert_array_equal(sol.info, 0)
    assert_qp_kkt(P, sol.z, sol.lam, sol.mu, sol.nu, TOL)

    def objective(z):
        return 0.5 * np.einsum("bi,bij,bj->b", z, P["Q"], z) + (P["q"] * z).sum(-1)

    scale = 1 + np.abs(objective(P["z_star"]))
    assert (np.abs(objective(sol.z) - objective(P["z_star"])) <= 1e-6 * scale).all()


def test_return_forms(qp):
    P = args(feasible_qp(3, 5, 1, 4, seed=5))
    z = qp.solve_qp(**P)
    z2, lam, mu, nu = qp.solve_qp(**P, return_multipliers=True)
    sol = qp.solve_qp_ex(**P)
    assert sol._fields == ("z", "lam", "mu", "nu", "info", "iterations")
    for a, b in ((z, sol.z), (z2, sol.z), (lam, sol.lam), (mu, sol.mu), (nu, sol.nu)):
        np.testing.assert_array_equal(a, b)


def test_unbatched(qp):
    P = feasible_qp((), 6, 2, 4, seed=6)
    sol = qp.solve_qp_ex(**args(P))
    assert sol.z.shape == (6,)
    assert sol.lam.shape == (2,)
    assert sol.info.shape == ()
    np.testing.assert_allclose(sol.z, P["z_star"], atol=1e-6)


def _bad_batch() -> tuple[dict, np.ndarray]:
    """Eight problems (n = 6, m = 2, p = 4, box) of which 1, 3 are primal infeasible, 4 is
    unbounded (an LP without bounds along a direction) and 6 has lb > ub."""
    P = feasible_qp(8, 6, 2, 4, bounds="box", seed=7)
    P = {k: v.copy() for k, v in P.items()}
    P["G"][1, 1], P["h"][1, 1] = -P["G"][1, 0], -P["h"][1, 0] - 1.0  # g z ≤ h and ≥ h + 1
    P["A"][3, 1], P["c"][3, 1] = P["A"][3, 0], P["c"][3, 0] + 1.0  # inconsistent equalities
    P["Q"][4] = 0.0  # an LP ...
    P["lb"][4], P["ub"][4] = -np.inf, np.inf  # ... without bounds ...
    P["G"][4], P["h"][4] = 0.0, 1.0  # ... or inequalities: q ∉ range(Aᵀ), so unbounded
    P["ub"][6, 2] = P["lb"][6, 2] - 0.5
    expected = np.array([0, 1, 0, 1, 2, 0, 1, 0], dtype=np.int32)
    return P, expected


def test_bad_elements_do_not_change_the_others(qp):
    P, expected = _bad_batch()
    sol = qp.solve_qp_ex(**args(P))
    np.testing.assert_array_equal(sol.info, expected)
    bad = expected != 0
    for x in (sol.z, sol.lam, sol.mu, sol.nu):
        assert np.isnan(x[bad]).all()
        assert np.isfinite(x[~bad]).all()
    good = {k: v[~bad] for k, v in P.items()}
    alone = qp.solve_qp_ex(**args(good))
    for a, b in zip(sol[:4], alone[:4]):
        np.testing.assert_array_equal(a[~bad], b)
    assert_qp_kkt(good, sol.z[~bad], sol.lam[~bad], sol.mu[~bad], sol.nu[~bad], TOL)


def test_solve_qp_raises_qperror(qp):
    P, expected = _bad_batch()
    with pytest.raises(qp.QPError) as excinfo:
        qp.solve_qp(**args(P))
    err = excinfo.value
    assert isinstance(err, fastkkt.KKTError)
    assert isinstance(err, np.linalg.LinAlgError)
    assert err.indices == [(1,), (3,), (4,), (6,)]
    np.testing.assert_array_equal(err.info, expected)
    for i in (1, 3, 4, 6):
        assert f"({i},)" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err)
    assert again.indices == err.indices
    np.testing.assert_array_equal(again.info, err.info)
    assert str(again) == str(err)


def test_qperror_is_the_public_class():
    assert fastkkt.reference.QPError is fastkkt.QPError
    assert issubclass(fastkkt.QPError, fastkkt.KKTError)


def test_qperror_batch_indices(qp):
    P = feasible_qp((2, 3), 4, 0, 3, bounds="box", seed=8)
    P["ub"][1, 2, 0] = P["lb"][1, 2, 0] - 1.0
    with pytest.raises(qp.QPError) as excinfo:
        qp.solve_qp(**args(P))
    assert excinfo.value.indices == [(1, 2)]
    assert excinfo.value.info.shape == (2, 3)


@pytest.mark.parametrize("kind", ["rows", "bounds", "equality", "mixed"])
def test_primal_infeasible(qp, kind):
    sol = qp.solve_qp_ex(**args(infeasible_qp(4, 5, kind=kind, seed=9)))
    np.testing.assert_array_equal(sol.info, 1)
    assert np.isnan(sol.z).all()


def test_unbounded(qp):
    sol = qp.solve_qp_ex(**args(unbounded_qp(4, 6, 2, 4, seed=10)))
    np.testing.assert_array_equal(sol.info, 2)
    assert np.isnan(sol.z).all()


def test_not_positive_semidefinite(qp):
    """Q indefinite on the feasible set (here: a box) is dual infeasible, status 2."""
    Q = np.diag([1.0, 2.0, -1.0])
    sol = qp.solve_qp_ex(Q, np.ones(3), lb=-1.0, ub=1.0)
    assert sol.info == 2


def test_max_iter(qp):
    P = args(feasible_qp(3, 8, 2, 8, seed=11))
    sol = qp.solve_qp_ex(**P, max_iter=1)
    np.testing.assert_array_equal(sol.info, 3)
    assert (sol.iterations <= 1).all()
    assert np.isnan(sol.z).all()
    with pytest.raises(qp.QPError, match="not converged"):
        qp.solve_qp(**P, max_iter=1)


def test_loose_tol(qp):
    P = feasible_qp(4, 8, 2, 8, seed=12)
    sol = qp.solve_qp_ex(**args(P), tol=1e-4)
    np.testing.assert_array_equal(sol.info, 0)
    assert_qp_kkt(P, sol.z, sol.lam, sol.mu, sol.nu, 1e-4)


def test_only_sym_q_matters(qp):
    P = feasible_qp(4, 6, 1, 5, seed=13)
    skew = np.random.default_rng(0).standard_normal((4, 6, 6))
    Qn = P["Q"] + skew - np.swapaxes(skew, -1, -2)
    a = qp.solve_qp_ex(**{**args(P), "Q": Qn})
    b = qp.solve_qp_ex(**args(P))
    np.testing.assert_array_equal(a.info, 0)
    np.testing.assert_allclose(a.z, b.z, atol=1e-9)


def test_broadcast_shared_matrices(qp):
    """One Q, A, G, lb, ub shared by a batch of q, c, h: the same as the expanded batch."""
    P = feasible_qp((), 6, 2, 5, seed=14)
    rng = np.random.default_rng(1)
    q = P["q"] + 0.3 * rng.standard_normal((2, 3, 6))
    h = P["h"] + rng.uniform(0, 0.5, (3, 5))  # batch (3,) broadcast against (2, 3)
    shared = qp.solve_qp_ex(P["Q"], q, A=P["A"], c=P["c"], G=P["G"], h=h, lb=P["lb"], ub=P["ub"])
    assert shared.z.shape == (2, 3, 6)
    assert shared.mu.shape == (2, 3, 5)
    full = {
        "Q": np.broadcast_to(P["Q"], (2, 3, 6, 6)).copy(),
        "A": np.broadcast_to(P["A"], (2, 3, 2, 6)).copy(),
        "c": np.broadcast_to(P["c"], (2, 3, 2)).copy(),
        "G": np.broadcast_to(P["G"], (2, 3, 5, 6)).copy(),
        "h": np.broadcast_to(h, (2, 3, 5)).copy(),
        "lb": np.broadcast_to(P["lb"], (2, 3, 6)).copy(),
        "ub": np.broadcast_to(P["ub"], (2, 3, 6)).copy(),
    }
    expanded = qp.solve_qp_ex(q=q, **full)
    np.testing.assert_array_equal(shared.info, 0)
    np.testing.assert_array_equal(expanded.info, 0)
    for a, b in zip(shared[:4], expanded[:4]):
        np.testing.assert_allclose(a, b, atol=1e-9, rtol=0)


def test_scalar_bounds(qp):
    P = feasible_qp(4, 6, 1, 3, bounds="none", seed=15)
    P["c"], P["h"] = 0.0 * P["c"], np.abs(P["h"]) + 1.0  # z = 0 is feasible, so is the box
    scalar = qp.solve_qp_ex(**args(P), lb=-0.5, ub=0.25)
    arrays = qp.solve_qp_ex(**args(P), lb=np.full((4, 6), -0.5), ub=np.full(6, 0.25))
    np.testing.assert_array_equal(scalar.info, 0)
    for a, b in zip(scalar[:4], arrays[:4]):
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)
    assert (scalar.z >= -0.5 - 1e-8).all()
    assert (scalar.z <= 0.25 + 1e-8).all()
    assert_qp_kkt({**P, "lb": -0.5, "ub": 0.25}, scalar.z, scalar.lam, scalar.mu, scalar.nu, TOL)


def test_infinite_bounds_and_h_mean_no_constraint(qp):
    """lb = −inf, ub = +inf and h = +inf entries are the same as leaving those rows out."""
    P = feasible_qp((), 6, 1, 4, bounds="box", seed=16)
    lb, ub, h = P["lb"].copy(), P["ub"].copy(), P["h"].copy()
    lb[[0, 3]], ub[[1, 3]], h[2] = -np.inf, np.inf, np.inf
    with_inf = qp.solve_qp_ex(P["Q"], P["q"], A=P["A"], c=P["c"], G=P["G"], h=h, lb=lb, ub=ub)
    # the same problem written without those rows: G without row 2; bounds as G rows
    rows = [i for i in range(4) if i != 2]
    eye = np.eye(6)
    G2 = np.vstack([P["G"][rows], eye[[0, 2, 4, 5]], -eye[[1, 2, 4, 5]]])
    h2 = np.concatenate([h[rows], ub[[0, 2, 4, 5]], -lb[[1, 2, 4, 5]]])
    without = qp.solve_qp_ex(P["Q"], P["q"], A=P["A"], c=P["c"], G=G2, h=h2)
    assert with_inf.info == 0
    assert without.info == 0
    np.testing.assert_allclose(with_inf.z, without.z, atol=1e-7)
    assert with_inf.mu[2] == 0 or abs(with_inf.mu[2]) < 1e-12
    assert abs(with_inf.nu[3]) < 1e-12  # both bounds infinite
    assert_qp_kkt({**P, "h": h, "lb": lb, "ub": ub}, *with_inf[:4], TOL)


def test_missing_sides(qp):
    """Missing lb/ub: nu is still (..., n); missing A/c, G/h: zero columns."""
    P = feasible_qp(2, 5, 0, 0, bounds="upper", seed=17)
    sol = qp.solve_qp_ex(P["Q"], P["q"], ub=P["ub"])
    assert sol.lam.shape == (2, 0)
    assert sol.mu.shape == (2, 0)
    assert sol.nu.shape == (2, 5)
    assert (sol.nu >= -1e-9).all()
    np.testing.assert_allclose(sol.z, P["z_star"], atol=1e-6)


def test_empty_batch(qp):
    n, m, p = 4, 2, 3
    sol = qp.solve_qp_ex(
        np.zeros((0, n, n)),
        np.zeros((0, n)),
        A=np.zeros((m, n)),
        c=np.zeros(m),
        G=np.zeros((p, n)),
        h=np.zeros(p),
        lb=0.0,
    )
    assert sol.z.shape == (0, n)
    assert sol.lam.shape == (0, m)
    assert sol.mu.shape == (0, p)
    assert sol.nu.shape == (0, n)
    assert sol.info.shape == (0,)
    assert sol.iterations.shape == (0,)
    assert qp.solve_qp(np.zeros((0, n, n)), np.zeros((0, n))).shape == (0, n)


def test_float32(qp):
    P = feasible_qp(4, 6, 1, 5, seed=18)
    P32 = {k: v.astype(np.float32) for k, v in args(P).items()}
    sol = qp.solve_qp_ex(**P32)
    for x in sol[:4]:
        assert x.dtype == np.float32
    np.testing.assert_array_equal(sol.info, 0)
    ref = qp.solve_qp_ex(**{k: v.astype(np.float64) for k, v in P32.items()})
    scale = 1 + np.abs(ref.z).max()
    np.testing.assert_allclose(sol.z, ref.z, atol=1e-3 * scale, rtol=0)


def test_integer_and_mixed_dtypes(qp):
    Q = np.array([[2, 0], [0, 2]])  # int64
    q = np.array([-2, -8])
    sol = qp.solve_qp_ex(Q, q, ub=np.array([2, 3]))
    assert sol.z.dtype == np.float64
    np.testing.assert_allclose(sol.z, [1.0, 3.0], atol=1e-8)
    np.testing.assert_allclose(sol.nu, [0.0, 2.0], atol=1e-7)
    z32 = qp.solve_qp(Q.astype(np.float32), q.astype(np.float32), lb=0, ub=1)
    assert z32.dtype == np.float32  # Python scalars do not promote


def test_inputs_not_modified_and_layouts(qp):
    P = feasible_qp(3, 6, 2, 4, bounds="box", seed=19)
    # non-contiguous (transposed) and non-native byte order inputs
    Qf = np.asfortranarray(P["Q"])
    G_be = P["G"].astype(">f8")
    data = {**args(P), "Q": Qf, "G": G_be}
    before = {k: v.copy() for k, v in data.items()}
    sol = qp.solve_qp_ex(**data)
    for k, v in data.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    assert data["Q"].flags.f_contiguous
    plain = qp.solve_qp_ex(**args(P))
    for a, b in zip(sol[:4], plain[:4]):
        np.testing.assert_allclose(a, b, atol=1e-10, rtol=0)


# ---------------------------------------------------------------------------------------------
# bad input


def _small():
    P = feasible_qp((), 3, 1, 2, bounds="box", seed=20)
    return args(P)


@pytest.mark.parametrize(("given", "missing"), [("A", "c"), ("c", "A"), ("G", "h"), ("h", "G")])
def test_missing_partner_keyword(qp, given, missing):
    P = _small()
    del P[missing]
    with pytest.raises(ValueError, match=rf"\b{given}\b.*\b{missing}\b|\b{missing}\b.*\b{given}\b"):
        qp.solve_qp_ex(**P)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Q", np.zeros((3, 4))),
        ("Q", np.zeros(3)),
        ("q", np.zeros(4)),
        ("A", np.zeros((1, 4))),
        ("c", np.zeros(2)),
        ("G", np.zeros((2, 2))),
        ("h", np.zeros(3)),
        ("lb", np.zeros(4)),
        ("ub", np.zeros((2, 2))),
        ("q", np.zeros((5, 3))),  # batch 5 against c's batch 2
    ],
)
def test_bad_shapes(qp, name, value):
    P = _small()
    if name == "q" and value.ndim == 2:
        P["c"] = np.zeros((2, 1))
    P[name] = value
    with pytest.raises(ValueError, match=name if value.ndim < 2 or name != "q" else "broadcast"):
        qp.solve_qp_ex(**P)


@pytest.mark.parametrize("name", ARGS)
@pytest.mark.parametrize("bad", [np.nan, "wrong-inf"])
def test_non_finite_input(qp, name, bad):
    """NaN anywhere, and any infinity except −inf in lb and +inf in ub and h, is an error."""
    P = _small()
    x = np.array(P[name], dtype=np.float64)
    if bad == "wrong-inf":
        bad = -np.inf if name in ("ub", "h") else np.inf
    x.flat[0] = bad
    P[name] = x
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        qp.solve_qp_ex(**P)
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        qp.solve_qp(**P)


def test_allowed_infinities_do_not_raise(qp):
    P = _small()
    P["lb"] = np.array([-np.inf, P["lb"][1], -np.inf])
    P["ub"] = np.array([np.inf, np.inf, P["ub"][2]])
    P["h"] = np.array([np.inf, P["h"][1]])
    assert qp.solve_qp_ex(**P).info == 0


def test_complex_input_is_a_type_error(qp):
    P = _small()
    P["q"] = P["q"].astype(complex)
    with pytest.raises(TypeError, match="q"):
        qp.solve_qp_ex(**P)
