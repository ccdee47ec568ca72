"""Thread count control, bitwise reproducibility across thread counts, and thread safety."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastkkt
from fastkkt import reference
from fastkkt.testing import assert_allclose_normwise, psd_qp, random_qp


def test_set_get_round_trip(restore_threads):
    for k in (1, 2, 3, 7, restore_threads):
        fastkkt.set_num_threads(k)
        assert fastkkt.get_num_threads() == k
    assert isinstance(fastkkt.get_num_threads(), int)


@pytest.mark.parametrize("k", [0, -1, -8])
def test_set_num_threads_rejects_non_positive(restore_threads, k):
    with pytest.raises(ValueError, match=str(k)):
        fastkkt.set_num_threads(k)
    assert fastkkt.get_num_threads() == restore_threads


def _default_in_subprocess(env_value):
    env = {k: v for k, v in os.environ.items() if k != "FASTKKT_NUM_THREADS"}
    if env_value is not None:
        env["FASTKKT_NUM_THREADS"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", "import fastkkt; print(fastkkt.get_num_threads())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(out.stdout.strip())


def test_default_is_every_core_or_environment():
    cores = {os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        cores.add(len(os.sched_getaffinity(0)))
    assert _default_in_subprocess(None) in cores
    assert _default_in_subprocess("3") == 3
    # a value that is no thread count warns (on stderr) and falls back to every core
    assert _default_in_subprocess("zero") in cores
    assert _default_in_subprocess("0") in cores


# Sizes that exercise the different kernels: many tiny problems, mid-size, one large system,
# and a batch whose problems need pivoting.
CASES = {
    "512x8x2": lambda: random_qp(512, 8, 2, seed=1),
    "256x16x4": lambda: random_qp(256, 16, 4, seed=2),
    "64x32x8-float32": lambda: random_qp(64, 32, 8, seed=3, dtype=np.float32),
    "8x64x16": lambda: random_qp(8, 64, 16, seed=4),
    "1x400x100": lambda: random_qp(1, 400, 100, seed=5),
    "3x230x70": lambda: random_qp(3, 230, 70, seed=7),
    "96x12x4-psd": lambda: psd_qp(96, 12, 4, seed=6),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bitwise_identical_across_thread_counts(restore_threads, case):
    Q, q, A, c = CASES[case]()
    results = {}
    for k in (1, 2, restore_threads):
        fastkkt.set_num_threads(k)
        z, lam, info = fastkkt.solve_ex(Q, q, A, c)
        F = fastkkt.factorize(Q, A)
        results[k] = (z, lam, info, F.solve(q, c))
    first = results[1]
    for k, res in results.items():
        for x, y in zip(res, first):
            np.testing.assert_array_equal(x, y, err_msg=f"{k} threads vs 1 thread")
    np.testing.assert_array_equal(first[2], 0)
    rtol = 1e-4 if Q.dtype == np.float32 else 1e-12
    assert_allclose_normwise(first[0], reference.solve(Q, q, A, c), rtol)


def test_concurrent_python_threads(restore_threads):
    fastkkt.set_num_threads(2)
    problems = [random_qp(200, 10 + 2 * i, 3, seed=10 + i) for i in range(4)]
    expected = [reference.solve(*p, return_multipliers=True) for p in problems]
    serial = [fastkkt.solve(*p, return_multipliers=True) for p in problems]

    def work(i):
        out = []
        for _ in range(5):
            out.append(fastkkt.solve(*problems[i], return_multipliers=True))
            F = fastkkt.factorize(problems[i][0], problems[i][2])
            out.append(F.solve(problems[i][1], problems[i][3], return_multipliers=True))
        return out

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, [0, 1, 2, 3, 0, 1, 2, 3]))
    for i, runs in zip([0, 1, 2, 3, 0, 1, 2, 3], results):
        for z, lam in runs:
            np.testing.assert_array_equal(z, serial[i][0])
            np.testing.assert_array_equal(lam, serial[i][1])
            assert_allclose_normwise(z, expected[i][0], 1e-12)
    assert fastkkt.get_num_threads() == 2


def test_thread_count_change_while_solving(restore_threads):
    # Calls in flight keep working while another thread changes the count.
    Q, q, A, c = random_qp(400, 16, 4, seed=20)
    expected = fastkkt.solve(Q, q, A, c)

    def solve_many(_):
        return [fastkkt.solve(Q, q, A, c) for _ in range(5)]

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(solve_many, i) for i in range(2)]
        for k in (1, 2, 1, 2):
            fastkkt.set_num_threads(k)
        for f in futures:
            for z in f.result():
                np.testing.assert_array_equal(z, expected)
