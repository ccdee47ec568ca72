"""Memory checks of fastkkt: extra memory of one big solve, and RSS over repeated calls.

    python scripts/memory_check.py                      # B = 1,000,000, 20,000 calls
    python scripts/memory_check.py --batch 100000 --calls 3000 --json   # what the tests run

1. Peak extra memory of ``fastkkt.solve_ex`` on B problems with n = 8, m = 2, as a multiple of
   the bytes of its inputs and outputs: the peak RSS (VmHWM, reset through
   /proc/self/clear_refs after the inputs are made) minus the RSS before the call. Covers
   NumPy allocations and the C++ scratch alike.
2. RSS growth over repeated calls after a warm-up: NumPy solve / solve_ex / factorize+solve
   and fastkkt.torch forward + backward.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

import numpy as np


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss() -> int:
    """Current resident set size in bytes."""
    return _status_kib("VmRSS") * 1024


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak() -> int:
    return _status_kib("VmHWM") * 1024


def big_solve(B: int, n: int = 8, m: int = 2) -> dict:
    import fastkkt
    from fastkkt.testing import random_qp

    Q, q, A, c = random_qp(B, n, m, seed=0)
    gc.collect()
    before = rss()
    if not reset_peak():
        raise RuntimeError("cannot reset the peak RSS (/proc/self/clear_refs)")
    t0 = time.perf_counter()
    z, lam, info = fastkkt.solve_ex(Q, q, A, c)
    seconds = time.perf_counter() - t0
    extra = peak() - before
    assert not info.any()
    io = sum(x.nbytes for x in (Q, q, A, c, z, lam, info))
    out = sum(x.nbytes for x in (z, lam, info))
    return {
        "B": B,
        "n": n,
        "m": m,
        "io_bytes": io,
        "output_bytes": out,
        "extra_bytes": extra,
        "extra_over_io": extra / io,
        "extra_beyond_outputs": extra - out,
        "seconds": seconds,
    }


def repeated(calls: int, warmup: int) -> dict:
    import fastkkt
    from fastkkt.testing import random_qp

    Q, q, A, c = random_qp(64, 8, 2, seed=1)
    Qs, qs, As, cs = random_qp(8, 6, 2, seed=2, dtype=np.float32)
    As[3, 1] = As[3, 0]  # one singular element: the failure path too

    def numpy_call():
        fastkkt.solve(Q, q, A, c)
        fastkkt.solve_ex(Qs, qs, As, cs)
        fastkkt.factorize(Q, A).solve(q, c, return_multipliers=True)
        try:
            fastkkt.solve(Qs, qs, As, cs)
        except fastkkt.KKTError:
            pass

    results = {}
    cases = {"numpy": numpy_call}
    try:
        import torch

        import fastkkt.torch as fkt

        tQ, tq, tA, tc = (torch.tensor(x) for x in (Q, q, A, c))
        tQ.requires_grad_()
        tq.requires_grad_()
        sQ, sq, sA, sc = (torch.tensor(x) for x in (Qs, qs, As, cs))
        sq.requires_grad_()

        def torch_call():
            z = fkt.solve(tQ, tq, tA, tc)
            z.sum().backward()
            z, _, info = fkt.solve_ex(sQ, sq, sA, sc)
            torch.where(info.unsqueeze(-1) == 0, z, 0).sum().backward()
            with torch.no_grad():
                fkt.solve(tQ, tq, tA, tc)
            tQ.grad = tq.grad = sq.grad = None

        cases["torch"] = torch_call
    except ImportError:
        pass
    for name, call in cases.items():
        for _ in range(warmup):
            call()
        gc.collect()
        r0 = rss()
        t0 = time.perf_counter()
        for _ in range(calls):
            call()
        gc.collect()
        results[name] = {
            "calls": calls,
            "rss_growth_bytes": rss() - r0,
            "seconds": time.perf_counter() - t0,
        }
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=1_000_000)
    p.add_argument("--calls", type=int, default=20_000)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--skip-big", action="store_true")
    p.add_argument("--skip-repeated", action="store_true")
    args = p.parse_args(argv)
    out = {}
    if not args.skip_big:
        out["big"] = big_solve(args.batch)
    if not args.skip_repeated:
        out["repeated"] = repeated(args.calls, args.warmup)
    if args.json:
        print(json.dumps(out))
        return 0
    if "big" in out:
        b = out["big"]
        print(
            f"solve_ex B={b['B']:,} n={b['n']} m={b['m']}: inputs+outputs "
            f"{b['io_bytes'] / 2**20:.1f} MiB, peak extra {b['extra_bytes'] / 2**20:.1f} MiB "
            f"= {b['extra_over_io']:.3f}× I/O ({(b['extra_beyond_outputs']) / 2**20:.1f} MiB "
            f"beyond the outputs), {b['seconds']:.2f} s"
        )
    for name, r in out.get("repeated", {}).items():
        print(
            f"{name}: {r['calls']:,} repeated calls, RSS growth "
            f"{r['rss_growth_bytes'] / 2**20:+.2f} MiB ({r['seconds']:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
