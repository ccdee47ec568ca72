"""Property tests: random shapes, broadcasting patterns and dtypes (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import fastkkt
from fastkkt import reference
from fastkkt.testing import kkt_matrix, kkt_residual, random_qp

DTYPES = st.sampled_from([np.float64, np.float32])


@st.composite
def problems(draw):
    """A random_qp problem over a batch shape of up to 3 dims, each operand broadcast
    independently: leading dims dropped and/or some dims reduced to size 1."""
    batch = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    n = draw(st.integers(1, 10))
    m = draw(st.integers(0, n))
    dtype = draw(DTYPES)
    seed = draw(st.integers(0, 2**32 - 1))
    Q, q, A, c = random_qp(batch, n, m, seed=seed, dtype=dtype)
    out = []
    for x, inner in zip((Q, q, A, c), (2, 1, 2, 1)):
        keep = draw(st.lists(st.booleans(), min_size=len(batch), max_size=len(batch)))
        index = tuple(slice(None) if k else slice(0, 1) for k in keep)
        x = x[index]  # size-1 dims where not kept (empty batches stay empty)
        drop = draw(st.integers(0, len(batch)))
        # Leading size-1 dims may be dropped entirely.
        while drop and x.ndim > inner and x.shape[0] == 1:
            x, drop = x[0], drop - 1
        out.append(x)
    return tuple(out)


def _clear_status(Q, q, A, c, dtype):
    """The reference's status per element where it is clear-cut, -1 elsewhere: clear when
    cond(K) is at most min(1e-2 / tol, 1e8), a factor 100 inside the singularity threshold."""
    K = kkt_matrix(np.asarray(Q, np.float64), np.asarray(A, np.float64))
    _, _, info = reference.solve_ex(Q, q, A, c)
    K = np.broadcast_to(K, (*info.shape, *K.shape[-2:]))
    if K.size == 0:
        return info
    s = np.linalg.svd(K, compute_uv=False)
    rcond = np.divide(s[..., -1], s[..., 0], out=np.zeros(info.shape), where=s[..., 0] > 0)
    limit = min(1e-2 / (K.shape[-1] * np.finfo(dtype).eps), 1e8)
    return np.where(rcond * limit >= 1, info, -1)


@given(problems())
def test_solve_ex_small_backward_error_and_agrees(case):
    Q, q, A, c = case
    dtype = Q.dtype.type
    z, lam, info = fastkkt.solve_ex(Q, q, A, c)  # never raises on finite, well-shaped input
    expected_batch = np.broadcast_shapes(Q.shape[:-2], q.shape[:-1], A.shape[:-2], c.shape[:-1])
    assert info.shape == expected_batch
    assert z.shape == (*expected_batch, Q.shape[-1])
    assert lam.shape == (*expected_batch, A.shape[-2])
    assert z.dtype == lam.dtype == dtype
    assert info.dtype == np.int32
    clear = _clear_status(Q, q, A, c, dtype)
    np.testing.assert_array_equal(info[clear >= 0], clear[clear >= 0])
    good = clear == 0
    N = Q.shape[-1] + A.shape[-2]
    res = kkt_residual(Q, q, A, c, z, lam)
    assert (res[good] <= 50 * N * np.finfo(dtype).eps).all(), res[good].max()
    ok = info == 0
    assert np.isfinite(z[ok]).all()
    assert np.isnan(z[~ok]).all()


@given(problems(), st.data())
def test_bad_elements_are_reported(case, data):
    """Elements made singular (dependent or zero rows) or maxima (−Q) by construction get
    the reference's status."""
    Q, q, A, c = case
    n, m = Q.shape[-1], A.shape[-2]
    batch = np.broadcast_shapes(Q.shape[:-2], q.shape[:-1], A.shape[:-2], c.shape[:-1])
    Q = np.array(np.broadcast_to(Q, (*batch, n, n)), order="C")
    A = np.array(np.broadcast_to(A, (*batch, m, n)), order="C")
    size = int(np.prod(batch))
    if size == 0:
        return
    flat_Q, flat_A = Q.reshape(size, n, n), A.reshape(size, m, n)  # views: C order
    kinds = data.draw(
        st.lists(st.sampled_from(["good", "singular", "max"]), min_size=size, max_size=size)
    )
    expected = np.zeros(size, np.int32)
    for i, kind in enumerate(kinds):
        if kind == "singular":
            if m >= 2:
                flat_A[i, 1] = flat_A[i, 0]  # dependent rows
            elif m == 1:
                flat_A[i, 0] = 0.0  # zero row
            else:
                flat_Q[i, 0, :] = flat_Q[i, :, 0] = 0.0  # Q singular, unconstrained
            expected[i] = 1
        elif kind == "max" and m < n:
            flat_Q[i] = -flat_Q[i]  # negative definite on null(A)
            expected[i] = 2
    expected = expected.reshape(batch)
    _, _, ref_info = reference.solve_ex(Q, q, A, c)
    clear = _clear_status(Q, q, A, c, Q.dtype.type)
    singular = expected == 1  # certain by construction, however ill-conditioned
    np.testing.assert_array_equal(ref_info[singular], 1)
    made_max = (expected == 2) & (clear >= 0)
    np.testing.assert_array_equal(clear[made_max], 2)
    z, lam, info = fastkkt.solve_ex(Q, q, A, c)
    np.testing.assert_array_equal(info[singular], 1)
    np.testing.assert_array_equal(info[clear >= 0], clear[clear >= 0])
    assert np.isnan(z[info != 0]).all()
    assert np.isnan(lam[info != 0]).all()
