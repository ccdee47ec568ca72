"""The shared problem generators and checks of fastkkt.testing."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from fastkkt import reference, testing


def test_random_qp_follows_bench_recipe():
    # The one place the BENCH.md recipe is written out again: to pin the generator to it.
    B, n, m, seed = 3, 5, 2, 7
    rng = np.random.default_rng([seed, B, n, m])
    M = rng.standard_normal((B, n, n))
    Q = M @ np.swapaxes(M, 1, 2) / n + 0.1 * np.eye(n)
    A = rng.standard_normal((B, m, n))
    q = rng.standard_normal((B, n))
    c = rng.standard_normal((B, m))
    w = rng.standard_normal((B, n))
    got = testing.random_qp(B, n, m, seed=seed)
    np.testing.assert_allclose(got[0], Q, rtol=1e-15, atol=1e-15)
    for x, y in zip(got[1:], (q, A, c)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(testing.loss_weights(B, n, m, seed=seed), w)


def test_random_qp_shapes_dtype_and_symmetry():
    Q, q, A, c = testing.random_qp((2, 3), 4, 1, seed=1, dtype=np.float32)
    assert (Q.shape, q.shape, A.shape, c.shape) == (
        (2, 3, 4, 4),
        (2, 3, 4),
        (2, 3, 1, 4),
        (2, 3, 1),
    )
    assert {x.dtype for x in (Q, q, A, c)} == {np.dtype(np.float32)}
    np.testing.assert_array_equal(Q, np.swapaxes(Q, -1, -2))
    single = testing.random_qp((), 4, 1)
    assert [x.shape for x in single] == [(4, 4), (4,), (1, 4), (1,)]
    # An int batch and the same 1-tuple give the same problems; the seed changes them.
    np.testing.assert_array_equal(testing.random_qp(3, 4, 1)[0], testing.random_qp((3,), 4, 1)[0])
    assert not np.array_equal(testing.random_qp(3, 4, 1)[1], testing.random_qp(3, 4, 1, seed=1)[1])
    # Reshaping: B = prod(batch) seeds the stream, the batch shape only reshapes it.
    np.testing.assert_array_equal(
        testing.random_qp((2, 3), 4, 1)[2].reshape(6, 1, 4), testing.random_qp(6, 4, 1)[2]
    )


def _reduced_hessian_eigs(Q, A):
    Z = scipy.linalg.null_space(A) if A.shape[0] else np.eye(Q.shape[0])
    return np.linalg.eigvalsh(Z.T @ Q @ Z)


@pytest.mark.parametrize(("n", "m"), [(6, 2), (5, 0), (4, 4), (8, 3)])
def test_psd_qp(n, m):
    Q, q, A, c = testing.psd_qp(4, n, m, seed=2)
    for i in range(4):
        eigs = np.linalg.eigvalsh(Q[i])
        assert eigs.min() > -1e-12
        assert np.linalg.matrix_rank(Q[i]) == n - m
        if n > m:
            assert _reduced_hessian_eigs(Q[i], A[i]).min() >= 0.5 - 1e-12
    np.testing.assert_array_equal(reference.solve_ex(Q, q, A, c)[2], 0)


@pytest.mark.parametrize(("n", "m"), [(6, 2), (5, 1), (8, 3)])
def test_indefinite_qp(n, m):
    Q, q, A, c = testing.indefinite_qp(4, n, m, seed=3)
    for i in range(4):
        eigs = np.linalg.eigvalsh(Q[i])
        assert eigs.min() < -0.1
        assert eigs.max() > 0.1
        assert _reduced_hessian_eigs(Q[i], A[i]).min() >= 0.5 - 1e-12
    np.testing.assert_array_equal(reference.solve_ex(Q, q, A, c)[2], 0)


def test_ill_conditioned_qp():
    Q, q, A, c = testing.ill_conditioned_qp(3, 10, 4, 1e8, seed=4)
    np.testing.assert_allclose(np.linalg.cond(Q), 1e8, rtol=1e-3)
    np.testing.assert_allclose(np.linalg.svd(A, compute_uv=False)[:, -1], 1e-4, rtol=1e-10)
    np.testing.assert_array_equal(reference.solve_ex(Q, q, A, c)[2], 0)


def test_kkt_matrix_blocks_and_broadcasting():
    Q = np.arange(9.0).reshape(3, 3)
    A = np.arange(12.0).reshape(2, 2, 3)
    K = testing.kkt_matrix(Q, A)
    assert K.shape == (2, 5, 5)
    for i in range(2):
        expected = np.block([[(Q + Q.T) / 2, A[i].T], [A[i], np.zeros((2, 2))]])
        np.testing.assert_array_equal(K[i], expected)


def test_kkt_residual_closed_form():
    # K = [2], x = [2], b = [2]: |Kx − b| / (‖K‖‖x‖ + ‖b‖) = 2 / (4 + 2).
    r = testing.kkt_residual([[2.0]], [-2.0], np.zeros((0, 1)), np.zeros(0), [2.0], np.zeros(0))
    np.testing.assert_allclose(r, 1 / 3, rtol=1e-15)
    Q, q, A, c = testing.random_qp(5, 6, 2, seed=5)
    z, lam = reference.solve(Q, q, A, c, return_multipliers=True)
    res = testing.kkt_residual(Q, q, A, c, z, lam)
    assert res.shape == (5,)
    assert res.max() < 1e-15
    assert testing.kkt_residual(Q, q, A, c, z + 1e-3, lam).min() > 1e-5


def test_assert_allclose_normwise_detects_differences():
    x = np.array([[1.0, 2.0], [3.0, np.nan]])
    testing.assert_allclose_normwise(x, x * (1 + 1e-13), 1e-12)
    with pytest.raises(AssertionError, match="batch index"):
        testing.assert_allclose_normwise(x, x * (1 + 1e-9), 1e-12)
    with pytest.raises(AssertionError):
        testing.assert_allclose_normwise(x, np.nan_to_num(x), 1e-12)
