"""Problems per second through fastkkt.dask against the direct NumPy call on the same data.

    python benchmarks/dask_scaling.py [--batch 65536 --chunk 4096 --n 32 --m 8 --repeat 5]

A script rather than a pytest-benchmark suite: each row starts its own scheduler. Rows:

- direct: ``fastkkt.solve_ex`` on the whole in-memory batch, 1 and 2 fastkkt threads;
- dask, local schedulers on the same in-memory arrays cut in chunks: "sync" (the per-chunk
  overhead alone, fastkkt using every core), "threads" with 1 and 2 dask threads × 1 fastkkt
  thread;
- dask.distributed LocalCluster, worker processes × 1 dask thread × k fastkkt threads (set
  before the workers start): 1×1, 2×1 (scaling in processes) and 1×2. The problems are
  generated on the workers and persisted first (seeded per chunk, the same numbers as the
  local batch), so the time is solving, not shipping input from the client.

Every result is asserted bitwise equal to the direct call's. Time: best of `repeat`.
"""

from __future__ import annotations

import argparse
import os
import time

import dask
import dask.array as da
import numpy as np

import fastkkt
import fastkkt.dask as fd
from fastkkt.testing import random_qp


def problems(batch: int, chunk: int, n: int, m: int) -> list[da.Array]:
    """Q, q, A, c as dask arrays, chunk i drawn by random_qp(…, seed=i) where it runs."""
    parts: list[list[da.Array]] = [[], [], [], []]
    for i, start in enumerate(range(0, batch, chunk)):
        b = min(chunk, batch - start)
        d = dask.delayed(random_qp, pure=True, nout=4)(b, n, m, seed=i)
        for k, shape in enumerate([(b, n, n), (b, n), (b, m, n), (b, m)]):
            parts[k].append(da.from_delayed(d[k], shape=shape, dtype=np.float64))
    return [da.concatenate(p) for p in parts]


def best(f, repeat: int, between=None) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
        if between is not None:
            between()
    return min(times)


def _count_tasks(dask_scheduler=None) -> int:
    return len(dask_scheduler.tasks)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=65536)
    p.add_argument("--chunk", type=int, default=4096)
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--m", type=int, default=8)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    B, r = args.batch, args.repeat

    lazy = problems(B, args.chunk, args.n, args.m)
    data = dask.compute(*lazy, scheduler="sync")
    chunked = [da.from_array(x, chunks=(args.chunk, *x.shape[1:])) for x in data]
    want = fastkkt.solve_ex(*data)
    assert not want[2].any()
    rows: list[tuple[str, float]] = []

    def check(got) -> None:
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)

    for k in (1, 2):
        fastkkt.set_num_threads(k)
        rows.append(
            (f"direct fastkkt.solve_ex, {k} thread(s)", best(lambda: fastkkt.solve_ex(*data), r))
        )

    cores = len(os.sched_getaffinity(0))
    fastkkt.set_num_threads(cores)
    check(dask.compute(*fd.solve_ex(*chunked), scheduler="sync"))
    t = best(lambda: dask.compute(*fd.solve_ex(*chunked), scheduler="sync"), r)
    rows.append((f"dask sync scheduler, fastkkt {cores} threads", t))
    fastkkt.set_num_threads(1)
    for w in (1, 2):
        check(dask.compute(*fd.solve_ex(*chunked), scheduler="threads", num_workers=w))
        t = best(
            lambda w=w: dask.compute(*fd.solve_ex(*chunked), scheduler="threads", num_workers=w),
            r,
        )
        rows.append((f"dask threads scheduler, {w} thread(s) × 1 fastkkt thread", t))

    from distributed import Client, LocalCluster, wait

    for workers, k in ((1, 1), (2, 1), (1, 2)):
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
        environ["FASTKKT_NUM_THREADS"] = str(k)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
        with cluster, Client(cluster) as client:
            client.run(lambda: __import__("fastkkt.dask"))
            inputs = client.persist(lazy)
            wait(inputs)
            check(client.gather(client.compute(list(fd.solve_ex(*inputs)))))

            held = client.run_on_scheduler(_count_tasks)

            def run(inputs=inputs, client=client):
                out = client.persist(list(fd.solve_ex(*inputs)))
                wait(out)

            def forget(client=client, held=held):  # the next repeat must not reuse results
                while client.run_on_scheduler(_count_tasks) > held:
                    time.sleep(0.02)

            t = best(run, r, forget)
            rows.append((f"distributed, {workers} process(es) × 1 thread × {k} fastkkt", t))

    load = os.getloadavg()[0]
    print(f"\n{B} problems, n = {args.n}, m = {args.m}, chunks of {args.chunk}; "
          f"{cores} cores, load average {load:.1f}; best of {r}")  # fmt: skip
    print(f"{'':58s} {'time':>9s} {'problems/s':>12s}")
    for name, t in rows:
        print(f"{name:58s} {t * 1e3:7.1f} ms {B / t:12.0f}")


if __name__ == "__main__":
    main()
