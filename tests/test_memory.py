"""Memory: broadcast operands are never expanded, extra memory is O(B(n+m)), no leaks.

The big cases run scripts/memory_check.py in a fresh subprocess (peak RSS through
/proc/self/clear_refs, so C++ scratch counts too); the broadcast checks use tracemalloc,
which sees every NumPy allocation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import fastkkt
from fastkkt import reference
from fastkkt.testing import assert_allclose_normwise, random_qp

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "memory_check.py"
linux_only = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc/self/clear_refs"
)


def _traced_peak(f):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = f()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return out, peak


@pytest.mark.parametrize("entry", ["solve_ex", "factorize"])
def test_shared_q_and_a_are_not_expanded(entry):
    B, n, m = 100_000, 64, 8
    Q1, _, A1, c1 = random_qp((), n, m, seed=1)
    q = np.random.default_rng(1).standard_normal((B, n))
    if entry == "solve_ex":
        (z, lam, info), peak = _traced_peak(lambda: fastkkt.solve_ex(Q1, q, A1, c1))
    else:
        F = fastkkt.factorize(Q1, A1)
        (z, lam, info), peak = _traced_peak(lambda: F.solve_ex(q, c1))
    outputs = z.nbytes + lam.nbytes + info.nbytes
    assert peak < B * n * n * 8 / 40  # ≪ expanding Q (3.3 GB)
    assert peak <= 1.1 * outputs + 2**20, (peak, outputs)
    np.testing.assert_array_equal(info, 0)
    idx = [0, 4_321, B - 1]
    assert_allclose_normwise(z[idx], reference.solve(Q1, q[idx], A1, c1), 1e-10)


def test_extra_memory_is_linear_in_batch():
    """Shared Q and A, batch of q and c: the traced extra memory per element is (n+m)
    scalars plus the status, whatever the batch size."""
    n, m = 16, 4
    Q1, _, A1, _ = random_qp((), n, m, seed=2)
    per = []
    for B in (20_000, 80_000):
        q = np.ones((B, n))
        c = np.ones((B, m))
        _, peak = _traced_peak(lambda q=q, c=c: fastkkt.solve_ex(Q1, q, A1, c))
        per.append(peak / B)
    for p in per:
        assert p <= 1.1 * ((n + m) * 8 + 4) + 64
    # broadcasting a float32 Q against a float64 batch converts the small operand only
    Q32 = Q1.astype(np.float32)
    q, c = np.ones((50_000, n)), np.ones(m)
    _, peak = _traced_peak(lambda: fastkkt.solve_ex(Q32, q, A1, c))
    assert peak <= 1.1 * 50_000 * ((n + m) * 8 + 4) + 2**20


@linux_only
def test_peak_rss_of_a_big_batch_and_repeated_calls():
    """B = 100,000 distinct problems (n = 8, m = 2): peak RSS growth ≤ 2× the bytes of inputs
    and outputs (in fact ≈ the outputs); RSS flat over a few thousand repeated NumPy and torch
    (forward + backward) calls after warm-up."""
    pytest.importorskip("torch")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--batch", "100000", "--calls", "2000", "--warmup", "300"]
        + ["--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    res = json.loads(out.stdout)
    big = res["big"]
    assert big["extra_over_io"] <= 2.0, big
    assert big["extra_beyond_outputs"] <= 16 * 2**20, big  # scratch is per thread, not per element
    for name, r in res["repeated"].items():
        assert r["rss_growth_bytes"] < 3 * 2**20, (name, r)
