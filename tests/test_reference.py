"""The pure-NumPy reference against independent answers: LAPACK's symmetric solver on the
assembled KKT matrix, closed forms, and the documented status rule."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from fastkkt import reference
from fastkkt._errors import KKTError
from fastkkt.testing import assert_allclose_normwise, kkt_matrix, random_qp

RTOL = {np.float64: 1e-12, np.float32: 1e-4}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("batch", "n", "m"), [(6, 5, 2), (4, 16, 4), (3, 32, 8), (1, 64, 16)])
def test_matches_scipy_symmetric_solve(batch, n, m, dtype):
    Q, q, A, c = random_qp(batch, n, m, seed=1, dtype=dtype)
    z, lam = reference.solve(Q, q, A, c, return_multipliers=True)
    assert z.dtype == lam.dtype == dtype
    K = kkt_matrix(Q, A)
    for i in range(batch):
        x = scipy.linalg.solve(K[i], np.concatenate([-q[i], c[i]]), assume_a="sym")
        assert_allclose_normwise(np.concatenate([z[i], lam[i]]), x, RTOL[dtype])


def test_tutorial_closed_form():
    # minimize ½‖z − r‖² subject to z₁ + z₂ = 2: z = r − t(1, 1) with t = (r₁ + r₂ − 2)/2.
    r = np.array([3.4, 0.2])
    z, lam = reference.solve(np.eye(2), -r, [[1.0, 1.0]], [2.0], return_multipliers=True)
    np.testing.assert_allclose(z, [2.6, -0.6], rtol=0, atol=1e-14)
    np.testing.assert_allclose(lam, [0.8], rtol=0, atol=1e-14)  # ∇L = z − r + λ(1, 1) = 0
    # minimize ‖z − r‖² (no ½): same z, twice the multiplier.
    z2, lam2 = reference.solve(2 * np.eye(2), -2 * r, [[1, 1]], [2], return_multipliers=True)
    np.testing.assert_allclose(z2, [2.6, -0.6], rtol=0, atol=1e-14)
    np.testing.assert_allclose(lam2, [1.6], rtol=0, atol=1e-14)


def test_unconstrained_is_cholesky_solve():
    Q, q, A, c = random_qp(3, 7, 0, seed=2)
    z, lam = reference.solve(Q, q, A, c, return_multipliers=True)
    assert lam.shape == (3, 0)
    for i in range(3):
        expected = scipy.linalg.cho_solve(scipy.linalg.cho_factor(Q[i]), -q[i])
        assert_allclose_normwise(z[i], expected, 1e-12)


def test_nonsymmetric_q_uses_symmetric_part():
    Q, q, A, c = random_qp(2, 5, 2, seed=3)
    skew = np.triu(np.ones((5, 5)), 1)
    skew = skew - skew.T
    assert_allclose_normwise(reference.solve(Q + skew, q, A, c), reference.solve(Q, q, A, c), 1e-13)


def test_status_and_kkterror():
    Q, q, A, c = random_qp(4, 5, 2, seed=4)
    A[1, 1] = A[1, 0]  # dependent rows: singular
    Q[3] = -Q[3]  # negative definite on null(A): a maximum, not a minimum
    z, lam, info = reference.solve_ex(Q, q, A, c)
    assert info.dtype == np.int32
    np.testing.assert_array_equal(info, [0, 1, 0, 2])
    assert np.isnan(z[[1, 3]]).all()
    assert np.isnan(lam[[1, 3]]).all()
    assert np.isfinite(z[[0, 2]]).all()
    with pytest.raises(KKTError, match=r"\(1,\).*\(3,\)") as excinfo:
        reference.solve(Q, q, A, c)
    assert excinfo.value.indices == [(1,), (3,)]
    np.testing.assert_array_equal(excinfo.value.info, info)
    assert isinstance(excinfo.value, np.linalg.LinAlgError)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_singularity_threshold(dtype):
    # K = diag(1, s) (m = 0): min|eig| / max|eig| = s against tol = N·eps(dtype) = 2·eps.
    tol = 2 * np.finfo(dtype).eps
    Q = np.array([np.diag([1.0, 10 * tol]), np.diag([1.0, tol / 10])], dtype=dtype)
    _, _, info = reference.solve_ex(
        Q, np.ones((2, 2), dtype), np.zeros((2, 0, 2), dtype), np.zeros((2, 0), dtype)
    )
    np.testing.assert_array_equal(info, [0, 1])


def test_dtype_rules():
    Q, q, A, c = random_qp(2, 3, 1, seed=5)
    f32 = [x.astype(np.float32) for x in (Q, q, A, c)]
    assert reference.solve(*f32).dtype == np.float32
    assert reference.solve(Q, q, A, c).dtype == np.float64
    assert reference.solve(f32[0], q, f32[2], f32[3]).dtype == np.float64  # promotes
    ints = (np.eye(3, dtype=np.int64) * 2, np.arange(3), np.ones((1, 3), np.int32), np.ones(1, int))
    assert reference.solve(*ints).dtype == np.float64
    with pytest.raises(TypeError, match=r"\bQ\b"):
        reference.solve(Q.astype(complex), q, A, c)


@pytest.mark.parametrize("small", [np.uint8, np.int8, np.int16, np.bool_, np.float16])
def test_small_integers_with_float32_give_float32(small):
    # NumPy promotes uint8/int8/int16/bool/float16 with float32 to float32; the reference, like
    # the fast path, computes in that dtype (found by tests/test_fuzz.py: it used float64).
    _, q, A, c = random_qp(2, 3, 1, seed=6)
    Qs = (np.eye(3) * 2).astype(small)
    f32 = [x.astype(np.float32) for x in (q, A, c)]
    expected = np.result_type(small, np.float32)
    assert expected == np.float32
    assert reference.solve(Qs, *f32).dtype == expected
    assert reference.solve_qp(Qs, f32[0], lb=np.zeros(3, small)).dtype == expected
    assert reference.solve_qp(Qs, f32[0], lb=0).dtype == expected  # a Python scalar is weak


def test_empty_batch_and_m_zero():
    z, lam, info = reference.solve_ex(
        np.zeros((0, 3, 3), np.float32),
        np.zeros(3, np.float32),
        np.zeros((2, 3), np.float32),
        np.zeros(2, np.float32),
    )
    assert (z.shape, lam.shape, info.shape) == ((0, 3), (0, 2), (0,))
    assert z.dtype == lam.dtype == np.float32
    assert info.dtype == np.int32


def test_inputs_not_modified():
    args = random_qp(3, 4, 2, seed=6)
    copies = [x.copy() for x in args]
    reference.solve_ex(*args)
    for x, y in zip(args, copies):
        np.testing.assert_array_equal(x, y)
