"""A result that is not finite is never "solved": from non-finite input with
check_finite=False, or from finite input whose solution overflows the dtype, the element gets
info 1 (its KKT matrix is singular in the working precision) and NaN, and `solve` raises
KKTError instead of returning inf or NaN."""

from __future__ import annotations

import numpy as np
import pytest

import fastkkt
from fastkkt.testing import random_qp

SOLVE_EX = {
    "solve_ex": lambda Q, q, A, c, **kw: fastkkt.solve_ex(Q, q, A, c, **kw),
    "factorize": lambda Q, q, A, c, **kw: fastkkt.factorize(Q, A, **kw).solve_ex(q, c, **kw),
}


@pytest.mark.parametrize("entry", list(SOLVE_EX))
@pytest.mark.parametrize("which", [0, 1, 2, 3], ids=["Q", "q", "A", "c"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("B", [1, 40])  # one-problem path and the interleaved kernel
def test_unchecked_non_finite_input(entry, which, bad, dtype, B):
    P = [x.astype(dtype) for x in random_qp(B, 5, 2, seed=1)]
    clean = fastkkt.solve_ex(*P)
    P[which][B // 2].flat[-1] = bad
    z, lam, info = SOLVE_EX[entry](*P, check_finite=False)
    k = B // 2
    assert info[k] != 0
    assert np.isnan(z[k]).all()
    assert np.isnan(lam[k]).all()
    others = np.arange(B) != k
    np.testing.assert_array_equal(info[others], 0)
    np.testing.assert_array_equal(z[others], clean[0][others])
    with pytest.raises((fastkkt.KKTError, ValueError)):
        fastkkt.solve(*P, check_finite=False)


def _overflowing(dtype, B):
    """Q = s·I with s tiny and q large, all finite: z = −q/s overflows the dtype."""
    n, m = 4, 1
    big = np.finfo(dtype).max / 8
    Q = np.broadcast_to(np.eye(n, dtype=dtype) * dtype(2.0**-10), (B, n, n)).copy()
    q = np.zeros((B, n), dtype)
    q[:, 1] = 1.0
    q[B // 2, 1] = big  # |z| ≈ 2¹⁰·max/8 ≫ max for this element
    A = np.zeros((B, m, n), dtype)
    A[:, 0, 0] = 1.0
    c = np.ones((B, m), dtype)
    return Q, q, A, c


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("B", [1, 40])
def test_overflow_from_finite_input(dtype, B):
    P = _overflowing(dtype, B)
    assert all(np.isfinite(x).all() for x in P)
    for entry in SOLVE_EX.values():
        z, lam, info = entry(*P)
        k = B // 2
        assert info[k] == 1
        assert np.isnan(z[k]).all()
        assert np.isnan(lam[k]).all()
        others = np.arange(B) != k
        np.testing.assert_array_equal(info[others], 0)
        assert np.isfinite(z[others]).all()
        # the closed form of the others: z = (c, −2¹⁰, 0, 0)
        np.testing.assert_allclose(z[others][:, 1], -(2.0**10), rtol=1e-6)
    with pytest.raises(fastkkt.KKTError) as excinfo:
        fastkkt.solve(*P)
    assert excinfo.value.indices == [(B // 2,)]
    with pytest.raises(fastkkt.KKTError):
        fastkkt.factorize(P[0], P[2]).solve(P[1], P[3])


def test_float32_near_1e37_raises():
    Q = np.diag([1e-3, 1.0]).astype(np.float32)
    q = np.array([1e37, 1.0], np.float32)
    A = np.zeros((0, 2), np.float32)
    c = np.zeros(0, np.float32)
    with pytest.raises(fastkkt.KKTError):
        fastkkt.solve(Q, q, A, c)
    z, _, info = fastkkt.solve_ex(Q, q, A, c)
    assert info == 1
    assert np.isnan(z).all()
    # the float64 solve of the same data is finite (−1e40) and solved
    z64 = fastkkt.solve(Q.astype(np.float64), q.astype(np.float64), A, c)
    np.testing.assert_allclose(z64, [-1e40, -1.0], rtol=1e-6)
