"""The memory guard counts what a call will allocate — z, lam and info at their dtype's size,
kept factorizations — on every path, also the fast one for np.broadcast_to inputs (whose
results may be far larger than the inputs). The machine's memory is patched to a small value,
so nothing huge is allocated."""

from __future__ import annotations

import numpy as np
import pytest

import fastkkt
from fastkkt import _validate
from fastkkt.testing import random_qp


@pytest.fixture
def memory(monkeypatch):
    def set_memory(nbytes: int) -> None:
        monkeypatch.setattr(_validate, "_PHYSICAL_MEMORY", nbytes)

    return set_memory


def _outputs(B, n, m, itemsize):
    return B * ((n + m) * itemsize + 4)


def test_broadcast_inputs_on_the_fast_path(memory):
    B, n, m = 100_000, 4, 1
    Q, q, A, c = random_qp((), n, m, seed=1)
    views = [np.broadcast_to(x, (B, *x.shape)) for x in (Q, q, A, c)]
    memory(_outputs(B, n, m, 8) // 2)  # the inputs take a few bytes, the results twice this
    for f in (fastkkt.solve, fastkkt.solve_ex):
        with pytest.raises(MemoryError, match=r"\(100000,\)"):
            f(*views)
    memory(2 * _outputs(B, n, m, 8))
    z = fastkkt.solve(*views)
    np.testing.assert_array_equal(z[[0, B - 1]], fastkkt.solve(Q, q, A, c)[None].repeat(2, 0))


@pytest.mark.parametrize("path", ["fast", "general"])
def test_float64_results_counted_at_eight_bytes(memory, path):
    B, n, m = 10_000, 16, 4
    P = random_qp(B, n, m, seed=2)
    if path == "general":
        P = (P[0].astype(np.float32), *P[1:])  # mixed dtypes: converted, then float64
    need = _outputs(B, n, m, 8)
    memory(int(0.75 * need))  # more than half the float64 results, less than all of them
    with pytest.raises(MemoryError):
        fastkkt.solve_ex(*P)
    memory(int(1.25 * need))
    _, _, info = fastkkt.solve_ex(*P)
    np.testing.assert_array_equal(info, 0)


def test_float32_results_counted_at_four_bytes(memory):
    B, n, m = 10_000, 16, 4
    P = random_qp(B, n, m, seed=3, dtype=np.float32)
    memory(int(1.25 * _outputs(B, n, m, 4)))
    assert fastkkt.solve(*P).dtype == np.float32
    memory(int(0.75 * _outputs(B, n, m, 4)))
    with pytest.raises(MemoryError):
        fastkkt.solve(*P)


def test_factorization_records_are_counted(memory):
    B, n, m = 2_000, 16, 4
    Q, q, A, c = random_qp(B, n, m, seed=4)
    N = n + m
    records = B * ((N * (N - 1) // 2 + 3 * N + 4) * 8 + 4)
    memory(records // 2)  # z, lam, info would fit; the factorizations do not
    assert _outputs(B, n, m, 8) < records // 2
    with pytest.raises(MemoryError):
        fastkkt.factorize(Q, A)
    memory(2 * records)
    F = fastkkt.factorize(Q, A)
    np.testing.assert_array_equal(F.solve(q, c), fastkkt.solve(Q, q, A, c))
