"""A daemon thread still inside a fastkkt call when the interpreter exits does not abort the
process. (It used to: the GIL was taken back in a destructor, and Python ends such threads with
pthread_exit, whose unwinding through a noexcept destructor is std::terminate — SIGABRT,
"terminate called without an active exception".)"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_CHILD = textwrap.dedent(
    """
    import sys, threading, time, fastkkt
    from fastkkt.testing import random_qp
    fastkkt.set_num_threads(int(sys.argv[1]))
    P = random_qp(20000, 24, 6, seed=0)
    F = fastkkt.factorize(P[0], P[2])
    started = threading.Event()

    def loop():
        started.set()
        while True:
            fastkkt.solve_ex(*P)
            F.solve_ex(P[1], P[3])

    threading.Thread(target=loop, daemon=True).start()
    started.wait()
    time.sleep(0.05)
    print("exiting", flush=True)
    """
)


@pytest.mark.parametrize("threads", [1, 2])
def test_daemon_thread_in_a_call_at_exit(threads):
    for _ in range(4):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(threads)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, (out.returncode, out.stderr)
        assert "exiting" in out.stdout
        assert "terminate" not in out.stderr
