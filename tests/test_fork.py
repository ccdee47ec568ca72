"""fork() after OpenMP threads ran in the parent — fastkkt's own, or torch's (the same libgomp)
— gives children that work: they solve on one thread instead of waiting forever for libgomp's
pool threads, which fork() did not copy. Every scenario runs in a subprocess with a timeout, so a
regression fails instead of hanging the test run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")

_PRELUDE = textwrap.dedent(
    """
    import os, sys, numpy as np, fastkkt
    from fastkkt import reference
    from fastkkt.testing import random_qp
    fastkkt.set_num_threads(2)
    P = random_qp(3000, 16, 4, seed=0)       # enough work for two threads
    big = random_qp(1, 260, 60, seed=1)      # the tiled factorization's parallel region
    z_parent = fastkkt.solve(*P)             # the parent's pool threads now exist
    zb_parent = fastkkt.solve(*big)

    def work(_):
        z = fastkkt.solve(*P)
        zb = fastkkt.solve(*big)
        F = fastkkt.factorize(P[0], P[2])
        return (np.array_equal(z, z_parent) and np.array_equal(zb, zb_parent)
                and np.array_equal(F.solve(P[1], P[3]), z_parent), fastkkt.get_num_threads())
    """
)


def _run(body: str, timeout: float = 90) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "FASTKKT_NUM_THREADS": "2"}
    try:
        out = subprocess.run(
            [sys.executable, "-c", _PRELUDE + textwrap.dedent(body)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"a forked child hung (killed after {timeout} s): {exc.stdout!r}")
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_os_fork_child_solves():
    out = _run(
        """
        pid = os.fork()
        if pid == 0:
            ok, k = work(0)
            os._exit(0 if ok and k == 1 else 1)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        # the parent keeps its threads
        print("parent", np.array_equal(fastkkt.solve(*P), z_parent), fastkkt.get_num_threads())
        """
    )
    assert "child 0" in out
    assert "parent True 2" in out


def test_multiprocessing_fork_pool_and_process_pool_executor():
    out = _run(
        """
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        ctx = mp.get_context("fork")
        with ctx.Pool(2) as pool:
            print("pool", pool.map(work, range(4)))
        with ProcessPoolExecutor(2, mp_context=ctx) as ex:
            print("executor", list(ex.map(work, range(4))))
        """
    )
    assert out.count("(True, 1)") == 8, out


def test_fork_after_torch_parallel_op():
    pytest.importorskip("torch")
    out = _run(
        """
        import torch
        torch.set_num_threads(2)
        x = torch.randn(512, 512)
        for _ in range(3):
            (x @ x).sum()
            torch.exp(torch.randn(4_000_000)).sum()  # an OpenMP-parallel elementwise op
        import multiprocessing as mp
        with mp.get_context("fork").Pool(2) as pool:
            print("pool", pool.map(work, range(2)))
        """
    )
    assert out.count("(True, 1)") == 2, out


def test_torch_dataloader_fork_workers():
    pytest.importorskip("torch")
    out = _run(
        """
        import torch
        from torch.utils.data import DataLoader, Dataset

        class Solves(Dataset):
            def __len__(self):
                return 4
            def __getitem__(self, i):
                ok, k = work(i)
                return torch.tensor([float(ok), float(k)])

        loader = DataLoader(Solves(), batch_size=None, num_workers=2,
                            multiprocessing_context="fork")
        print("loader", [tuple(int(v) for v in t) for t in loader])
        """
    )
    assert out.count("(1, 1)") == 4, out


def test_fork_child_solves_qps():
    """solve_qp in a forked child after the parent ran it on two threads (same pool rule)."""
    out = _run(
        """
        from fastkkt.testing import qp_case
        C = qp_case("mpc")
        kw = dict(A=C["A"], c=C["c"], lb=C["lb"], ub=C["ub"])
        z_qp = fastkkt.solve_qp(C["Q"], C["q"], **kw)  # the parent's pool threads now exist
        pid = os.fork()
        if pid == 0:
            same = np.array_equal(fastkkt.solve_qp(C["Q"], C["q"], **kw), z_qp)
            os._exit(0 if same else 1)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        """
    )
    assert "child 0" in out
