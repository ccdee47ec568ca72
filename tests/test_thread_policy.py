"""How many threads a call really starts: never more than the cores, fewer under a lower
OpenMP limit of the calling thread (threadpoolctl, torch.set_num_threads), and the
environment's defaults (FASTKKT_NUM_THREADS, else OMP_NUM_THREADS). Counted as the threads
of a fresh process (/proc/self/task) before and after a call that has work for many threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

_THREAD_VARS = ("FASTKKT_NUM_THREADS", "OMP_NUM_THREADS")
linux_only = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")

_COUNT = textwrap.dedent(
    """
    import json, os, sys, numpy as np, fastkkt
    from fastkkt.testing import random_qp

    def tasks():
        return len(os.listdir("/proc/self/task"))

    P = random_qp(20000, 16, 4, seed=0)
    big = random_qp(1, 300, 60, seed=1)
    before = tasks()
    setup = sys.argv[1]
    if setup == "k64":
        fastkkt.set_num_threads(64)
    ctx = None
    if setup == "threadpoolctl":
        from threadpoolctl import threadpool_limits
        ctx = threadpool_limits(1, user_api="openmp")
    if setup == "torch":
        import torch
        torch.set_num_threads(1)
        before = tasks()
    z = fastkkt.solve(*P)
    zb = fastkkt.solve(*big)
    after = tasks()
    if ctx is not None:
        ctx.unregister()
    fastkkt.set_num_threads(1)
    same = np.array_equal(z, fastkkt.solve(*P)) and np.array_equal(zb, fastkkt.solve(*big))
    print(json.dumps({"new": after - before, "same": bool(same),
                      "setting": fastkkt.get_num_threads(), "cores": len(os.sched_getaffinity(0))}))
    """
)


def _count(setup: str, **env: str) -> dict:
    full = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
    full.update(OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", **env)
    out = subprocess.run(
        [sys.executable, "-c", _COUNT, setup],
        capture_output=True,
        text=True,
        timeout=120,
        env=full,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@linux_only
def test_threads_capped_at_cores():
    r = _count("k64")
    assert r["same"]
    assert r["new"] <= r["cores"] - 1, r  # the calling thread plus at most cores − 1 workers


@linux_only
def test_threadpoolctl_limit_is_followed():
    pytest.importorskip("threadpoolctl")
    r = _count("threadpoolctl")
    assert r["same"]
    assert r["new"] == 0, r


@linux_only
def test_torch_set_num_threads_one_is_followed():
    pytest.importorskip("torch")
    r = _count("torch")
    assert r["same"]
    assert r["new"] == 0, r


def _setting(**env: str) -> int:
    full = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
    full.update(env)
    out = subprocess.run(
        [sys.executable, "-c", "import fastkkt; print(fastkkt.get_num_threads())"],
        capture_output=True,
        text=True,
        timeout=60,
        env=full,
        check=True,
    )
    return int(out.stdout.strip())


def test_omp_num_threads_is_the_default_without_fastkkt_num_threads():
    assert _setting(OMP_NUM_THREADS="1") == 1
    assert _setting(OMP_NUM_THREADS="3,2") == 3
    assert _setting(OMP_NUM_THREADS="1", FASTKKT_NUM_THREADS="2") == 2


@linux_only
def test_omp_num_threads_one_starts_no_thread():
    r = _count("default", OMP_NUM_THREADS="1")
    assert r["setting"] == 1
    assert r["new"] == 0, r


def test_large_problem_shared_among_threads_is_bitwise_the_same():
    """From n + m = 600 one problem's tiles are shared among the threads: the same bits as on
    one thread (and below it, with a batch split among threads, too)."""
    import fastkkt
    from fastkkt import reference
    from fastkkt.testing import assert_allclose_normwise, random_qp

    before = fastkkt.get_num_threads()
    try:
        for P in (random_qp(1, 560, 80, seed=3), random_qp(3, 230, 70, seed=7)):
            out = {}
            for k in (1, 2):
                fastkkt.set_num_threads(k)
                F = fastkkt.factorize(P[0], P[2])
                out[k] = (fastkkt.solve(*P), F.solve(P[1], P[3]))
            for a, b in zip(out[1], out[2]):
                np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(out[1][0], out[1][1])
            assert_allclose_normwise(out[1][0], reference.solve(*P), 1e-10)
    finally:
        fastkkt.set_num_threads(before)
