"""A recorded corpus of KKT and QP batches, to prove that a change of the C++ core leaves every
bit alone.

    python scripts/kkt_corpus.py record DIR    # run the corpus, save every output under DIR
    python scripts/kkt_corpus.py compare DIR   # run it again, compare raw bytes with DIR
    python scripts/kkt_corpus.py bench         # median ms of BENCH.md's forward / backward suite

Every batch goes through fastkkt.solve_ex, fastkkt.factorize(...).solve_ex and
fastkkt.torch.solve_ex with the gradients of ⟨w_z, z⟩ + ⟨w_λ, λ⟩ with respect to Q, q, A, c;
z, λ, info and the gradients are saved. The batches cover every kernel (small batches in the
interleaved layout, single problems in the natural order, the tiled factorization up to
n + m = 400, a Q and A shared by the batch), both dtypes, and plain, pivoted, refined, failing
(singular, not a minimum, non-finite) and broadcast problems, alone and mixed in one batch.
The QP batches (qp_cases) go through fastkkt.solve_qp_ex and fastkkt.torch.solve_qp_ex with the
gradients of ⟨w, z⟩ with respect to every input.
`compare` compares raw bytes (so NaN payloads and signed zeros count) and, for any difference,
says whether it is one of NaN payload only. Run it against the in-place build
(PYTHONPATH=python).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def _spd(rng, B, n, shift=0.1):
    M = rng.standard_normal((B, n, n))
    Q = M @ np.swapaxes(M, -1, -2) / n + shift * np.eye(n)
    return (Q + np.swapaxes(Q, -1, -2)) / 2


def _problem(rng, kind, B, n, m):
    """Q (B,n,n), A (B,m,n) of one kind."""
    A = rng.standard_normal((B, m, n))
    if kind == "plain":
        Q = _spd(rng, B, n)
    elif kind == "nonsym":  # only sym(Q) matters; exercises ½Qᵢⱼ + ½Qⱼᵢ
        Q = _spd(rng, B, n) + 0.3 * rng.standard_normal((B, n, n))
        Q = Q + n * np.eye(n)
    elif kind == "pivoted":  # Q indefinite, positive definite on the null space of A
        k = max(1, min(m, n // 3))
        Q = np.empty((B, n, n))
        for b in range(B):
            U, _ = np.linalg.qr(rng.standard_normal((n, n)))
            lam = np.abs(rng.standard_normal(n)) + 0.5
            lam[:k] = -lam[:k]
            Q[b] = (U * lam) @ U.T
            A[b, :k] = U[:, :k].T + 0.01 * rng.standard_normal((k, n))
    elif kind == "notmin":  # Q negative definite: not a strict minimum
        Q = -_spd(rng, B, n)
    elif kind == "refined":  # ill-conditioned Q: refinement
        Q = np.empty((B, n, n))
        for b in range(B):
            U, _ = np.linalg.qr(rng.standard_normal((n, n)))
            lam = np.logspace(0, -9, n)
            Q[b] = (U * lam) @ U.T
        Q = (Q + np.swapaxes(Q, -1, -2)) / 2
    elif kind == "illcond":  # Q with condition 1e5: natural order, refined
        Q = np.empty((B, n, n))
        for b in range(B):
            U, _ = np.linalg.qr(rng.standard_normal((n, n)))
            Q[b] = (U * np.logspace(0, -5, n)) @ U.T
        Q = (Q + np.swapaxes(Q, -1, -2)) / 2
    elif kind == "nearlydep":  # nearly dependent rows of A: cancellation, refinement
        Q = _spd(rng, B, n)
        if m >= 2:
            A[:, 1] = A[:, 0] + 1e-7 * rng.standard_normal((B, n))
    elif kind == "singular":  # two equal rows of A
        Q = _spd(rng, B, n)
        if m >= 2:
            A[:, 1] = A[:, 0]
    elif kind == "zero":
        Q = np.zeros((B, n, n))
        A = np.zeros((B, m, n))
    elif kind == "nan":  # non-finite input, unchecked
        Q = _spd(rng, B, n)
        Q[:, 0, min(1, n - 1)] = np.nan
    elif kind == "inf":
        Q = _spd(rng, B, n)
        A[:, 0, 0] = np.inf
    elif kind == "huge":  # overflows float32
        Q = _spd(rng, B, n) * 1e-30
        A = A * 1e-30
    else:
        raise ValueError(kind)
    return Q, A


def _mixed(rng, kinds, B, n, m):
    parts = [_problem(rng, kinds[b % len(kinds)], 1, n, m) for b in range(B)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def cases():
    """(name, Q, q, A, c) with float64 arrays; each runs in both dtypes."""
    rng = np.random.default_rng(20261129)
    out = []

    def add(name, Q, A, qshape=None, cshape=None):
        batch = np.broadcast_shapes(Q.shape[:-2], A.shape[:-2])
        n, m = Q.shape[-1], A.shape[-2]
        q = rng.standard_normal((qshape if qshape is not None else batch) + (n,))
        c = rng.standard_normal((cshape if cshape is not None else batch) + (m,))
        out.append((name, Q, q, A, c))

    # interleaved: small batches, Q and A varying
    for kind in ["plain", "nonsym", "pivoted", "notmin", "refined", "nearlydep", "singular"]:
        for B, n, m in [(13, 6, 2), (9, 40, 10)]:
            add(f"lanes-{kind}-{B}x{n}x{m}", *_problem(rng, kind, B, n, m))
    for B, n, m in [(37, 16, 4), (11, 120, 40), (3, 5, 0), (5, 3, 4)]:
        add(f"lanes-plain-{B}x{n}x{m}", *_problem(rng, "plain", B, n, m))
    mix = ["plain", "pivoted", "refined", "singular", "notmin", "plain", "nearlydep", "zero"]
    for B, n, m in [(21, 12, 3), (10, 60, 20)]:
        add(f"lanes-mixed-{B}x{n}x{m}", *_mixed(rng, mix, B, n, m))
    add("lanes-mixed-nonfinite", *_mixed(rng, ["plain", "nan", "inf", "huge", "plain"], 11, 8, 3))
    # natural order, one problem
    for kind in ["plain", "pivoted", "refined", "illcond", "nearlydep", "singular", "notmin", "nan",
                 "huge"]:  # fmt: skip
        add(f"one-{kind}-1x30x8", *_problem(rng, kind, 1, 30, 8))
    add("one-plain-1x100x50", *_problem(rng, "plain", 1, 100, 50))
    add("one-plain-unbatched", *(x[0] for x in _problem(rng, "plain", 1, 9, 3)))
    # tiled: n + m ≥ 176 up to 400
    for kind in ["plain", "pivoted", "refined", "illcond", "nearlydep", "notmin"]:
        add(f"tiled-{kind}-2x150x40", *_problem(rng, kind, 2, 150, 40))
    add("tiled-plain-2x300x100", *_problem(rng, "plain", 2, 300, 100))
    add("tiled-mixed-3x181x19", *_mixed(rng, ["plain", "pivoted", "singular"], 3, 181, 19))
    add("tiled-one-1x200x30", *_problem(rng, "plain", 1, 200, 30))
    # shared Q and A (broadcast), batched right-hand sides
    for kind in ["plain", "pivoted", "refined", "illcond", "nearlydep", "singular"]:
        Q, A = _problem(rng, kind, 1, 20, 6)
        add(f"shared-{kind}-20x6", Q[0], A[0], qshape=(45,), cshape=(45,))
    Q, A = _problem(rng, "plain", 1, 150, 30)
    add("shared-plain-150x30", Q[0], A[0], qshape=(9,), cshape=(9,))
    Q, A = _problem(rng, "plain", 1, 190, 10)
    add("shared-tiled-190x10", Q[0], A[0], qshape=(3,), cshape=(3,))
    # partial broadcast
    Q, A = _problem(rng, "plain", 4, 10, 3)
    add("bcast-Qbatched-Ashared", Q[:, None], A[:1, None].repeat(1, 0)[0], qshape=(4, 3))
    add("bcast-Qshared-Abatched", Q[:1], np.stack([A] * 2, 1), qshape=(4, 2), cshape=(1, 2))
    add("bcast-strided", Q[::2], A[1::2], qshape=(2,), cshape=(1,))
    Q, A = _problem(rng, "pivoted", 6, 14, 5)
    add("bcast-pivoted-qshared", Q, A, qshape=(), cshape=(6,))
    # transposed (non-contiguous) views
    Q, A = _problem(rng, "nonsym", 7, 11, 4)
    add("noncontig-lanes", np.swapaxes(Q, -1, -2), A[..., ::-1], qshape=(7,))
    Q, A = _problem(rng, "plain", 2, 170, 20)
    add("noncontig-tiled", np.swapaxes(Q, -1, -2), A, qshape=(2,))
    return out


def run_case(Q, q, A, c, dt):
    import torch

    import fastkkt
    import fastkkt.torch as ft

    Q, q, A, c = (x.astype(dt) if x.dtype != dt else x for x in (Q, q, A, c))
    finite = all(np.isfinite(x).all() for x in (Q, q, A, c))
    res = {}
    z, lam, info = fastkkt.solve_ex(Q, q, A, c, check_finite=finite)
    res.update(z=z, lam=lam, info=info)
    F = fastkkt.factorize(Q, A, check_finite=finite)
    res["finfo"] = F.info
    z, lam, info = F.solve_ex(q, c, check_finite=finite)
    res.update(fz=z, flam=lam, finfo2=info)
    ts = [torch.tensor(np.array(x), requires_grad=True) for x in (Q, q, A, c)]
    z, lam, info = ft.solve_ex(*ts, check_finite=finite)
    g = np.random.default_rng(7)
    wz = torch.tensor(g.standard_normal(z.shape).astype(dt))
    wl = torch.tensor(g.standard_normal(lam.shape).astype(dt))
    grads = torch.autograd.grad((z, lam), ts, (wz, wl), allow_unused=True)
    res.update(tz=z.detach().numpy(), tlam=lam.detach().numpy(), tinfo=info.numpy())
    for name, gr in zip(["gQ", "gq", "gA", "gc"], grads):
        res[name] = np.zeros(0) if gr is None else gr.numpy()
    return res


_QP_KEYS = ("Q", "q", "A", "c", "G", "h", "lb", "ub")


def qp_cases():
    """(name, dict of Q, q, A, c, G, h, lb, ub) for solve_qp: BENCH_QP.md's batched cases (mpc
    cut to 512 elements) and the test generators' constraint mixes, LPs, fixed variables, ±inf
    bounds, weakly active rows, infeasible and unbounded elements."""
    import fastkkt.testing as tg

    for name in ("tiny", "scqpth_small", "mpc", "mixed"):
        P = tg.qp_case(name)
        if name == "mpc":
            P = {k: None if v is None else v[:512] for k, v in P.items()}
        yield f"qp-{name}", P
    mixes = [("eq-ineq-box", dict(m=2, p=6, bounds="box")), ("lp", dict(p=8, rank_Q=0)),
             ("inf-bounds", dict(m=1, p=5, bounds="inf")), ("fixed", dict(p=4, fixed=2)),
             ("weak", dict(p=6, weak=2)), ("rank-A", dict(m=3, p=3, rank_A=2))]  # fmt: skip
    for k, (name, kw) in enumerate(mixes):
        yield f"qp-{name}", tg.feasible_qp(64, 9, seed=k, **kw)
    yield "qp-schur", tg.feasible_qp(16, 64, 0, 16, bounds="none", seed=9)  # qp_schur.hpp's shapes
    yield "qp-infeasible", tg.infeasible_qp(16, 6, seed=1)
    yield "qp-unbounded", tg.unbounded_qp(16, 6, p=3, seed=2)


def run_qp_case(P, dt):
    import torch

    import fastkkt
    import fastkkt.torch as ft

    args = {k: None if P.get(k) is None else np.asarray(P[k], dt) for k in _QP_KEYS}
    Q, q = args.pop("Q"), args.pop("q")
    res = dict(
        zip(("z", "lam", "mu", "nu", "info", "iterations"), fastkkt.solve_qp_ex(Q, q, **args))
    )
    ts = {k: None if v is None else torch.tensor(v, requires_grad=True) for k, v in args.items()}
    tQ, tq = (torch.tensor(x, requires_grad=True) for x in (Q, q))
    out = ft.solve_qp_ex(tQ, tq, **ts)
    w = torch.tensor(np.random.default_rng(7).standard_normal(out[0].shape).astype(dt))
    ins = [tQ, tq] + [t for t in ts.values() if t is not None]
    grads = torch.autograd.grad((out[0] * w).sum(), ins, allow_unused=True)
    res.update(tz=out[0].detach().numpy(), tinfo=out[4].numpy())
    for i, gr in enumerate(grads):
        res[f"g{i}"] = np.zeros(0) if gr is None else gr.numpy()
    return res


def _all():
    """(key, runner, arguments) of every batch, each in both dtypes."""
    for dt in (np.float64, np.float32):
        suffix = np.dtype(dt).name
        for name, Q, q, A, c in cases():
            yield f"{name}-{suffix}", run_case, (Q, q, A, c, dt)
        for name, P in qp_cases():
            yield f"{name}-{suffix}", run_qp_case, (P, dt)


def record(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    k = 0
    for key, run, args in _all():
        res = run(*args)
        np.savez(d / f"{key}.npz", **res)
        k += 1
    print(f"recorded {k} batches into {d}")


def _nan_equal(a, b):
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def compare(d: Path) -> int:
    bad = 0
    k = 0
    for key, run, args in _all():
        ref = np.load(d / f"{key}.npz")
        res = run(*args)
        k += 1
        for name in ref.files:
            a, b = ref[name], res[name]
            if a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes():
                continue
            bad += 1
            how = "NaN payload only" if _nan_equal(a, b) else "values differ"
            print(f"DIFF {key} {name}: {how}")
    print(f"compared {k} batches bitwise: {bad} differences")
    return 1 if bad else 0


SUITE = [(1, 16, 4), (128, 16, 4), (1024, 32, 8), (4096, 64, 16), (256, 128, 32), (32, 512, 128),
         (1, 1000, 200)]  # fmt: skip


def bench(reps: int = 7) -> None:
    import torch

    import fastkkt
    import fastkkt.torch as ft

    for B, n, m in SUITE:
        rng = np.random.default_rng([0, B, n, m])
        M = rng.standard_normal((B, n, n))
        Q = M @ np.swapaxes(M, -1, -2) / n + 0.1 * np.eye(n)
        Q = (Q + np.swapaxes(Q, -1, -2)) / 2
        A = rng.standard_normal((B, m, n))
        q = rng.standard_normal((B, n))
        c = rng.standard_normal((B, m))
        w = torch.tensor(rng.standard_normal((B, n)))
        inner = max(1, int(2e7 / (B * (n + m) ** 3 / 3 + 1)))
        fw, bw = [], []
        for _ in range(reps):
            t = time.perf_counter()
            for _ in range(inner):
                fastkkt.solve(Q, q, A, c)
            fw.append((time.perf_counter() - t) / inner)
            ts = [torch.tensor(x, requires_grad=True) for x in (Q, q, A, c)]
            t = time.perf_counter()
            for _ in range(inner):
                z = ft.solve_ex(*ts)[0]
                torch.autograd.grad((z * w).sum(), ts)
            bw.append((time.perf_counter() - t) / inner)
        print(f"{B}x{n}x{m}: forward {1e3 * np.median(fw):.3f} ms, "
              f"forward+backward {1e3 * np.median(bw):.3f} ms")  # fmt: skip


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "record":
        record(Path(sys.argv[2]))
    elif cmd == "compare":
        sys.exit(compare(Path(sys.argv[2])))
    elif cmd == "bench":
        bench()
    else:
        print(__doc__)
        sys.exit(2)
