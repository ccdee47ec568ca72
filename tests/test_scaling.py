"""Status and solution do not depend on the units of Q and A. Scaling the objective (Q, q) by
s_Q and the constraints (A, c) by s_A, powers of 2 so that the scaled data are exact, leaves z
unchanged and multiplies λ by s_Q/s_A; the status must not change either. Scaling both by the
same factor works today; independent scalings (Q of order 1e-15 against A of order 1, which
LAPACK solves to 5e-16) are reported singular until the Q and A blocks are equilibrated
separately before deciding singularity (issue #11 item 12): that test is a strict xfail."""

from __future__ import annotations

import numpy as np
import pytest

import fastkkt
from fastkkt.testing import assert_allclose_normwise, random_qp

POWERS = [-50, -20, 0, 20, 50]


def _problems():
    Q, q, A, c = (x.copy() for x in random_qp(24, 8, 3, seed=11))
    A[::6, 2] = A[::6, 0]  # every 6th element singular (dependent rows of A)
    return Q, q, A, c


def _check(eq, ea):
    Q, q, A, c = _problems()
    z0, lam0, info0 = fastkkt.solve_ex(Q, q, A, c)
    sq, sa = 2.0**eq, 2.0**ea
    z, lam, info = fastkkt.solve_ex(Q * sq, q * sq, A * sa, c * sa)
    np.testing.assert_array_equal(info, info0, err_msg=f"s_Q = 2^{eq}, s_A = 2^{ea}")
    ok = info0 == 0
    assert_allclose_normwise(z[ok], z0[ok], 1e-12)
    assert_allclose_normwise(lam[ok] * (sa / sq), lam0[ok], 1e-12)


@pytest.mark.parametrize("e", POWERS)
def test_status_invariant_to_a_common_scaling(e):
    _check(e, e)


@pytest.mark.xfail(
    strict=True,
    reason="issue #11 item 12: Q and A blocks are not equilibrated separately before the "
    "singularity decision",
)
def test_status_invariant_to_independent_scalings():
    for eq in POWERS:
        for ea in POWERS:
            _check(eq, ea)
