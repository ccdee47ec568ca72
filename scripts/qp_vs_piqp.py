"""Side-by-side check of fastkkt.solve_qp against PIQP (dense, eps_abs 1e-12, eps_rel 0) on the
BENCH_QP.md suite (cases generated inline), with the max z error against a polished Clarabel
reference. Usage: PYTHONPATH=python python scripts/qp_vs_piqp.py [case ...]"""

import sys
import time

import clarabel
import numpy as np
import piqp
import scipy.sparse as sp

import fastkkt


def sym(X):
    return (X + np.swapaxes(X, -1, -2)) / 2


def gen(case, B, n, m, p, bounds, kind):
    rng = np.random.default_rng([0, B, n, m, p])
    N = rng.standard_normal
    U = rng.uniform
    A = c = G = h = lb = ub = None
    if kind == "generic":
        M = N((B, n, n))
        Q = sym(M @ np.swapaxes(M, 1, 2) / n + 0.1 * np.eye(n))
        q = N((B, n))
        z0 = N((B, n))
        A = N((B, m, n))
        c = np.einsum("bij,bj->bi", A, z0)
        G = N((B, p, n))
        s0 = U(size=(B, p))
        s0[U(size=(B, p)) < 0.3] = 0
        h = np.einsum("bij,bj->bi", G, z0) + s0
        if bounds:
            lb = z0 - U(size=(B, n))
            ub = z0 + U(size=(B, n))
    elif kind == "scqpth":
        k = p // 2
        M = N((B, n, n)) * (U(size=(B, n, n)) < 0.5)
        Q = sym(np.swapaxes(M, 1, 2) @ M + 0.01 * np.eye(n))
        q = N((B, n))
        V = N((B, k, n))
        W = U(size=(B, k, n))
        mask = W < 0.15
        for b in range(B):
            for r in range(k):
                if not mask[b, r].any():
                    mask[b, r, np.argmin(W[b, r])] = True
        At = V * mask
        lo = -U(size=(B, k))
        u = U(size=(B, k))
        G = np.concatenate([At, -At], 1)
        h = np.concatenate([u, -lo], 1)
    elif kind == "optnet":
        L = U(size=(B, n, n))
        Q = sym(L @ np.swapaxes(L, 1, 2) + 1e-3 * np.eye(n))
        G = N((B, p, n))
        z0 = N((B, n))
        s0 = U(size=(B, p))
        q = N((B, n))
        h = np.einsum("bij,bj->bi", G, z0) + s0
    elif kind == "svm":
        from sklearn.datasets import load_breast_cancer

        X, t = load_breast_cancer(return_X_y=True)
        X = (X - X.mean(0)) / X.std(0)
        gamma = 1 / (X.shape[1] * X.var())
        d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
        K = np.exp(-gamma * d2)
        y = np.where(t == 1, 1.0, -1.0)
        Q = sym(np.outer(y, y) * K)[None]
        q = -np.ones((1, n))
        A = y[None, None, :]
        c = np.zeros((1, 1))
        lb = np.zeros((1, n))
        ub = np.ones((1, n))
    if A is not None and A.shape[1] == 0:
        A = c = None
    if G is not None and G.shape[1] == 0:
        G = h = None
    return dict(Q=Q, q=q, A=A, c=c, G=G, h=h, lb=lb, ub=ub)


def el(d, b):
    return {k: (None if v is None else v[b]) for k, v in d.items()}


def clarabel_ref(e):
    Q, q = e["Q"], e["q"]
    n = len(q)
    rows, rhs, cones = [], [], []
    if e["A"] is not None:
        rows.append(e["A"])
        rhs.append(e["c"])
        cones.append(clarabel.ZeroConeT(len(e["c"])))
    ni = 0
    if e["G"] is not None:
        rows.append(e["G"])
        rhs.append(e["h"])
        ni += len(e["h"])
    if e["lb"] is not None:
        rows += [np.eye(n), -np.eye(n)]
        rhs += [e["ub"], -e["lb"]]
        ni += 2 * n
    if ni:
        cones.append(clarabel.NonnegativeConeT(ni))
    s = clarabel.DefaultSettings()
    s.verbose = False
    s.tol_gap_abs = s.tol_gap_rel = 1e-10
    s.tol_feas = 1e-10
    s.max_iter = 500
    sol = clarabel.DefaultSolver(
        sp.csc_matrix(np.triu(Q)), q, sp.csc_matrix(np.vstack(rows)), np.concatenate(rhs), cones, s
    ).solve()
    x = np.array(sol.x)
    y = np.array(sol.z)
    sl = np.array(sol.s)
    # polish: active rows (slack < multiplier) as equalities
    me = len(e["c"]) if e["A"] is not None else 0
    act = sl[me:] < y[me:]
    rowsI = np.vstack(rows[1 if me else 0 :]) if ni else np.zeros((0, n))
    rhsI = np.concatenate(rhs[1 if me else 0 :]) if ni else np.zeros(0)
    C = np.vstack(([e["A"]] if me else []) + [rowsI[act]])
    d = np.concatenate(([e["c"]] if me else []) + [rhsI[act]])
    k = len(d)
    K = np.block([[Q, C.T], [C, np.zeros((k, k))]])
    rhsK = np.concatenate([-q, d])
    sol2 = np.linalg.lstsq(K, rhsK, rcond=None)[0]
    z = sol2[:n]
    mult = sol2[n + me :]
    ok = (
        (rowsI @ z <= rhsI + 1e-9 * (1 + np.abs(rhsI))).all()
        and (mult >= -1e-9).all()
        and np.abs(K @ sol2 - rhsK).max() < 1e-9 * (1 + np.abs(rhsK).max())
    )
    return (z if ok else x), ok


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


CASES = [
    ("tiny", 1, 10, 0, 20, False, "generic"),
    ("scqpth_small", 32, 10, 0, 20, False, "scqpth"),
    ("mpc", 4096, 12, 4, 0, True, "generic"),
    ("optnet", 128, 100, 0, 100, False, "optnet"),
    ("scqpth_medium", 32, 100, 0, 200, False, "scqpth"),
    ("mixed", 256, 50, 10, 50, True, "generic"),
    ("large", 1, 500, 50, 500, True, "generic"),
    ("svm", 1, 569, 1, 0, True, "svm"),
]


def med(f, reps):
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return np.median(ts) * 1e3


only = sys.argv[1:]
print(f"threads {fastkkt.get_num_threads()}")
print(
    f"{'case':14s} {'fastkkt ms':>10s} {'piqp ms':>9s} {'ratio':>6s} {'it fk':>9s} "
    f"{'it piqp':>9s} {'err fk':>8s} {'err piqp':>8s} {'refpol':>6s}"
)
for case, B, n, m, p, bounds, kind in CASES:
    if only and case not in only:
        continue
    d = gen(case, B, n, m, p, bounds, kind)
    kw = {k: v for k, v in d.items() if k not in ("Q", "q") and v is not None}
    sol = fastkkt.solve_qp_ex(d["Q"], d["q"], **kw)
    nref = min(B, 64)
    errs, perrs, pits, npol = [], [], [], 0
    for b in range(nref):
        e = el(d, b)
        zr, ok = clarabel_ref(e)
        npol += ok
        scale = max(1, np.abs(zr).max())
        errs.append(np.abs(sol.z[b] - zr).max() / scale)
        zp, it = piqp_setup_solve(e)
        pits.append(it)
        perrs.append(np.abs(zp - zr).max() / scale)
    reps = 5
    tf = med(lambda d=d, kw=kw: fastkkt.solve_qp(d["Q"], d["q"], **kw), reps)
    tp = med(
        lambda d=d, B=B: [piqp_setup_solve(el(d, b)) for b in range(B)], 3 if B > 100 else reps
    )
    it = sol.iterations
    print(
        f"{case:14s} {tf:10.2f} {tp:9.2f} {tp / tf:6.2f} {it.mean():4.1f}/{it.max():3d} "
        f"{np.mean(pits):4.1f}/{max(pits):3d} {max(errs):8.1e} {max(perrs):8.1e} "
        f"{npol:3d}/{nref}  info={np.bincount(sol.info.ravel())}",
        flush=True,
    )
