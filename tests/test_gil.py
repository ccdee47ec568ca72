"""The GIL is released during solves, concurrent calls are correct, Ctrl-C is honoured, and
results are bitwise the same for any thread count (what tests/test_threads.py does not cover:
failing elements, float32 pivoted problems, the torch layer and its gradients)."""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastkkt
from fastkkt import reference
from fastkkt.testing import assert_allclose_normwise, indefinite_qp, random_qp


@functools.lru_cache(maxsize=1)
def _calibrated_problem(target_s: float = 0.3):
    """A batch that one thread solves in about `target_s` seconds."""
    B = 2000
    while True:
        P = random_qp(B, 24, 6, seed=3)
        t0 = time.perf_counter()
        fastkkt.solve_ex(*P)
        dt = time.perf_counter() - t0
        if dt >= target_s / 3 or B >= 2_000_000:
            break
        B *= 2
    B = max(B, int(B * target_s / max(dt, 1e-3)))
    return random_qp(B, 24, 6, seed=3)


def test_gil_released_python_runs_during_a_solve(restore_threads):
    """A pure-Python counter thread keeps running while the main thread solves: it could not
    if the call held the GIL (robust to the number of cores)."""
    fastkkt.set_num_threads(1)
    P = _calibrated_problem(0.3)
    count = 0
    stop = threading.Event()

    def counter():
        nonlocal count
        while not stop.is_set():
            count += 1

    sys_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        t = threading.Thread(target=counter)
        t.start()
        time.sleep(0.02)
        start = count
        t0 = time.perf_counter()
        fastkkt.solve_ex(*P)
        dt = time.perf_counter() - t0
        during = count - start
        stop.set()
        t.join()
    finally:
        sys.setswitchinterval(sys_interval)
    # Python loop speed ≳ 1e6 iterations / s; demand a small fraction of that.
    assert during > 1e4 * dt, (during, dt)


def test_concurrent_mixed_calls_match_reference(restore_threads):
    """Several Python threads at once, float32 and float64, solve / solve_ex with failing
    elements / factorize, while another thread changes the thread count."""
    good = random_qp(300, 8, 3, seed=5)
    bad = [x.copy() for x in indefinite_qp(300, 8, 3, seed=6)]
    bad[2][::7, 1] = bad[2][::7, 0]  # every 7th element singular
    f32 = random_qp(300, 12, 4, seed=7, dtype=np.float32)
    expected = {
        "good": reference.solve(*good),
        "bad": reference.solve_ex(*bad),
        "f32": reference.solve(*f32),
    }

    def work(i):
        out = []
        for _ in range(4):
            out.append(("good", fastkkt.solve(*good)))
            out.append(("bad", fastkkt.solve_ex(*bad)))
            out.append(("f32", fastkkt.factorize(f32[0], f32[2]).solve(f32[1], f32[3])))
        return out

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(work, i) for i in range(6)]
        for k in (1, 2, 3, 1):
            fastkkt.set_num_threads(k)
            time.sleep(0.01)
        results = [r for f in futures for r in f.result()]
    for name, res in results:
        if name == "bad":
            z, _, info = res
            np.testing.assert_array_equal(info, expected["bad"][2])
            assert_allclose_normwise(z, expected["bad"][0], 1e-10)
        else:
            assert_allclose_normwise(res, expected[name], 1e-10 if name == "good" else 1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bitwise_across_thread_counts_with_failures_and_torch(restore_threads, dtype):
    torch = pytest.importorskip("torch")
    import fastkkt.torch as fkt

    Q, q, A, c = (x.copy() for x in indefinite_qp(700, 10, 3, seed=8, dtype=dtype))
    A[::5, 2] = A[::5, 0]  # singular elements among pivoted ones
    ref = None
    for k in (1, 2, restore_threads):
        fastkkt.set_num_threads(k)
        z, lam, info = fastkkt.solve_ex(Q, q, A, c)
        ts = [torch.tensor(x, requires_grad=True) for x in (Q, q, A, c)]
        tz, tlam, tinfo = fkt.solve_ex(*ts)
        ok = (tinfo == 0).unsqueeze(-1)
        (torch.where(ok, tz, 0).sum() + torch.where(ok, tlam, 0).sum()).backward()
        res = [z, lam, info, tz.detach().numpy(), *(t.grad.numpy() for t in ts)]
        if ref is None:
            ref = res
            np.testing.assert_array_equal(info[::5], 1)
            assert (info == 0).sum() > 300
        for a, b in zip(res, ref):
            np.testing.assert_array_equal(a, b, err_msg=f"{k} threads")


_INTERRUPT_CHILD = textwrap.dedent(
    """
    import sys, time, numpy as np, fastkkt
    from fastkkt.testing import random_qp
    fastkkt.set_num_threads(1)
    # Distinct (Q, A) per element by broadcasting 300 problems against ≈15 s of right-hand sides.
    Q, q, A, c = random_qp(300, 40, 10, seed=1)
    Q, A = Q[None], A[None]
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    fastkkt.solve_ex(Q, rng.standard_normal((80, 1, 40)), A, c)
    per_row = (time.perf_counter() - t0) / 80  # one row = 300 problems
    rows = min(int(15 / per_row) + 1, 40_000)  # z is written as it goes: untouched pages stay free
    qs = np.broadcast_to(rng.standard_normal((1, 1, 40)), (rows, 1, 40))
    estimate = per_row * rows
    print(f"estimate {estimate:.1f}", flush=True)
    try:
        fastkkt.solve_ex(Q, qs, A, c)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(3)
    print("finished", flush=True)
    """
)


def test_keyboard_interrupt_is_honoured_quickly():
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPT_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("estimate"), line + proc.stderr.read()
        estimate = float(line.split()[1])
        assert estimate >= 10, f"the long call would take only {estimate:.1f} s"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        # the call has ≥ 9.5 s left: "interrupted" within the timeout means it stopped early
        out, err = proc.communicate(timeout=8)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, (proc.returncode, out, err)
    assert "interrupted" in out
