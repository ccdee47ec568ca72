"""Side-by-side check of fastkkt.solve_qp against PIQP (dense, eps_abs 1e-12, eps_rel 0) on the
BENCH_QP.md suite (the cases of fastkkt.testing.qp_case), with the max z error against the
polished Clarabel reference (fastkkt.testing.clarabel_qp).

    PYTHONPATH=python python scripts/qp_vs_piqp.py [case ...]   # FASTKKT_NUM_THREADS=1: one thread

Times are medians of calls alternated one by one (fastkkt, then PIQP's loop over the batch).
"""

import sys
import time

import numpy as np
import piqp

import fastkkt
from fastkkt.testing import QP_CASES, clarabel_qp, qp_case


def el(d, b):
    return {k: (None if v is None else v[b]) for k, v in d.items()}


def piqp_setup_solve(e):
    s = piqp.DenseSolver()
    s.settings.eps_abs = 1e-12
    s.settings.eps_rel = 0.0
    kw = {}
    if e["A"] is not None:
        kw.update(A=np.asfortranarray(e["A"]), b=e["c"])
    if e["G"] is not None:
        kw.update(G=np.asfortranarray(e["G"]), h_u=e["h"])
    if e["lb"] is not None:
        kw.update(x_l=e["lb"], x_u=e["ub"])
    s.setup(np.asfortranarray(e["Q"]), e["q"], **kw)
    s.solve()
    return np.array(s.result.x), s.result.info.iter


def alternated(f, g, reps):
    """Median ms of f and of g, their calls alternated one by one after one warm-up each (this
    machine is shared: load moves both alike rather than one of them)."""
    f()
    g()
    tf, tg = [], []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        tf.append(time.perf_counter() - t)
        t = time.perf_counter()
        g()
        tg.append(time.perf_counter() - t)
    return np.median(tf) * 1e3, np.median(tg) * 1e3


only = sys.argv[1:]
print(f"threads {fastkkt.get_num_threads()}")
print(
    f"{'case':14s} {'fastkkt ms':>10s} {'piqp ms':>9s} {'ratio':>6s} {'it fk':>9s} "
    f"{'it piqp':>9s} {'err fk':>8s} {'err piqp':>8s} {'refpol':>6s}"
)
for case in QP_CASES:
    if only and case not in only:
        continue
    d = {k: qp_case(case).get(k) for k in ("Q", "q", "A", "c", "G", "h", "lb", "ub")}
    B = d["q"].shape[0]
    kw = {k: v for k, v in d.items() if k not in ("Q", "q") and v is not None}
    sol = fastkkt.solve_qp_ex(d["Q"], d["q"], **kw)
    nref = min(B, 64)
    ref = clarabel_qp(**{k: (None if v is None else v[:nref]) for k, v in d.items()})
    npol = int(ref["polished"].sum())
    errs, perrs, pits = [], [], []
    for b in range(nref):
        e = el(d, b)
        zr = ref["z"][b]
        scale = max(1, np.abs(zr).max())
        errs.append(np.abs(sol.z[b] - zr).max() / scale)
        zp, it = piqp_setup_solve(e)
        pits.append(it)
        perrs.append(np.abs(zp - zr).max() / scale)
    tf, tp = alternated(
        lambda d=d, kw=kw: fastkkt.solve_qp(d["Q"], d["q"], **kw),
        lambda d=d, B=B: [piqp_setup_solve(el(d, b)) for b in range(B)],
        5 if B > 100 else 9,
    )
    it = sol.iterations
    print(
        f"{case:14s} {tf:10.2f} {tp:9.2f} {tp / tf:6.2f} {it.mean():4.1f}/{it.max():3d} "
        f"{np.mean(pits):4.1f}/{max(pits):3d} {max(errs):8.1e} {max(perrs):8.1e} "
        f"{npol:3d}/{nref}  info={np.bincount(sol.info.ravel())}",
        flush=True,
    )
