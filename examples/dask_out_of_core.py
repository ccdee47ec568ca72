"""Solve a batch of KKT problems larger than memory: zarr in, fastkkt.dask, zarr out.

    python examples/dask_out_of_core.py                      # 1 GiB of problems, 256 MiB budget
    python examples/dask_out_of_core.py --budget-mb 16 --input-factor 4 --n 16 --m 4

1. writes `input-factor` × `budget-mb` of problems (Q, q, A, c from fastkkt.testing.random_qp,
   a chunk at a time) to a zarr store;
2. solves them with ``fastkkt.dask.solve_ex`` straight into another zarr store (z, lam, info)
   under a progress bar: dask reads a few chunks, solves each with one call of fastkkt.solve_ex
   and writes it out, so memory holds a few chunks, never the batch;
3. checks a random sample of the stored solutions against the pure-NumPy fastkkt.reference;
4. prints the peak resident memory while solving (sampled every 5 ms) against the input size,
   and exits with status 1 if it went over the budget.

Threads: `--workers` dask threads each run fastkkt with cores // workers threads, so that the
two levels together use the cores once (README.md, "Beyond one machine").
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import zarr
from dask.diagnostics import ProgressBar

import fastkkt
import fastkkt.dask as fd
from fastkkt import reference
from fastkkt.testing import random_qp

MiB = 1 << 20


class PeakRSS:
    """The peak resident set size of this process while the `with` block runs, sampled."""

    def __init__(self, every: float = 0.005) -> None:
        self.every, self.peak = every, 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * self._page
        except OSError:  # not Linux: the lifetime peak, an upper bound
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def write_problems(path: Path, batch: int, chunk: int, n: int, m: int) -> None:
    """Q, q, A, c for `batch` problems in zarr arrays chunked `chunk` problems along the batch,
    generated and written one chunk at a time (chunk i drawn with seed i)."""
    group = zarr.open_group(path, mode="w")
    shapes = {"Q": (n, n), "q": (n,), "A": (m, n), "c": (m,)}
    arrays = {
        k: group.create_array(
            k, shape=(batch, *s), chunks=(chunk, *s), dtype="f8", compressors=None
        )
        for k, s in shapes.items()
    }
    for i, start in enumerate(range(0, batch, chunk)):
        stop = min(start + chunk, batch)
        for k, x in zip("QqAc", random_qp(stop - start, n, m, seed=i)):
            arrays[k][start:stop] = x


def solve_store(src: Path, dst: Path) -> None:
    """z, lam, info of every problem in `src`, written to `dst` chunk by chunk."""
    Q, q, A, c = (da.from_zarr(str(src), component=k) for k in "QqAc")
    z, lam, info = fd.solve_ex(Q, q, A, c)
    group = zarr.open_group(dst, mode="w")
    targets = [
        group.create_array(k, shape=x.shape, chunks=x.chunksize, dtype=x.dtype, compressors=None)
        for k, x in (("z", z), ("lam", lam), ("info", info))
    ]
    with ProgressBar(dt=0.5):
        da.store([z, lam, info], targets, lock=False)


def check_sample(src: Path, dst: Path, size: int, seed: int = 0) -> float:
    """The largest normwise relative error of a random sample of stored solutions against
    fastkkt.reference, solved here from the stored problems."""
    inp, out = zarr.open_group(src, mode="r"), zarr.open_group(dst, mode="r")
    batch = inp["q"].shape[0]
    idx = np.sort(np.random.default_rng(seed).choice(batch, size=min(size, batch), replace=False))
    Q, q, A, c = (inp[k].get_orthogonal_selection((idx,)) for k in "QqAc")
    z, lam = (out[k].get_orthogonal_selection((idx,)) for k in ("z", "lam"))
    if np.any(out["info"][:]):
        raise SystemExit("some problems were not solved")
    zr, lr = reference.solve(Q, q, A, c, return_multipliers=True)
    err = 0.0
    for got, want in ((z, zr), (lam, lr)):
        norm = np.linalg.norm(want, axis=-1)
        err = max(err, float(np.max(np.linalg.norm(got - want, axis=-1) / np.maximum(norm, 1))))
    return err


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget-mb", type=float, default=256, help="memory budget (MiB)")
    p.add_argument("--input-factor", type=float, default=4, help="input size / budget")
    p.add_argument("--chunks-in-budget", type=int, default=16, help="budget / chunk size")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--m", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="dask threads")
    p.add_argument("--sample", type=int, default=200, help="problems checked against reference")
    p.add_argument("--dir", type=Path, default=None, help="where the stores go (default: temp)")
    p.add_argument("--keep", action="store_true", help="keep the zarr stores")
    args = p.parse_args()

    n, m = args.n, args.m
    per_problem = 8 * (n * n + n + m * n + m)
    budget = int(args.budget_mb * MiB)
    batch = max(1, int(args.input_factor * budget) // per_problem)
    chunk = max(1, budget // args.chunks_in_budget // per_problem)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    fastkkt.set_num_threads(max(1, (cores or 1) // args.workers))
    dask.config.set(scheduler="threads", num_workers=args.workers)

    root = Path(tempfile.mkdtemp(prefix="fastkkt-ooc-", dir=args.dir))
    src, dst = root / "problems.zarr", root / "solutions.zarr"
    try:
        t0 = time.perf_counter()
        write_problems(src, batch, chunk, n, m)
        t1 = time.perf_counter()
        print(
            f"wrote {batch} problems (n = {n}, m = {m}) in {math.ceil(batch / chunk)} chunks of "
            f"{chunk}: input {batch * per_problem / MiB:.1f} MiB, chunk "
            f"{chunk * per_problem / MiB:.2f} MiB, budget {budget / MiB:.1f} MiB "
            f"({t1 - t0:.1f} s)"
        )
        with PeakRSS() as rss:
            t1 = time.perf_counter()
            solve_store(src, dst)
            t2 = time.perf_counter()
        growth = rss.peak - rss.start
        print(f"solved in {t2 - t1:.2f} s: {batch / (t2 - t1):.0f} problems/s")
        print(
            f"peak RSS while solving = {rss.peak / MiB:.1f} MiB "
            f"(start {rss.start / MiB:.1f} MiB, growth = {growth / MiB:.1f} MiB) "
            f"for input = {batch * per_problem / MiB:.1f} MiB"
        )
        err = check_sample(src, dst, args.sample)
        print(f"sampled problems checked against fastkkt.reference: max relative error = {err:.2e}")
        if err > 1e-8:
            raise SystemExit("solutions differ from the reference")
        if growth > budget:
            raise SystemExit(f"memory grew by {growth / MiB:.1f} MiB, over the budget")
    finally:
        if args.keep:
            print(f"stores kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
