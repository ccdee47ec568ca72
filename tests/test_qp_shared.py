"""solve_qp with Q and G shared by the batch (passed unbatched, or with batch dimensions of size
1) and q, h per element, as in an OptNet layer: the core computes what depends on Q and G alone
once per call (qp.hpp QPShared: the PSD test, the dual Schur complement's L, M, K₀). Checked
against Clarabel, and bitwise against the same call on materialized copies, element by element,
across thread counts and through fastkkt.dask's chunks (the results must not depend on the
batch an element came in)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

import fastkkt
import fastkkt.dask as fd
from fastkkt.testing import clarabel_qp

# FASTKKT_QP_SCHUR: "" the shape rule, "0" never, "1" wherever an element qualifies
MODES = ["", "0", "1"]


def _optnet(B, n, p, seed):
    """qpth's generator with one Q and G (BENCH_QP.md `optnet`), q and h per element."""
    rng = np.random.default_rng([seed, B, n, p])
    L = rng.uniform(size=(n, n))
    Q = L @ L.T + 1e-3 * np.eye(n)
    Q = (Q + Q.T) / 2
    G = rng.standard_normal((p, n))
    z0 = rng.standard_normal((B, n))
    h = z0 @ G.T + rng.uniform(size=(B, p))
    q = rng.standard_normal((B, n))
    return Q, q, G, h


def _materialized(Q, G, batch):
    n, p = Q.shape[-1], G.shape[-2]
    return np.broadcast_to(Q, (*batch, n, n)).copy(), np.broadcast_to(G, (*batch, p, n)).copy()


def _assert_same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _mixed_h(h):
    """Element 1 without its row 2 (h = +inf): it cannot take the shared L, M, K₀."""
    h = h.copy()
    h[1, 2] = np.inf
    return h


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(6, 40, 16), (5, 24, 24)], ids=["p<n", "p=n"])
def test_shared_against_clarabel(monkeypatch, mode, shape):
    monkeypatch.setenv("FASTKKT_QP_SCHUR", mode)
    Q, q, G, h = _optnet(*shape, seed=1)
    h = _mixed_h(h)
    sol = fastkkt.solve_qp_ex(Q, q, G=G, h=h)
    ref = clarabel_qp(np.broadcast_to(Q, (shape[0], *Q.shape)), q, G=G, h=h)
    np.testing.assert_array_equal(sol.info, 0)
    np.testing.assert_array_equal(ref["status"], 0)
    scale = np.maximum(1.0, np.abs(ref["z"]).max(axis=-1, keepdims=True))
    assert (np.abs(sol.z - ref["z"]) / scale).max() <= 1e-6
    mu_scale = np.maximum(1.0, np.abs(ref["mu"]).max(axis=-1, keepdims=True))
    assert (np.abs(sol.mu - ref["mu"]) / mu_scale).max() <= 1e-5
    assert np.isclose(sol.mu[1, 2], 0.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", MODES)
def test_shared_bitwise_as_materialized(monkeypatch, restore_threads, mode, dtype):
    """Shared Q, G give the bits of the same batch with every element's own copy, on one thread
    and on three; also with a row dropped from one element and a fixed coordinate in another
    (those compute their own factors)."""
    monkeypatch.setenv("FASTKKT_QP_SCHUR", mode)
    B, n, p = 7, 40, 16
    Q, q, G, h = (x.astype(dtype) for x in _optnet(B, n, p, seed=2))
    h = _mixed_h(h)
    Qm, Gm = _materialized(Q, G, (B,))
    for threads in (1, 3):
        fastkkt.set_num_threads(threads)
        shared = fastkkt.solve_qp_ex(Q, q, G=G, h=h)
        _assert_same(shared, fastkkt.solve_qp_ex(Qm, q, G=Gm, h=h))
        np.testing.assert_array_equal(shared.info, 0)
    # bounds (the Schur complement does not take them; the PSD test is still shared), one
    # element with a fixed coordinate (its own PSD test on the reduced Q)
    lb = np.full((B, n), -10.0, dtype)
    ub = np.full((B, n), 10.0, dtype)
    lb[3, 5] = ub[3, 5] = 0.25
    shared = fastkkt.solve_qp_ex(Q, q, G=G, h=h, lb=lb, ub=ub)
    _assert_same(shared, fastkkt.solve_qp_ex(Qm, q, G=Gm, h=h, lb=lb, ub=ub))
    np.testing.assert_array_equal(shared.info, 0)


@pytest.mark.parametrize("mode", ["", "1"])
def test_size_one_and_mixed_batch_dimensions(monkeypatch, mode):
    """Q with a batch dimension of size 1, G unbatched, against a 2-D batch of q and h; Q shared
    with G per element (only the PSD test shared); each bitwise as materialized and as every
    element solved alone."""
    monkeypatch.setenv("FASTKKT_QP_SCHUR", mode)
    n, p = 36, 12
    Q, q, G, h = _optnet(12, n, p, seed=3)
    q, h = q.reshape(3, 4, n), h.reshape(3, 4, p)
    Q1 = Q[None]  # (1, n, n): broadcast along the first batch dimension
    shared = fastkkt.solve_qp_ex(Q1, q, G=G, h=h)
    Qm, Gm = _materialized(Q, G, (3, 4))
    _assert_same(shared, fastkkt.solve_qp_ex(Qm, q, G=Gm, h=h))
    np.testing.assert_array_equal(shared.info, 0)
    for i in range(3):
        for j in range(4):
            alone = fastkkt.solve_qp_ex(Q, q[i, j], G=G, h=h[i, j])
            np.testing.assert_array_equal(alone.z, shared.z[i, j])
            np.testing.assert_array_equal(alone.mu, shared.mu[i, j])
            assert alone.iterations == shared.iterations[i, j]
    # G per element, Q shared
    rng = np.random.default_rng(4)
    Gb = G + 0.1 * rng.standard_normal((3, 4, p, n))
    shared = fastkkt.solve_qp_ex(Q, q, G=Gb, h=h)
    _assert_same(shared, fastkkt.solve_qp_ex(Qm, q, G=Gb, h=h))
    ref = clarabel_qp(Qm, q, G=Gb, h=h)
    np.testing.assert_array_equal(shared.info, 0)
    assert np.abs(shared.z - ref["z"]).max() <= 1e-6 * max(1.0, np.abs(ref["z"]).max())


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_dask_chunks_bitwise(monkeypatch, chunk):
    """fastkkt.dask keeps a NumPy Q and G broadcast in every chunk (also in chunks of one
    element): the chunked results are the whole call's bits."""
    monkeypatch.setenv("FASTKKT_QP_SCHUR", "1")
    B, n, p = 8, 40, 16
    Q, q, G, h = _optnet(B, n, p, seed=5)
    h = _mixed_h(h)
    whole = fastkkt.solve_qp_ex(Q, q, G=G, h=h)
    lazy = fd.solve_qp_ex(
        Q, da.from_array(q, chunks=(chunk, n)), G=G, h=da.from_array(h, (chunk, p))
    )
    got = da.compute(*lazy, scheduler="synchronous")
    _assert_same(got, whole)
    # the materialized Q, G chunked (each chunk's Q its own slice): the same bits again
    Qm, Gm = _materialized(Q, G, (B,))
    lazy = fd.solve_qp_ex(
        da.from_array(Qm, chunks=(chunk, n, n)),
        q,
        G=da.from_array(Gm, chunks=(chunk, p, n)),
        h=h,
    )
    _assert_same(da.compute(*lazy, scheduler="synchronous"), whole)
