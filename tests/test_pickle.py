"""Arrays whose dtype is an equivalent but distinct object — after pickle, through ctypes, or
with metadata — are accepted like any float64/float32 array, and a pickled KKTFactorization
solves. (The bindings once compared dtypes by identity: "expected dtype float64, got float64".)"""

from __future__ import annotations

import ctypes
import pickle

import numpy as np
import pytest

import fastkkt
from fastkkt import reference
from fastkkt.testing import assert_allclose_normwise, random_qp


def _round_trip(x):
    return pickle.loads(pickle.dumps(x))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
def test_pickled_arrays(dtype, batch):
    P = random_qp(batch, 6, 2, seed=1, dtype=dtype)
    back = [_round_trip(x) for x in P]
    assert all(b.dtype == x.dtype for b, x in zip(back, P))
    z, lam = fastkkt.solve(*P, return_multipliers=True)
    z2, lam2 = fastkkt.solve(*back, return_multipliers=True)
    assert z2.dtype == dtype
    np.testing.assert_array_equal(z2, z)
    np.testing.assert_array_equal(lam2, lam)
    assert_allclose_normwise(z2, reference.solve(*P), 1e-4 if dtype == np.float32 else 1e-12)
    zx, _, info = fastkkt.solve_ex(*back)
    np.testing.assert_array_equal(zx, z)
    np.testing.assert_array_equal(info, 0)
    # only some of the operands pickled, and a shared (broadcast) pickled Q and A
    np.testing.assert_array_equal(fastkkt.solve(back[0], P[1], back[2], P[3]), z)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pickled_factorization_solves(dtype):
    Q, q, A, c = random_qp(4, 5, 2, seed=2, dtype=dtype)
    F = fastkkt.factorize(Q, A)
    G = _round_trip(F)
    np.testing.assert_array_equal(G.info, F.info)
    np.testing.assert_array_equal(G.solve(q, c), F.solve(q, c))
    np.testing.assert_array_equal(G.solve(_round_trip(q), _round_trip(c)), F.solve(q, c))
    z, _lam, info = G.solve_ex(q[0], c[0])
    np.testing.assert_array_equal(z, F.solve_ex(q[0], c[0])[0])
    np.testing.assert_array_equal(info, 0)


def test_dtype_with_metadata():
    P = random_qp(3, 4, 1, seed=3)
    meta = np.dtype(np.float64, metadata={"unit": "m"})
    tagged = [x.astype(meta) for x in P]
    assert tagged[0].dtype.metadata == {"unit": "m"}
    np.testing.assert_array_equal(fastkkt.solve(*tagged), fastkkt.solve(*P))
    F = fastkkt.factorize(tagged[0], tagged[2])
    np.testing.assert_array_equal(F.solve(tagged[1], tagged[3]), fastkkt.solve(*P))
    meta32 = np.dtype(np.float32, metadata={"unit": "m"})
    P32 = [x.astype(np.float32) for x in P]
    z = fastkkt.solve(*[x.astype(meta32) for x in P32])
    assert z.dtype == np.float32
    np.testing.assert_array_equal(z, fastkkt.solve(*P32))


def test_ctypeslib_arrays():
    Q, q, A, c = random_qp((), 4, 2, seed=4)

    def via_ctypes(x):
        buf = (ctypes.c_double * x.size)(*x.ravel())
        return np.ctypeslib.as_array(buf).reshape(x.shape)

    back = [via_ctypes(x) for x in (Q, q, A, c)]
    np.testing.assert_array_equal(fastkkt.solve(*back), fastkkt.solve(Q, q, A, c))
    F = fastkkt.factorize(back[0], back[2])
    np.testing.assert_array_equal(F.solve(back[1], back[3]), fastkkt.solve(Q, q, A, c))


def test_non_native_byte_order_after_pickle():
    P = [x.astype(x.dtype.newbyteorder()) for x in random_qp(3, 4, 2, seed=5)]
    back = [_round_trip(x) for x in P]
    native = [x.astype(np.float64) for x in P]
    np.testing.assert_array_equal(fastkkt.solve(*back), fastkkt.solve(*native))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_solve_qp_takes_unpickled_arrays(dtype):
    """solve_qp on arrays that went through pickle (an equal dtype, another object): the same
    bits as on the originals, in the original dtype."""
    from fastkkt.testing import qp_case

    C = {k: v.astype(dtype) for k, v in qp_case("tiny").items() if v is not None}
    P = {k: pickle.loads(pickle.dumps(v)) for k, v in C.items()}
    z = fastkkt.solve_qp(C["Q"], C["q"], G=C["G"], h=C["h"])
    zp = fastkkt.solve_qp(P["Q"], P["q"], G=P["G"], h=P["h"])
    assert zp.dtype == dtype
    np.testing.assert_array_equal(zp, z)
