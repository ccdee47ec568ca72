"""fastkkt.solve / solve_ex / factorize against the reference, LAPACK and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import fastkkt
from fastkkt import reference
from fastkkt.testing import (
    assert_allclose_normwise,
    ill_conditioned_qp,
    indefinite_qp,
    kkt_matrix,
    kkt_residual,
    psd_qp,
    random_qp,
)

# Normwise agreement with the reference per element; the float32 reference is the rounded
# float64 answer, so the float32 bound is the solver's own error (cond(K) ≲ 300 here).
RTOL = {np.float64: 1e-12, np.float32: 1e-4}
DTYPES = [np.float64, np.float32]

# The BENCH.md shapes (scaled down in B) plus an unbatched problem and one large system.
CASES = [
    ((), 16, 4),
    (1, 16, 4),
    (128, 16, 4),
    (32, 32, 8),
    (8, 64, 16),
    (2, 128, 32),
    (1, 512, 128),
    (1, 700, 100),
]


def _ids(case):
    batch, n, m = case
    return f"{batch}x{n}x{m}"


def _both(Q, q, A, c):
    z, lam = fastkkt.solve(Q, q, A, c, return_multipliers=True)
    zr, lr = reference.solve(Q, q, A, c, return_multipliers=True)
    return z, lam, zr, lr


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_matches_reference(case, dtype):
    Q, q, A, c = random_qp(*case, seed=11, dtype=dtype)
    z, lam, zr, lr = _both(Q, q, A, c)
    assert z.dtype == lam.dtype == dtype
    assert_allclose_normwise(
        np.concatenate([z, lam], -1), np.concatenate([zr, lr], -1), RTOL[dtype]
    )


@pytest.mark.parametrize("case", [(4, 16, 4), (2, 64, 16), (1, 300, 60)], ids=_ids)
def test_matches_lapack_sysv(case):
    Q, q, A, c = random_qp(*case, seed=12)
    z, lam = fastkkt.solve(Q, q, A, c, return_multipliers=True)
    K = kkt_matrix(Q, A)
    for i in range(case[0]):
        x = scipy.linalg.solve(K[i], np.concatenate([-q[i], c[i]]), assume_a="sym")
        assert_allclose_normwise(np.concatenate([z[i], lam[i]]), x, 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_error_small(dtype):
    Q, q, A, c = random_qp(64, 24, 6, seed=13, dtype=dtype)
    z, lam = fastkkt.solve(Q, q, A, c, return_multipliers=True)
    assert kkt_residual(Q, q, A, c, z, lam).max() < 30 * np.finfo(dtype).eps


def test_worked_example():
    # minimize ½‖z − r‖² subject to z₁ + z₂ = 2: z = (2.6, −0.6), λ = 0.8.
    r = np.array([3.4, 0.2])
    z, lam = fastkkt.solve(np.eye(2), -r, [[1.0, 1.0]], [2.0], return_multipliers=True)
    np.testing.assert_allclose(z, [2.6, -0.6], rtol=0, atol=1e-14)
    np.testing.assert_allclose(lam, [0.8], rtol=0, atol=1e-14)
    # The unscaled objective ‖z − r‖² (Q = 2I, q = −2r): same z, λ = 1.6.
    z, lam = fastkkt.solve(2 * np.eye(2), -2 * r, [[1.0, 1.0]], [2.0], return_multipliers=True)
    np.testing.assert_allclose(z, [2.6, -0.6], rtol=0, atol=1e-14)
    np.testing.assert_allclose(lam, [1.6], rtol=0, atol=1e-14)


def test_return_multipliers():
    Q, q, A, c = random_qp(5, 6, 2, seed=14)
    z_only = fastkkt.solve(Q, q, A, c)
    assert isinstance(z_only, np.ndarray)
    assert z_only.shape == (5, 6)
    out = fastkkt.solve(Q, q, A, c, return_multipliers=True)
    assert isinstance(out, tuple)
    assert len(out) == 2
    z, lam = out
    assert lam.shape == (5, 2)
    np.testing.assert_array_equal(z, z_only)
    _, lr = reference.solve(Q, q, A, c, return_multipliers=True)
    assert_allclose_normwise(lam, lr, 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [((), 5, 2), (16, 16, 4), ((3, 4), 10, 3), (2, 200, 40)], ids=_ids)
def test_factorize_solve_identical_to_solve(case, dtype):
    batch, n, m = case
    Q, _q, A, _c = random_qp(batch, n, m, seed=15, dtype=dtype)
    F = fastkkt.factorize(Q, A)
    assert (F.n, F.m, F.batch_shape, F.dtype) == (n, m, np.shape(Q)[:-2], np.dtype(dtype))
    assert F.info.dtype == np.int32
    np.testing.assert_array_equal(F.info, np.zeros(np.shape(Q)[:-2], np.int32))
    for seed in (0, 1, 2):  # several right-hand sides on one factorization
        _, q2, _, c2 = random_qp(batch, n, m, seed=100 + seed, dtype=dtype)
        z, lam = F.solve(q2, c2, return_multipliers=True)
        z_solve, lam_solve = fastkkt.solve(Q, q2, A, c2, return_multipliers=True)
        np.testing.assert_array_equal(z, z_solve)
        np.testing.assert_array_equal(lam, lam_solve)
        np.testing.assert_array_equal(F.solve(q2, c2), z_solve)
        zr, lr = reference.solve(Q, q2, A, c2, return_multipliers=True)
        assert_allclose_normwise(
            np.concatenate([z, lam], -1), np.concatenate([zr, lr], -1), RTOL[dtype]
        )


def test_factorize_is_a_snapshot():
    Q, q, A, c = random_qp(3, 5, 2, seed=16)
    expected = reference.solve(Q, q, A, c)
    F = fastkkt.factorize(Q, A)
    Q[...] = 0.0
    A[...] = 0.0
    assert_allclose_normwise(F.solve(q, c), expected, 1e-12)


def _mixed_batch(dtype=np.float64):
    """A batch of 24 with a singular element at 3 and 17 and a saddle at 10 and 20."""
    Q, q, A, c = random_qp(24, 8, 3, seed=17, dtype=dtype)
    good = tuple(x.copy() for x in (Q, q, A, c))
    A[3, 2] = A[3, 0]
    A[17, 1] = 0.0
    Q[10] = -Q[10]
    Q[20] = -Q[20]
    return (Q, q, A, c), good, [3, 10, 17, 20], [1, 2, 1, 2]


@pytest.mark.parametrize("dtype", DTYPES)
def test_factorize_solve_ex_of_a_mixed_batch_identical_to_solve_ex(dtype):
    """F.solve_ex solves plain factorizations W at a time and the rest (pivoted, refined,
    failed, non-finite right-hand side) one by one: every element gets the bits of
    fastkkt.solve_ex, wherever it sits among the others."""
    (Q, q, A, c), _, bad, _ = _mixed_batch(dtype)
    Qi, qi, Ai, ci = ill_conditioned_qp(24, 8, 3, cond=1e10, seed=19, dtype=dtype)
    Qd, qd, Ad, cd = indefinite_qp(24, 8, 3, seed=20, dtype=dtype)
    for k in (1, 8, 9, 22):  # refined
        Q[k], q[k], A[k], c[k] = Qi[k], qi[k], Ai[k], ci[k]
    for k in (5, 12, 23):  # Q indefinite: pivoted
        Q[k], q[k], A[k], c[k] = Qd[k], qd[k], Ad[k], cd[k]
    q[14, 2] = np.nan
    c[15, 0] = np.inf
    flags = fastkkt.factorize(Q, A)._records[:, -1]  # the record's last entry: its flags
    # plain (0), refined (kRefine = 1) and pivoted (kRefine | kPivoted = 3) records
    assert {0.0, 1.0, 3.0} <= set(flags[np.setdiff1d(np.arange(24), bad)])
    for cut in (24, 19, 2):  # full groups, a partial last group, one group of two
        args = [x[:cut] for x in (Q, q, A, c)]
        z, lam, info = fastkkt.factorize(args[0], args[2]).solve_ex(
            args[1], args[3], check_finite=False
        )
        z_ex, lam_ex, info_ex = fastkkt.solve_ex(*args, check_finite=False)
        np.testing.assert_array_equal(info, info_ex)
        np.testing.assert_array_equal(z, z_ex)  # NaN where the other has NaN
        np.testing.assert_array_equal(lam, lam_ex)
    _, _, info = fastkkt.factorize(Q, A).solve_ex(q, c, check_finite=False)
    np.testing.assert_array_equal(info[bad], [1, 2, 1, 2])
    with pytest.raises(ValueError, match="q"):  # checked: the bad right-hand sides are named
        fastkkt.factorize(Q, A).solve_ex(q, c)


def test_factorize_reports_failures():
    (Q, q, A, c), _, bad, codes = _mixed_batch()
    F = fastkkt.factorize(Q, A)
    np.testing.assert_array_equal(F.info, reference.solve_ex(Q, q, A, c)[2])
    np.testing.assert_array_equal(F.info[bad], codes)
    with pytest.raises(fastkkt.KKTError) as excinfo:
        F.solve(q, c)
    assert excinfo.value.indices == [(i,) for i in bad]


@pytest.mark.parametrize("dtype", DTYPES)
def test_solve_ex_good_elements_identical_to_solve(dtype):
    (Q, q, A, c), good, bad, codes = _mixed_batch(dtype)
    z, lam, info = fastkkt.solve_ex(Q, q, A, c)
    assert info.dtype == np.int32
    assert info.shape == (24,)
    np.testing.assert_array_equal(info, reference.solve_ex(Q, q, A, c)[2])
    np.testing.assert_array_equal(info[bad], codes)
    assert np.isnan(z[bad]).all()
    assert np.isnan(lam[bad]).all()
    # The same batch with the bad elements replaced by good ones: same bits elsewhere.
    z_good, lam_good = fastkkt.solve(*good, return_multipliers=True)
    ok = np.setdiff1d(np.arange(24), bad)
    np.testing.assert_array_equal(z[ok], z_good[ok])
    np.testing.assert_array_equal(lam[ok], lam_good[ok])
    zr, _lr = reference.solve(*good, return_multipliers=True)
    assert_allclose_normwise(z[ok], zr[ok], RTOL[dtype])


def test_solve_ex_all_good_identical_to_solve():
    Q, q, A, c = random_qp((4, 5), 9, 4, seed=18)
    z, lam, info = fastkkt.solve_ex(Q, q, A, c)
    np.testing.assert_array_equal(info, np.zeros((4, 5), np.int32))
    z2, lam2 = fastkkt.solve(Q, q, A, c, return_multipliers=True)
    np.testing.assert_array_equal(z, z2)
    np.testing.assert_array_equal(lam, lam2)


def test_solve_raises_kkterror_naming_elements():
    (Q, q, A, c), _, bad, _ = _mixed_batch()
    with pytest.raises(fastkkt.KKTError) as excinfo:
        fastkkt.solve(Q, q, A, c)
    assert excinfo.value.indices == [(i,) for i in bad]
    np.testing.assert_array_equal(excinfo.value.info, reference.solve_ex(Q, q, A, c)[2])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("generator", [psd_qp, indefinite_qp])
@pytest.mark.parametrize(("n", "m"), [(6, 2), (16, 4), (8, 8), (40, 10), (7, 1)])
def test_hard_but_well_posed(generator, n, m, dtype):
    Q, q, A, c = generator(32, n, m, seed=19, dtype=dtype)
    z, lam, info = fastkkt.solve_ex(Q, q, A, c)
    np.testing.assert_array_equal(info, np.zeros(32, np.int32))
    eps = np.finfo(dtype).eps
    assert kkt_residual(Q, q, A, c, z, lam).max() < 50 * (n + m) * eps
    zr, lr = reference.solve(Q, q, A, c, return_multipliers=True)
    # m = n makes A square and some K ill-conditioned (cond up to ~4e5 here): the forward
    # error may grow with cond(K).
    cond = np.linalg.cond(kkt_matrix(Q, A).astype(np.float64)).max()
    rtol = max(RTOL[dtype], 10 * cond * eps)
    assert_allclose_normwise(np.concatenate([z, lam], -1), np.concatenate([zr, lr], -1), rtol)


@pytest.mark.parametrize(("n", "m", "cond"), [(10, 4, 1e8), (30, 10, 1e10), (60, 20, 1e6)])
def test_ill_conditioned(n, m, cond):
    Q, q, A, c = ill_conditioned_qp(16, n, m, cond, seed=20)
    z, lam = fastkkt.solve(Q, q, A, c, return_multipliers=True)
    assert kkt_residual(Q, q, A, c, z, lam).max() < 100 * (n + m) * np.finfo(float).eps
    zr, lr = reference.solve(Q, q, A, c, return_multipliers=True)
    x = np.concatenate([z, lam], -1)
    xr = np.concatenate([zr, lr], -1)
    # Forward error bound: cond(K) × backward error (cond(K) from the assembled matrices).
    bound = np.linalg.cond(kkt_matrix(Q, A)).max() * 1e-14
    assert_allclose_normwise(x, xr, bound)
