"""Broadcasting of the leading batch dimensions, each result against the reference."""

from __future__ import annotations

import numpy as np
import pytest

import fastkkt
from fastkkt import reference
from fastkkt.testing import (
    assert_allclose_normwise,
    ill_conditioned_qp,
    indefinite_qp,
    random_qp,
)

N, M = 6, 2


def _problem(batch, seed):
    return random_qp(batch, N, M, seed=seed)


def _check(Q, q, A, c, batch_shape):
    z, lam = fastkkt.solve(Q, q, A, c, return_multipliers=True)
    assert z.shape == (*batch_shape, N)
    assert lam.shape == (*batch_shape, M)
    zr, lr = reference.solve(Q, q, A, c, return_multipliers=True)
    assert_allclose_normwise(z, zr, 1e-12)
    assert_allclose_normwise(lam, lr, 1e-12)
    z_ex, lam_ex, info = fastkkt.solve_ex(Q, q, A, c)
    assert info.shape == batch_shape
    np.testing.assert_array_equal(z_ex, z)
    np.testing.assert_array_equal(lam_ex, lam)
    return z, lam


def test_shared_q_and_a_with_batched_q_and_c():
    Q, _, A, _ = _problem((), 1)
    _, q, _, c = _problem(40, 2)
    z, _ = _check(Q, q, A, c, (40,))
    # Equal to solving with Q and A repeated along the batch.
    Qb, Ab = np.broadcast_to(Q, (40, N, N)).copy(), np.broadcast_to(A, (40, M, N)).copy()
    np.testing.assert_array_equal(fastkkt.solve(Qb, q, Ab, c), z)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["plain", "refined", "pivoted"])
def test_shared_factorization_many_rhs_identical_to_repeated(kind, dtype):
    """One (Q, A) for a batch of right-hand sides is factored once and, when that factorization
    is plain, solved many right-hand sides at a time: bitwise what each element gets with its
    own copy of Q and A, through solve and factorize alike (45: not a multiple of the group)."""
    if kind == "refined":  # cond(Q) = 1e4: refined, not yet pivoted, in either precision
        Q, _, A, _ = ill_conditioned_qp((), 12, 4, cond=1e4, seed=5, dtype=dtype)
    else:
        Q, _, A, _ = (random_qp if kind == "plain" else indefinite_qp)(
            (), 12, 4, seed=5, dtype=dtype
        )
    _, q, _, c = random_qp(45, 12, 4, seed=6, dtype=dtype)
    q[7, 3] = np.nan  # solved as given without the finiteness check: NaN out, status 0
    c[30, 1] = np.inf
    flags = {"plain": 0, "refined": 1, "pivoted": 3}[kind]  # kRefine = 1, kPivoted = 2
    assert fastkkt.factorize(Q, A)._records[-1] == flags  # the path this case is meant to take
    Qb, Ab = np.broadcast_to(Q, (45, 12, 12)).copy(), np.broadcast_to(A, (45, 4, 12)).copy()
    expected = fastkkt.solve_ex(Qb, q, Ab, c, check_finite=False)
    for got in (
        fastkkt.solve_ex(Q, q, A, c, check_finite=False),
        fastkkt.factorize(Q, A).solve_ex(q, c, check_finite=False),
    ):
        for x, y in zip(got, expected):
            np.testing.assert_array_equal(x, y)
    assert np.isnan(expected[0][[7, 30]]).all()
    if kind != "refined":  # (the reference is no more accurate than cond(Q)·ε there)
        ok = np.setdiff1d(np.arange(45), [7, 30])
        zr = reference.solve(Q, q[ok], A, c[ok])
        assert_allclose_normwise(expected[0][ok], zr, 1e-12 if dtype == np.float64 else 1e-3)
    with pytest.raises(ValueError, match="q"):
        fastkkt.solve(Q, q, A, c)


def test_shared_q_batched_a():
    Q, q, _, _ = _problem((), 3)
    _, _, A, c = _problem(9, 4)
    _check(Q, q, A, c, (9,))


def test_partial_broadcast_two_batch_dims():
    Q, _, _, _ = _problem((5, 1), 5)  # Q (5, 1, n, n)
    _, q, _, _ = _problem((5, 7), 6)  # q (5, 7, n)
    _, _, A, _ = _problem(7, 7)  # A (7, m, n)
    _, _, _, c = _problem((), 8)  # c (m,)
    _check(Q, q, A, c, (5, 7))


def test_broadcast_adds_leading_dims():
    Q, q, A, c = _problem(3, 9)
    _, q2, _, _ = _problem((4, 1, 3), 10)
    _check(Q, q2, A, c, (4, 1, 3))
    _check(Q[:, None], q, A[None], c, (3, 3))


def test_size_one_dims_everywhere():
    Q, q, A, c = _problem((1, 1), 11)
    _check(Q, q, A, c, (1, 1))
    _, q2, _, _ = _problem((1, 4), 12)
    _, _, _, c2 = _problem((3, 1), 13)
    _check(Q, q2, A, c2, (3, 4))


def test_unbatched_gives_unbatched_result():
    Q, q, A, c = _problem((), 14)
    z, _lam = _check(Q, q, A, c, ())
    assert z.shape == (N,)
    _, _, info = fastkkt.solve_ex(Q, q, A, c)
    assert info.shape == ()
    assert info.dtype == np.int32


def test_broadcast_failure_is_per_element():
    # A shared singular A makes every element fail; a shared good one none.
    Q, _q, A, _c = _problem((), 15)
    A_bad = A.copy()
    A_bad[1] = A_bad[0]
    _, qb, _, cb = _problem(5, 16)
    _, _, info = fastkkt.solve_ex(Q, qb, A_bad, cb)
    np.testing.assert_array_equal(info, np.ones(5, np.int32))
    # One bad Q among a batch of Q broadcast against a batch of q: a whole row fails.
    Qs, _, _, _ = _problem((3, 1), 17)
    Qs[1, 0] = -Qs[1, 0]
    _, q2, _, c2 = _problem((1, 4), 18)
    _, _, info = fastkkt.solve_ex(Qs, q2, A, c2)
    expected = np.zeros((3, 4), np.int32)
    expected[1] = 2
    np.testing.assert_array_equal(info, expected)
    np.testing.assert_array_equal(info, reference.solve_ex(Qs, q2, A, c2)[2])
    with pytest.raises(fastkkt.KKTError) as excinfo:
        fastkkt.solve(Qs, q2, A, c2)
    assert excinfo.value.indices == [(1, j) for j in range(4)]


def test_factorize_shared_then_batched_rhs():
    # One factorization of a shared (Q, A), many right-hand sides at once.
    Q, _, A, _ = _problem((), 19)
    _, q, _, c = _problem((3, 5), 20)
    F = fastkkt.factorize(Q, A)
    assert F.batch_shape == ()
    z, lam = F.solve(q, c, return_multipliers=True)
    assert z.shape == (3, 5, N)
    zr, lr = reference.solve(Q, q, A, c, return_multipliers=True)
    assert_allclose_normwise(z, zr, 1e-12)
    assert_allclose_normwise(lam, lr, 1e-12)
    np.testing.assert_array_equal(z, fastkkt.solve(Q, q, A, c))


def test_factorize_batched_then_broadcast_rhs():
    Q, _, A, _ = _problem((4, 1), 21)
    _, q, _, c = _problem(3, 22)
    F = fastkkt.factorize(Q, A)
    assert F.batch_shape == (4, 1)
    z = F.solve(q, c)
    assert z.shape == (4, 3, N)
    assert_allclose_normwise(z, reference.solve(Q, q, A, c), 1e-12)
