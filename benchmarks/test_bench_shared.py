"""One (Q, A) and a batch of right-hand sides (the same system solved for many (q, c), as in
control loops): fastkkt factors once and solves the right-hand sides in SIMD groups; the peers
factor the assembled KKT matrix once and solve all right-hand sides as one matrix."""

import numpy as np
import pytest
import scipy.linalg

import fastkkt
from fastkkt import reference
from fastkkt.testing import assert_allclose_normwise, kkt_matrix, random_qp

B, N, M = 4096, 64, 16
GROUP = f"shared Q, A: {B} right-hand sides, n = {N}, m = {M}"


@pytest.fixture(scope="module")
def shared():
    Q, _, A, _ = random_qp((), N, M, seed=7)
    _, q, _, c = random_qp(B, N, M, seed=8)
    return Q, q, A, c, reference.solve(Q, q, A, c)


def test_fastkkt_solve(benchmark, shared):
    benchmark.group = GROUP
    Q, q, A, c, expected = shared
    assert_allclose_normwise(benchmark(fastkkt.solve, Q, q, A, c), expected, 1e-10)


def test_fastkkt_factorize_then_solve(benchmark, shared):
    benchmark.group = GROUP
    Q, q, A, c, expected = shared
    F = fastkkt.factorize(Q, A)  # once, outside the timing: reused across calls
    assert_allclose_normwise(benchmark(F.solve, q, c), expected, 1e-10)


def _assembled(Q, q, A, c):
    return kkt_matrix(Q, A), np.concatenate([-q, c], axis=-1).T  # K, and the rhs as columns


def test_scipy_lu_factor_solve(benchmark, shared):
    benchmark.group = GROUP
    Q, q, A, c, expected = shared

    def run():
        K, rhs = _assembled(Q, q, A, c)
        return scipy.linalg.lu_solve(scipy.linalg.lu_factor(K), rhs)[:N].T

    assert_allclose_normwise(benchmark(run), expected, 1e-10)


def test_numpy_linalg_solve(benchmark, shared):
    benchmark.group = GROUP
    Q, q, A, c, expected = shared

    def run():
        K, rhs = _assembled(Q, q, A, c)
        return np.linalg.solve(K, rhs)[:N].T

    assert_allclose_normwise(benchmark(run), expected, 1e-10)
