"""fastkkt.dask: every result bitwise against the NumPy API on the same (whole) batch, on the
local schedulers and a two-process dask.distributed cluster; the graph's shape (one key per
broadcast operand); eager errors with the NumPy API's messages; a worker killed mid-graph."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# CI sets FASTKKT_REQUIRE_DASK=1 (with fastkkt[dask] installed): there a missing dask,
# distributed or zarr is an error, so these tests cannot silently turn into skips.
if os.environ.get("FASTKKT_REQUIRE_DASK") == "1":
    import dask.array
    import distributed  # noqa: F401
    import zarr  # noqa: F401
da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import fastkkt  # noqa: E402
import fastkkt.dask as fd  # noqa: E402
from fastkkt import reference  # noqa: E402
from fastkkt.testing import assert_allclose_normwise, random_qp  # noqa: E402

N, M = 5, 2
ROOT = Path(__file__).resolve().parent.parent


def _dask(x, chunks):
    """NumPy `x` as given (chunks None) or as a dask array with those chunks."""
    return x if chunks is None else da.from_array(x, chunks=chunks)


def _problem(shapes, seed, dtype=np.float64):
    """(Q, q, A, c) with the given batch shapes, drawn from the shared generator."""
    parts = []
    for k, batch in enumerate(shapes):
        full = random_qp(batch, N, M, seed=seed + k, dtype=dtype)
        parts.append(full[k])
    return parts


def _assert_same(got, want):
    """Bitwise equality, dtype and shape included (NaN where NaN)."""
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# name: (batch shapes of Q, q, A, c; their dask chunks (None: NumPy); expected batch chunks)
CASES = {
    "all dask": (
        [(23,), (23,), (23,), (23,)],
        [(6, N, N), (6, N), (6, M, N), (6, M)],
        ((6, 6, 6, 5),),
    ),
    "shared Q and A in NumPy": (
        [(), (23,), (), (23,)],
        [None, (5, N), None, None],
        ((5, 5, 5, 5, 3),),
    ),
    "2-D broadcast, mixed": (
        [(4, 1), (7,), (), (4, 7)],
        [(3, 1, N, N), (3, N), (M, N), None],
        ((3, 1), (3, 3, 1)),
    ),
    "different chunks: common refinement": (
        [(23,), (23,), (1,), (23,)],
        [(7, N, N), (10, N), (1, M, N), (23, M)],
        ((7, 3, 4, 6, 1, 2),),  # Q's boundaries 7, 14, 21 and q's 10, 20
    ),
    "chunked core dimensions are rechunked": (
        [(9,), (9,), (9,), (9,)],
        [(4, 2, 3), (4, 2), (4, 1, 2), (4, 1)],
        ((4, 4, 1),),
    ),
    "unbatched": ([(), (), (), ()], [(N, N), (N,), (M, N), (M,)], ()),
    "empty batch": (
        [(0,), (), (), ()],
        [(5, N, N), (N,), (M, N), (M,)],
        ((0,),),
    ),
}


def _case(name, dtype=np.float64):
    shapes, chunks, _ = CASES[name]
    arrays = _problem(shapes, seed=len(name), dtype=dtype)
    return arrays, [_dask(x, ch) for x, ch in zip(arrays, chunks)]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_solve_ex_bitwise_as_numpy(name, dtype):
    arrays, args = _case(name, dtype)
    z, lam, info = fd.solve_ex(*args)
    assert isinstance(z, da.Array)
    assert isinstance(lam, da.Array)
    assert isinstance(info, da.Array)
    zn, ln, infon = fastkkt.solve_ex(*arrays)
    # metadata before computing: shapes, dtypes, and chunks following the batch
    assert (z.shape, lam.shape, info.shape) == (zn.shape, ln.shape, infon.shape)
    assert (z.dtype, lam.dtype, info.dtype) == (zn.dtype, ln.dtype, infon.dtype)
    assert info.chunks == CASES[name][2]
    assert z.chunks == (*info.chunks, (N,))
    assert lam.chunks == (*info.chunks, (M,))
    got = dask.compute(z, lam, info, scheduler="threads")
    for g, w in zip(got, (zn, ln, infon)):
        _assert_same(g, w)
    assert not infon.any()
    # and the NumPy answer is right (independent pure-NumPy reference)
    zr, lr = reference.solve(*arrays, return_multipliers=True)
    tol = 1e-10 if dtype == np.float64 else 1e-3
    assert_allclose_normwise(got[0], zr, tol)
    assert_allclose_normwise(got[1], lr, tol)


@pytest.mark.parametrize("name", ["all dask", "2-D broadcast, mixed", "unbatched"])
def test_solve_and_multipliers_bitwise_as_numpy(name):
    arrays, args = _case(name)
    z = fd.solve(*args)
    z2, lam = fd.solve(*args, return_multipliers=True)
    _assert_same(z.compute(), fastkkt.solve(*arrays))
    zn, ln = fastkkt.solve(*arrays, return_multipliers=True)
    zc, lc = dask.compute(z2, lam)
    _assert_same(zc, zn)
    _assert_same(lc, ln)


def test_nothing_computed_at_call_time():
    class Computed(Exception):
        pass

    def boom(block):
        raise Computed

    Q, q, A, c = _problem([(8,), (8,), (8,), (8,)], seed=3)
    qd = da.from_array(q, chunks=(4, N)).map_blocks(boom, dtype=q.dtype)
    outs = [fd.solve(Q, qd, A, c), *fd.solve_ex(Q, qd, A, c)]
    for out in outs:
        with pytest.raises(Computed):
            out.compute(scheduler="sync")


# --------------------------------------------------------------------------------------------
# the graph


def _graph_arrays(x):
    """Every ndarray stored in x's graph (the data the scheduler ships), by key."""
    return {k: v for k, v in dict(x.__dask_graph__()).items() if isinstance(v, np.ndarray)}


def _solve_keys(x):
    return [k for k in dict(x.__dask_graph__()) if isinstance(k, tuple) and "solve" in k[0]]


@pytest.mark.parametrize("shared_as", ["numpy", "dask"])
def test_broadcast_operands_are_one_key_never_expanded(shared_as):
    """One Q and one A for 8 blocks of q and c: Q and A appear once each in the graph, every
    solve task depends on that same key, and the graph holds no more data than the inputs."""
    Q, A = _problem([(), (), (), ()], seed=4)[0::2]
    q, c = _problem([(), (64,), (), (64,)], seed=5)[1::2]
    if shared_as == "dask":
        Qx, Ax = da.from_array(Q[None], chunks=-1), da.from_array(A, chunks=-1)
    else:
        Qx, Ax = Q, A
    z, _lam, _info = fd.solve_ex(Qx, da.from_array(q, chunks=8), Ax, da.from_array(c, chunks=8))
    assert z.numblocks == (8, 1)
    data = _graph_arrays(z)
    q_keys = [k for k, v in data.items() if v.shape[-2:] == (N, N)]
    a_keys = [k for k, v in data.items() if v.shape[-2:] == (M, N)]
    assert len(q_keys) == 1
    assert len(a_keys) == 1
    assert sum(v.nbytes for v in data.values()) == Q.nbytes + A.nbytes + q.nbytes + c.nbytes
    deps = z.__dask_graph__().get_all_dependencies()
    solves = _solve_keys(z)
    assert len(solves) == 8
    for key in solves:
        assert q_keys[0] in deps[key]
        assert a_keys[0] in deps[key]
    _assert_same(z.compute(), fastkkt.solve(Q, q, A, c))


# --------------------------------------------------------------------------------------------
# errors


def _bad_inputs():
    Q, q, A, c = _problem([(6,), (6,), (6,), (6,)], seed=6)
    return {
        "Q not square": (Q[:, :4], q, A, c),
        "Q rank 1": (Q[0, 0], q, A, c),
        "q wrong n": (Q, q[:, :4], A, c),
        "A wrong n": (Q, q, A[..., :4], c),
        "c wrong m": (Q, q, A, c[:, :1]),
        "c a scalar": (Q, q, A, c[0, 0]),
        "batch does not broadcast": (Q, q[:4], A, c),
        "complex": (Q.astype(complex), q, A, c),
        "strings": (Q, q.astype(str), A, c),
    }


@pytest.mark.parametrize("name", list(_bad_inputs()))
@pytest.mark.parametrize("func", ["solve", "solve_ex"])
def test_errors_eager_with_the_numpy_message(name, func):
    """Raised at call time (nothing to compute), with the NumPy API's type and message."""
    args = _bad_inputs()[name]
    with pytest.raises((ValueError, TypeError)) as numpy_error:
        getattr(fastkkt, func)(*args)
    dargs = [da.from_array(x, chunks=2) if x.ndim and x.dtype.kind in "fc" else x for x in args]
    with pytest.raises(numpy_error.type) as dask_error:
        getattr(fd, func)(*dargs)
    assert str(dask_error.value) == str(numpy_error.value)


def test_unknown_chunk_sizes_refused():
    Q, q, A, c = _problem([(6,), (6,), (6,), (6,)], seed=7)
    qd = da.from_array(q, chunks=3)
    qd = qd[qd[:, 0] > -np.inf]  # boolean mask: unknown sizes
    with pytest.raises(ValueError, match=r"q has unknown chunk sizes"):
        fd.solve(Q, qd, A, c)


def test_kkt_error_names_global_indices():
    """Failures in three different blocks of a (3, 8) batch chunked (2, 3): computing raises
    the KKTError fastkkt.solve raises on the whole batch — same message, indices and info."""
    Q, q, A, c = _problem([(3, 8), (3, 8), (3, 8), (3, 8)], seed=8)
    bad = [(0, 1), (1, 4), (2, 7)]
    for i in bad:
        Q[i] = 0.0  # singular KKT matrix
    with pytest.raises(fastkkt.KKTError) as numpy_error:
        fastkkt.solve(Q, q, A, c)
    assert numpy_error.value.indices == bad
    args = [da.from_array(x, chunks=(2, 3) + x.shape[2:]) for x in (Q, q, A, c)]
    for out in (fd.solve(*args), fd.solve(*args, return_multipliers=True)[1]):
        assert out.numblocks[:2] == (2, 3)
        with pytest.raises(fastkkt.KKTError) as dask_error:
            out.compute()
        assert dask_error.value.indices == bad
        assert str(dask_error.value) == str(numpy_error.value)
        np.testing.assert_array_equal(dask_error.value.info, numpy_error.value.info)
    # solve_ex: the status as data, NaN in the failed elements, the rest bitwise
    got = dask.compute(*fd.solve_ex(*args))
    for g, w in zip(got, fastkkt.solve_ex(Q, q, A, c)):
        _assert_same(g, w)
    assert [tuple(i) for i in np.argwhere(got[2])] == bad


def test_nonfinite_input_raises_when_computed_naming_the_global_element():
    Q, q, A, c = _problem([(), (12,), (), (12,)], seed=9)
    q[9, 2] = np.nan
    with pytest.raises(ValueError, match=r"q contains NaN or Inf \(batch element \(9,\)\)"):
        fastkkt.solve(Q, q, A, c)
    z = fd.solve(Q, da.from_array(q, chunks=4), A, c)  # element 9 is element 1 of block 2
    with pytest.raises(ValueError, match=r"q contains NaN or Inf \(batch element \(9,\)\)"):
        z.compute()
    # without the check: solved as given, bitwise the NumPy result (NaN at 9)
    z, _, info = fd.solve_ex(Q, da.from_array(q, chunks=4), A, c, check_finite=False)
    zn, _, infon = fastkkt.solve_ex(Q, q, A, c, check_finite=False)
    _assert_same(z.compute(), zn)
    _assert_same(info.compute(), infon)


# --------------------------------------------------------------------------------------------
# schedulers


@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes"])
def test_local_schedulers_bitwise(scheduler):
    arrays, args = _case("2-D broadcast, mixed")
    kwargs = {"num_workers": 2} if scheduler != "sync" else {}
    got = dask.compute(*fd.solve_ex(*args), scheduler=scheduler, **kwargs)
    for g, w in zip(got, fastkkt.solve_ex(*arrays)):
        _assert_same(g, w)


def _env_importing_this_fastkkt() -> dict[str, str]:
    """The environment for a child Python that imports the fastkkt under test: the installed
    one, or an in-place build (scripts/dev_build.sh) found through PYTHONPATH."""
    return dict(os.environ, PYTHONPATH=str(Path(fastkkt.__file__).resolve().parents[1]))


def test_import_fastkkt_does_not_import_dask():
    code = "import sys, fastkkt; assert 'dask' not in sys.modules, sorted(sys.modules)"
    env = _env_importing_this_fastkkt()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


# --------------------------------------------------------------------------------------------
# dask.distributed: two worker processes


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes × 1 dask thread, each running fastkkt with
    cores // (workers × threads) threads (the rule of the README's "Beyond one machine"), set
    before the worker processes start (pre-spawn-environ: Nanny(env=...) comes after the
    imports)."""
    distributed = pytest.importorskip("distributed")
    psutil = pytest.importorskip("psutil")
    workers, threads = 2, 1
    k = str(max(1, _cores() // (workers * threads)))
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    environ.update(FASTKKT_NUM_THREADS=k, OMP_NUM_THREADS="1")
    saved = dict(os.environ)  # the Nanny writes pre-spawn-environ into this process's environ
    config = {
        "distributed.nanny.pre-spawn-environ": environ,
        # a busy CI machine can take longer than the default 30 s to connect a new worker
        "distributed.comm.timeouts.connect": "180s",
        "distributed.comm.timeouts.tcp": "180s",
    }
    with dask.config.set(config):
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=None,
        )
        c = distributed.Client(cluster)
        pids: set[int] = set()
        c.fastkkt_pids = pids  # every worker process seen, for the leak check
        try:
            assert set(c.run(fastkkt.get_num_threads).values()) == {int(k)}
            pids.update(c.run(os.getpid).values())
            yield c
        finally:
            pids.update(c.run(os.getpid).values())
            c.close()
            cluster.close()
            os.environ.clear()
            os.environ.update(saved)
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert not alive, f"worker processes left running: {alive}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["all dask", "2-D broadcast, mixed", "shared Q and A in NumPy"])
def test_distributed_bitwise(client, name):
    arrays, args = _case(name)
    futures = client.compute(list(fd.solve_ex(*args)))
    for g, w in zip(client.gather(futures), fastkkt.solve_ex(*arrays)):
        _assert_same(g, w)
    _assert_same(client.compute(fd.solve(*args)).result(timeout=60), fastkkt.solve(*arrays))


@pytest.mark.slow
def test_distributed_kkt_error_global_indices(client):
    Q, q, A, c = _problem([(), (40,), (), (40,)], seed=10)
    q2 = np.broadcast_to(Q, (40, N, N)).copy()
    q2[[3, 37]] = 0.0
    with pytest.raises(fastkkt.KKTError) as numpy_error:
        fastkkt.solve(q2, q, A, c)
    z = fd.solve(da.from_array(q2, chunks=(10, N, N)), da.from_array(q, chunks=10), A, c)
    with pytest.raises(fastkkt.KKTError) as dask_error:
        client.compute(z).result(timeout=60)
    assert dask_error.value.indices == [(3,), (37,)]
    assert str(dask_error.value) == str(numpy_error.value)


@pytest.mark.slow
def test_distributed_worker_killed_mid_graph_is_retried(client, tmp_path):
    """The task reading block 5 of q kills its worker process the first time it runs, while
    the other blocks are being solved: dask reschedules what that worker held or ran, the
    nanny restarts it, and the result is complete and bitwise the single-machine one."""
    psutil = pytest.importorskip("psutil")
    sentinel = str(tmp_path / "killed")
    Q, q, A, c = _problem([(), (80,), (), (80,)], seed=11)

    def die_once(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 5 and not os.path.exists(sentinel):
            with open(sentinel, "w") as f:
                f.write(str(os.getpid()))
            os._exit(1)  # the whole worker process, mid-graph
        return block

    qd = da.from_array(q, chunks=(10, N)).map_blocks(die_once, dtype=q.dtype)
    z, lam, info = fd.solve_ex(Q, qd, A, da.from_array(c, chunks=(10, M)))
    got = client.gather(client.compute([z, lam, info]))
    killed = int(Path(sentinel).read_text())
    assert killed in client.fastkkt_pids
    assert not psutil.pid_exists(killed) or psutil.Process(killed).status() == "zombie"
    for g, w in zip(got, fastkkt.solve_ex(Q, q, A, c)):
        _assert_same(g, w)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it
    client.fastkkt_pids.update(client.run(os.getpid).values())


# --------------------------------------------------------------------------------------------
# examples/dask_out_of_core.py


def _number(label: str, text: str) -> float:
    import re

    match = re.search(rf"{label}\s*=\s*(-?\d+(?:\.\d+)?(?:e[-+]\d+)?)", text)
    assert match, f"{label!r} not found in output:\n{text}"
    return float(match.group(1))


@pytest.mark.slow
def test_out_of_core_example(tmp_path):
    """80 MiB of problems through a 40 MiB budget (2.5 MiB chunks): the script checks a sample
    against fastkkt.reference and its own memory; the numbers it prints are checked here."""
    pytest.importorskip("zarr")
    env = _env_importing_this_fastkkt()
    settings = "--budget-mb 40 --input-factor 2 --n 16 --m 4 --sample 100".split()
    script = str(ROOT / "examples" / "dask_out_of_core.py")
    proc = subprocess.run(
        [sys.executable, "-W", "error", script, *settings, "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "100% Completed" in out  # the progress bar ran to the end
    assert _number("max relative error", out) < 1e-10
    growth, size = _number("growth", out), _number("for input", out)
    assert size > 75
    assert growth < 40
    assert growth < size / 2
    assert list(tmp_path.iterdir()) == []  # the stores were removed


# --------------------------------------------------------------------------------------------
# inequality-constrained QPs: fd.solve_qp / solve_qp_ex against fastkkt.solve_qp(_ex)

P = 3


def _qp(batch, seed, dtype=np.float64, shared_G=False):
    """A feasible QP per element: z0 in the box [-1, 1], A z0 = c, G z0 < h (one G for every
    element with `shared_G`)."""
    Q, q, A, _ = random_qp(batch, N, M, seed=seed)
    rng = np.random.default_rng([seed, 7])
    shape = Q.shape[:-2]
    z0 = rng.uniform(-0.5, 0.5, (*shape, N))
    G = rng.standard_normal((*shape, P, N))
    if shared_G:
        G = np.broadcast_to(G[(0,) * len(shape)], G.shape)
    h = np.einsum("...ij,...j->...i", G, z0) + rng.uniform(0.1, 1.0, (*shape, P))
    c = np.einsum("...ij,...j->...i", A, z0)
    lb = np.full((*shape, N), -1.0)
    ub = rng.uniform(0.6, 2.0, (*shape, N))
    return {k: v.astype(dtype) for k, v in dict(Q=Q, q=q, A=A, c=c, G=G, h=h, lb=lb, ub=ub).items()}


QP_LAYOUTS = {
    "all keywords, all dask": (dict.fromkeys("QqAcGhlu", True), {}),
    "shared Q and G in NumPy, scalar bounds": (
        {"Q": "shared", "G": "shared", "q": True, "A": True, "c": True, "h": True},
        {"lb": -1.0, "ub": 1.0},
    ),
    "equalities only": ({"Q": True, "q": True, "A": True, "c": True}, {}),
    "bounds only": ({"Q": "shared", "q": True, "l": True, "u": True}, {}),
}
_KEY = {"l": "lb", "u": "ub"}


def _qp_case(name, dtype=np.float64, batch=(10,), chunk=4):
    """(NumPy kwargs, dask kwargs) for fastkkt.solve_qp_ex(**kwargs)."""
    layout, scalars = QP_LAYOUTS[name]
    full = _qp(batch, seed=len(name), dtype=dtype, shared_G=layout.get("G") == "shared")
    np_kw, dk_kw = {}, {}
    for short, how in layout.items():
        k = _KEY.get(short, short)
        x = full[k][(0,) * len(batch)] if how == "shared" else full[k]
        np_kw[k] = x
        dk_kw[k] = x if how == "shared" else da.from_array(x, chunks=(chunk, *x.shape[1:]))
    np_kw.update(scalars)
    dk_kw.update(scalars)
    return np_kw, dk_kw


def _split(kw):
    kw = dict(kw)
    return kw.pop("Q"), kw.pop("q"), kw


needs_qp = pytest.mark.skipif(
    not hasattr(fastkkt, "solve_qp"), reason="fastkkt.solve_qp is not merged in this checkout"
)


@needs_qp
@pytest.mark.parametrize("name", list(QP_LAYOUTS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_qp_ex_bitwise_as_numpy(name, dtype):
    np_kw, dk_kw = _qp_case(name, dtype)
    Q, q, kw = _split(dk_kw)
    sol = fd.solve_qp_ex(Q, q, **kw)
    assert isinstance(sol, fastkkt.QPSolution)
    Qn, qn, kwn = _split(np_kw)
    want = fastkkt.solve_qp_ex(Qn, qn, **kwn)
    for field in want._fields:
        x = getattr(sol, field)
        assert isinstance(x, da.Array)
        assert x.chunks[0] == (4, 4, 2)
        assert (x.shape, x.dtype) == (getattr(want, field).shape, getattr(want, field).dtype)
    for g, w in zip(dask.compute(*sol), want):
        _assert_same(g, w)


@needs_qp
def test_qp_raise_and_multipliers_bitwise_as_numpy():
    np_kw, dk_kw = _qp_case("all keywords, all dask")
    Qn, qn, kwn = _split(np_kw)
    Q, q, kw = _split(dk_kw)
    assert not fastkkt.solve_qp_ex(Qn, qn, **kwn).info.any()  # feasible, strictly convex
    _assert_same(fd.solve_qp(Q, q, **kw).compute(), fastkkt.solve_qp(Qn, qn, **kwn))
    got = dask.compute(*fd.solve_qp(Q, q, return_multipliers=True, **kw))
    for g, w in zip(got, fastkkt.solve_qp(Qn, qn, return_multipliers=True, **kwn)):
        _assert_same(g, w)


@needs_qp
def test_qp_error_names_global_indices():
    """Elements 1, 6 and 9 (three blocks of 4) made infeasible by lb > ub: QPError with the
    NumPy message, global indices and the whole status array."""
    np_kw, dk_kw = _qp_case("all keywords, all dask")
    bad = [1, 6, 9]
    np_kw["lb"] = np_kw["lb"].copy()
    np_kw["lb"][bad, 0] = np_kw["ub"][bad, 0] + 1.0
    dk_kw["lb"] = da.from_array(np_kw["lb"], chunks=(4, N))
    Qn, qn, kwn = _split(np_kw)
    Q, q, kw = _split(dk_kw)
    with pytest.raises(fastkkt.QPError) as numpy_error:
        fastkkt.solve_qp(Qn, qn, **kwn)
    with pytest.raises(fastkkt.QPError) as dask_error:
        fd.solve_qp(Q, q, **kw).compute()
    assert {i for (i,) in dask_error.value.indices} >= set(bad)
    assert dask_error.value.indices == numpy_error.value.indices
    assert str(dask_error.value) == str(numpy_error.value)
    np.testing.assert_array_equal(dask_error.value.info, numpy_error.value.info)
    info = fd.solve_qp_ex(Q, q, **kw).info.compute()
    _assert_same(info, numpy_error.value.info)


def _qp_bad_inputs():
    kw = _qp(6, seed=12)
    Q, q = kw.pop("Q"), kw.pop("q")
    drop = lambda *names: {k: v for k, v in kw.items() if k not in names}  # noqa: E731
    return {
        "A without c": (Q, q, drop("c")),
        "h without G": (Q, q, drop("G")),
        "Q not square": (Q[:, :4], q, kw),
        "A wrong n": (Q, q, {**kw, "A": kw["A"][..., :4]}),
        "h wrong p": (Q, q, {**kw, "h": kw["h"][:, :2]}),
        "lb wrong n": (Q, q, {**kw, "lb": kw["lb"][:, :3]}),
        "batch does not broadcast": (Q, q[:4], kw),
        "complex G": (Q, q, {**kw, "G": kw["G"].astype(complex)}),
        "tol out of range": (Q, q, {**kw, "tol": 2.0}),
        "max_iter not an int": (Q, q, {**kw, "max_iter": 1.5}),
    }


@needs_qp
@pytest.mark.parametrize("name", list(_qp_bad_inputs()))
@pytest.mark.parametrize("func", ["solve_qp", "solve_qp_ex"])
def test_qp_errors_eager_with_the_numpy_message(name, func):
    Q, q, kw = _qp_bad_inputs()[name]
    with pytest.raises((ValueError, TypeError)) as numpy_error:
        getattr(fastkkt, func)(Q, q, **kw)

    def lazy(x):
        return da.from_array(x, chunks=2) if isinstance(x, np.ndarray) and x.ndim else x

    with pytest.raises(numpy_error.type) as dask_error:
        getattr(fd, func)(lazy(Q), lazy(q), **{k: lazy(v) for k, v in kw.items()})
    assert str(dask_error.value) == str(numpy_error.value)


@needs_qp
@pytest.mark.slow
def test_distributed_qp_bitwise(client):
    np_kw, dk_kw = _qp_case("shared Q and G in NumPy, scalar bounds", batch=(24,), chunk=6)
    Qn, qn, kwn = _split(np_kw)
    Q, q, kw = _split(dk_kw)
    got = client.gather(client.compute(list(fd.solve_qp_ex(Q, q, **kw))))
    for g, w in zip(got, fastkkt.solve_qp_ex(Qn, qn, **kwn)):
        _assert_same(g, w)
