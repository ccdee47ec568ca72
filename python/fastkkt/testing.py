"""Seeded problem generators and checks shared by the tests and the benchmarks.

``random_qp`` is *the* benchmark generator of BENCH.md; everything that needs random
problems calls it (or one of the hard-case generators below) instead of drawing its own.
Every generator is deterministic in its arguments.
"""

from __future__ import annotations

import math
from typing import Any, Union

import numpy as np

from fastkkt._status import DUAL_INFEASIBLE, MAX_ITER, PRIMAL_INFEASIBLE, QP_SOLVED

__all__ = [
    "QP_CASES",
    "assert_allclose_normwise",
    "assert_qp_kkt",
    "clarabel_qp",
    "failing_qp",
    "feasible_qp",
    "ill_conditioned_qp",
    "indefinite_qp",
    "infeasible_qp",
    "kkt_matrix",
    "kkt_residual",
    "loss_weights",
    "psd_qp",
    "qp_case",
    "qp_kkt_residuals",
    "random_qp",
    "unbounded_qp",
]

Batch = Union[int, tuple[int, ...]]
Problem = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _batch_shape(batch: Batch) -> tuple[int, ...]:
    return tuple(int(b) for b in np.atleast_1d(np.asarray(batch, dtype=np.int64)))


def _draw(batch: Batch, n: int, m: int, seed: int) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """The BENCH.md stream: Q, A, q, c, w for B = prod(batch) problems, in float64."""
    shape = _batch_shape(batch)
    B = math.prod(shape)
    rng = np.random.default_rng([seed, B, n, m])
    M = rng.standard_normal((B, n, n))
    Q = M @ M.transpose(0, 2, 1) / max(n, 1) + 0.1 * np.eye(n)
    Q = (Q + Q.transpose(0, 2, 1)) / 2  # exactly symmetric
    A = rng.standard_normal((B, m, n))
    q = rng.standard_normal((B, n))
    c = rng.standard_normal((B, m))
    w = rng.standard_normal((B, n))
    return shape, [Q, q, A, c, w]


def _shaped(shape: tuple[int, ...], arrays: list[np.ndarray], dtype: Any) -> list[np.ndarray]:
    return [x.reshape(shape + x.shape[1:]).astype(dtype) for x in arrays]


def random_qp(batch: Batch, n: int, m: int, *, seed: int = 0, dtype: Any = np.float64) -> Problem:
    """The benchmark problems of BENCH.md: (Q, q, A, c) of shapes (*batch, n, n), (*batch, n),
    (*batch, m, n), (*batch, m).

    ``rng = np.random.default_rng([seed, B, n, m])`` with ``B = prod(batch)``;
    ``M = rng.standard_normal((B, n, n))``, ``Q = M Mᵀ/n + 0.1·I`` symmetrized exactly, then
    A, q, c standard normal in that order. ``batch`` is an int or a tuple; ``()`` gives one
    unbatched problem. Generated in float64 and then cast to ``dtype``.
    """
    shape, arrays = _draw(batch, n, m, seed)
    Q, q, A, c = _shaped(shape, arrays[:4], dtype)
    return Q, q, A, c


def failing_qp(
    batch: Batch,
    n: int,
    m: int,
    failures: dict[Any, str],
    *,
    seed: int = 0,
    dtype: Any = np.float64,
) -> Problem:
    """`random_qp` with chosen batch elements made to fail, the one generator of failing
    batches for the tests. `failures` maps a batch index (an int for a 1-d batch, else a tuple)
    to how it fails, with the status the contract gives it:

    - ``"singular"`` (info 1): A's last row zero, so A has no full row rank (m ≥ 1); with
      m = 0, Q = 0;
    - ``"not_minimum"`` (info 2): Q negated, negative definite, so the KKT matrix is
      nonsingular with the wrong inertia (needs n > m: a nonzero null space of A).

    The other elements are exactly those of ``random_qp(batch, n, m, seed=seed)``.
    """
    Q, q, A, c = random_qp(batch, n, m, seed=seed, dtype=dtype)
    for idx, how in failures.items():
        if how == "singular":
            if m:
                A[idx][-1] = 0
            else:
                Q[idx][...] = 0
        elif how == "not_minimum":
            if n <= m:
                raise ValueError(f"not_minimum needs n > m, got n = {n}, m = {m}")
            Q[idx] = -Q[idx]
        else:
            raise ValueError(f"unknown failure {how!r}: 'singular' or 'not_minimum'")
    return Q, q, A, c


def loss_weights(
    batch: Batch, n: int, m: int, *, seed: int = 0, dtype: Any = np.float64
) -> np.ndarray:
    """The loss weights w (*batch, n) of BENCH.md (loss ``sum(w * z)``) for
    ``random_qp(batch, n, m, seed=seed)``: drawn after c from the same stream, which is why
    m is needed."""
    shape, arrays = _draw(batch, n, m, seed)
    return _shaped(shape, arrays[4:], dtype)[0]


def _structured(
    batch: Batch, n: int, m: int, seed: int, tag: int, negative: bool, dtype: Any
) -> Problem:
    """Q = [Y Z] [[T, Cᵀ], [C, S]] [Y Z]ᵀ with Y an orthonormal basis of range(Aᵀ) and Z one
    of null(A): the reduced Hessian ZᵀQZ = S is positive definite whatever T and C are."""
    shape = _batch_shape(batch)
    B = math.prod(shape)
    if m > n:
        raise ValueError(f"need m <= n for a problem with a solution, got n = {n}, m = {m}")
    rng = np.random.default_rng([seed, B, n, m, tag])
    A = rng.standard_normal((B, m, n))
    q = rng.standard_normal((B, n))
    c = rng.standard_normal((B, m))
    basis = np.linalg.qr(A.transpose(0, 2, 1), mode="complete")[0]  # (B, n, n)
    Z = basis[..., m:]  # null(A); basis[..., :m] spans range(Aᵀ)
    k = n - m
    G = rng.standard_normal((B, k, k))
    S = G @ G.transpose(0, 2, 1) / max(k, 1) + 0.5 * np.eye(k)
    if negative:  # indefinite: T negative definite, plus coupling between the two subspaces
        d = rng.uniform(0.5, 2.0, (B, m))
        C = 0.3 * rng.standard_normal((B, k, m))
        inner = np.block([[-d[:, None, :] * np.eye(m), C.transpose(0, 2, 1)], [C, S]])
        Q = basis @ inner @ basis.transpose(0, 2, 1)
    else:  # positive semidefinite of rank n - m: zero on range(Aᵀ)
        Q = Z @ S @ Z.transpose(0, 2, 1)
    Q = (Q + Q.transpose(0, 2, 1)) / 2
    Qs, qs, As, cs = _shaped(shape, [Q, q, A, c], dtype)
    return Qs, qs, As, cs


def psd_qp(batch: Batch, n: int, m: int, *, seed: int = 0, dtype: Any = np.float64) -> Problem:
    """Problems whose Q is positive semidefinite of rank n − m (singular when m > 0) but
    positive definite on null(A): Q = Z S Zᵀ with Z an orthonormal null-space basis of A and S
    positive definite (eigenvalues ≥ 0.5). Each KKT matrix is nonsingular with inertia (n, m).
    """
    return _structured(batch, n, m, seed, tag=1, negative=False, dtype=dtype)


def indefinite_qp(
    batch: Batch, n: int, m: int, *, seed: int = 0, dtype: Any = np.float64
) -> Problem:
    """Problems whose Q is indefinite (m eigenvalue directions negative when m > 0) but
    positive definite on null(A), so each one still has a unique strict minimizer:
    Q = [Y Z] [[−D, Cᵀ], [C, S]] [Y Z]ᵀ, Y spanning range(Aᵀ), Z null(A), S positive definite,
    D positive diagonal in [0.5, 2].
    """
    return _structured(batch, n, m, seed, tag=2, negative=True, dtype=dtype)


def ill_conditioned_qp(
    batch: Batch,
    n: int,
    m: int,
    cond: float = 1e8,
    seed: int = 0,
    *,
    dtype: Any = np.float64,
) -> Problem:
    """Well-posed but ill-conditioned problems: Q = U diag(s) Uᵀ with s log-spaced from 1 to
    1/cond (so cond(Q) = cond, Q positive definite) and A = V diag(σ) Wᵀ with σ log-spaced
    from 1 to cond^(−1/2); U, V, W random orthogonal, q and c standard normal."""
    shape = _batch_shape(batch)
    B = math.prod(shape)
    rng = np.random.default_rng([seed, B, n, m, 3])

    def orthogonal(k: int) -> np.ndarray:
        return np.linalg.qr(rng.standard_normal((B, k, k)))[0]

    U, V, W = orthogonal(n), orthogonal(m), orthogonal(n)
    s = np.logspace(0.0, -np.log10(cond), n)
    Q = (U * s) @ U.transpose(0, 2, 1)
    Q = (Q + Q.transpose(0, 2, 1)) / 2
    sigma = np.logspace(0.0, -0.5 * np.log10(cond), m)
    A = (V * sigma) @ W[..., :m, :]
    q = rng.standard_normal((B, n))
    c = rng.standard_normal((B, m))
    Qs, qs, As, cs = _shaped(shape, [Q, q, A, c], dtype)
    return Qs, qs, As, cs


def kkt_matrix(Q: Any, A: Any) -> np.ndarray:
    """The KKT matrices [[sym(Q), Aᵀ], [A, 0]] of shape (..., n+m, n+m) over the broadcast
    batch shape of Q (..., n, n) and A (..., m, n), in their common float dtype."""
    Q, A = np.asarray(Q), np.asarray(A)
    dtype = np.result_type(Q, A, np.float32) if Q.dtype.kind == A.dtype.kind == "f" else float
    n, m = Q.shape[-1], A.shape[-2]
    batch = np.broadcast_shapes(Q.shape[:-2], A.shape[:-2])
    K = np.zeros((*batch, n + m, n + m), dtype=dtype)
    K[..., :n, :n] = (Q + np.swapaxes(Q, -1, -2)) / 2
    K[..., n:, :n] = A
    K[..., :n, n:] = np.swapaxes(A, -1, -2)
    return K


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a·b = p + e exactly (Dekker's TwoProduct by splitting; |a|, |b| ≤ 1 so nothing
    overflows). Elementwise IEEE operations only: the same bits under every BLAS and LAPACK."""
    split = 134217729.0  # 2²⁷ + 1
    t = split * a
    ah = t - (t - a)
    al = a - ah
    t = split * b
    bh = t - (t - b)
    bl = b - bh
    p = a * b
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def _pow2_scale(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Per batch element, the power of two that brings max |x| over `axes` into [½, 1)."""
    big = np.abs(x).max(axis=axes, initial=0.0, keepdims=True)
    _, e = np.frexp(big)
    return np.ldexp(1.0, -e)


def _exact_residual(Q: np.ndarray, A: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b − K x for K = [[sym(Q), Aᵀ], [A, 0]], every component as accurate as if computed in
    twice the working precision (Ogita, Rump & Oishi 2005, Dot2): sym(Q)x is summed from the
    exact halves ½Qᵢⱼ and ½Qⱼᵢ, and each product and sum carries its rounding error along.
    Scaled by powers of two (exact) so that no entry exceeds 1 in magnitude."""
    n = Q.shape[-1]
    N = x.shape[-1]
    batch = x.shape[:-1]
    # one scale for Q and A together (the smaller power: the larger matrix decides), one for x
    sk = np.minimum(_pow2_scale(Q, (-2, -1)), _pow2_scale(A, (-2, -1)))[..., 0]  # (..., 1)
    sx = _pow2_scale(x, (-1,))
    Qs = np.broadcast_to(Q * sk[..., None], (*batch, n, n)) / 2
    As = np.broadcast_to(A * sk[..., None], (*batch, N - n, n))
    xs = x * sx
    s = b * (sk * sx)
    comp = np.zeros_like(s)

    def sub(col: np.ndarray, xj: np.ndarray, rows: slice) -> None:  # s[rows] −= col·xj
        p, e = _two_product(col, xj[..., None])
        old = s[..., rows]
        new = old - p
        v = new - old
        comp[..., rows] += ((old - (new - v)) - (p + v)) - e
        s[..., rows] = new

    for j in range(n):
        sub(Qs[..., :, j], xs[..., j], slice(0, n))  # ½Qᵢⱼ zⱼ
        sub(Qs[..., j, :], xs[..., j], slice(0, n))  # ½Qⱼᵢ zⱼ
        sub(As[..., :, j], xs[..., j], slice(n, N))  # Aₖⱼ zⱼ
    for k in range(N - n):
        sub(As[..., k, :], xs[..., n + k], slice(0, n))  # Aₖᵢ λₖ
    return (s + comp) / (sk * sx)


def kkt_residual(Q: Any, q: Any, A: Any, c: Any, z: Any, lam: Any) -> np.ndarray:
    """Normwise backward error of (z, λ) for each batch element, computed in float64:

        ‖K x − b‖∞ / (‖K‖∞ ‖x‖∞ + ‖b‖∞),   x = [z; λ],  b = [−q; c].

    A backward-stable solver gives a small multiple of the unit roundoff of its dtype. The
    residual is computed with compensated (twice-working-precision) arithmetic from the exact
    entries of sym(Q) and A, with elementwise operations only, so the measurement itself adds
    no error worth counting and does not depend on the BLAS that NumPy links.
    Returns a float64 array of the broadcast batch shape (0 where K, x and b are all zero).
    """
    f64 = np.float64
    Q64, A64 = np.asarray(Q, f64), np.asarray(A, f64)
    K = kkt_matrix(Q64, A64)
    N = K.shape[-1]
    m = np.shape(A)[-2]
    n = N - m
    q, c, z, lam = (np.asarray(x, f64) for x in (q, c, z, lam))
    batch = np.broadcast_shapes(
        K.shape[:-2], q.shape[:-1], c.shape[:-1], z.shape[:-1], lam.shape[:-1]
    )
    x = np.concatenate(
        [np.broadcast_to(z, (*batch, n)), np.broadcast_to(lam, (*batch, m))], axis=-1
    )
    b = np.concatenate([np.broadcast_to(-q, (*batch, n)), np.broadcast_to(c, (*batch, m))], axis=-1)
    with np.errstate(all="ignore"):
        r = np.abs(_exact_residual(Q64, A64, x, b)).max(axis=-1, initial=0.0)
    K_norm = np.abs(K).sum(axis=-1).max(axis=-1, initial=0.0)
    scale = K_norm * np.abs(x).max(axis=-1, initial=0.0) + np.abs(b).max(axis=-1, initial=0.0)
    return np.divide(r, scale, out=np.zeros_like(r), where=scale > 0)


def assert_allclose_normwise(actual: Any, desired: Any, rtol: float, err_msg: str = "") -> None:
    """Assert equal shapes, NaN in the same places, and for every batch element (the last
    axis is the vector) ``‖actual − desired‖∞ <= rtol · ‖desired‖∞`` over the finite entries.
    """
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.shape == desired.shape, f"shape {actual.shape} != {desired.shape} {err_msg}"
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(desired), err_msg=err_msg)
    a = np.nan_to_num(actual.astype(np.float64), nan=0.0)
    d = np.nan_to_num(desired.astype(np.float64), nan=0.0)
    err = np.abs(a - d).max(axis=-1, initial=0.0)
    scale = np.abs(d).max(axis=-1, initial=0.0)
    bad = err > rtol * scale
    if bad.any():
        worst = np.unravel_index(np.argmax(err - rtol * scale), err.shape)
        raise AssertionError(
            f"{int(bad.sum())} of {bad.size} elements differ by more than rtol = {rtol:g} "
            f"(normwise); worst at batch index {tuple(int(i) for i in worst)}: "
            f"{err[worst]:.3g} vs {rtol:g} · {scale[worst]:.3g}. {err_msg}"
        )


# --------------------------------------------------------------------------------------------
# inequality-constrained QPs (fastkkt.solve_qp)


def _opt(x: Any) -> np.ndarray | None:
    return None if x is None else np.asarray(x, dtype=np.float64)


def _inf_norm(x: np.ndarray) -> np.ndarray:
    """‖x‖∞ over the last axis, 0 for an empty vector."""
    return np.abs(x).max(axis=-1, initial=0.0)


def _matvec(M: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (M @ x[..., None])[..., 0]


def qp_kkt_residuals(
    Q: Any,
    q: Any,
    z: Any,
    lam: Any = None,
    mu: Any = None,
    nu: Any = None,
    *,
    A: Any = None,
    c: Any = None,
    G: Any = None,
    h: Any = None,
    lb: Any = None,
    ub: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three relative KKT measures of API.md ("Inequality-constrained QPs") for a batch
    of (z, λ, μ, ν), in float64, each of the broadcast batch shape:

    * primal: max(‖Az − c‖, ‖max(Gz − h, 0)‖, ‖max(lb − z, 0)‖, ‖max(z − ub, 0)‖)
      / (1 + max(‖Az‖, ‖c‖, ‖Gz‖, ‖h‖ (finite entries), ‖z‖));
    * dual: ‖sym(Q)z + q + Aᵀλ + Gᵀμ + ν‖ / (1 + max(‖Qz‖, ‖q‖, ‖Aᵀλ‖, ‖Gᵀμ‖, ‖ν‖));
    * gap: |zᵀQz + qᵀz + cᵀλ + hᵀμ + ubᵀν₊ − lbᵀν₋| / (1 + |½zᵀQz + qᵀz| + the largest of
      those terms in absolute value), ν₊ = max(ν, 0), ν₋ = max(−ν, 0), infinite h, lb, ub
      entries left out.

    All norms are ∞-norms per element. A solution at status 0 has all three ≤ tol. Missing
    constraints are None (as in ``solve_qp``); lb and ub may be scalars.
    """
    Q, q, z = (np.asarray(x, dtype=np.float64) for x in (Q, q, z))
    A, c, G, h, lb, ub, lam, mu, nu = map(_opt, (A, c, G, h, lb, ub, lam, mu, nu))
    n = z.shape[-1]
    Qs = (Q + np.swapaxes(Q, -1, -2)) / 2
    Qz = _matvec(Qs, z)
    zQz = (z * Qz).sum(-1)
    qz = (q * z).sum(-1)
    zero = np.zeros(np.broadcast_shapes(zQz.shape, qz.shape))

    primal, primal_scale = [zero], [_inf_norm(z)]
    grad, dual_scale = Qz + q, [_inf_norm(Qz), _inf_norm(q)]
    terms = [zQz, qz]
    if A is not None and c is not None and A.shape[-2] > 0:
        Az = _matvec(A, z)
        primal += [_inf_norm(Az - c)]
        primal_scale += [_inf_norm(Az), _inf_norm(c)]
        if lam is not None:
            ATl = _matvec(np.swapaxes(A, -1, -2), lam)
            grad = grad + ATl
            dual_scale.append(_inf_norm(ATl))
            terms.append((c * lam).sum(-1))
    if G is not None and h is not None and G.shape[-2] > 0:
        Gz = _matvec(G, z)
        finite = np.isfinite(h)
        primal += [_inf_norm(np.maximum(Gz - h, 0.0))]
        primal_scale += [_inf_norm(Gz), _inf_norm(np.where(finite, h, 0.0))]
        if mu is not None:
            GTm = _matvec(np.swapaxes(G, -1, -2), mu)
            grad = grad + GTm
            dual_scale.append(_inf_norm(GTm))
            terms.append((np.where(finite, h, 0.0) * np.where(finite, mu, 0.0)).sum(-1))
    if nu is not None:
        grad = grad + nu
        dual_scale.append(_inf_norm(nu))
    for bound, sign in ((ub, 1.0), (lb, -1.0)):
        if bound is None:
            continue
        bound = np.broadcast_to(bound, np.broadcast_shapes(bound.shape, (n,)))
        finite = np.isfinite(bound)
        primal.append(
            _inf_norm(np.maximum(sign * (z - np.where(finite, bound, 0.0)), 0.0) * finite)
        )
        if nu is not None:
            part = np.maximum(sign * nu, 0.0)  # ν₊ for ub, ν₋ for lb
            finite_part = np.where(finite, bound, 0.0) * np.where(finite, part, 0.0)
            terms.append(sign * finite_part.sum(-1))

    def largest(xs: list) -> np.ndarray:
        return np.maximum.reduce(np.broadcast_arrays(*xs)) if len(xs) > 1 else xs[0]

    p = largest(primal) / (1 + largest(primal_scale))
    d = _inf_norm(grad) / (1 + largest(dual_scale))
    total = sum(terms[1:], terms[0])
    g = np.abs(total) / (1 + np.abs(zQz / 2 + qz) + largest([np.abs(t) for t in terms]))
    return p, d, g


# --------------------------------------------------------------------------------------------
# the solve_qp benchmark suite of BENCH_QP.md

#: name: (B, n, m, p, box bounds, generator) of BENCH_QP.md's table.
QP_CASES: dict[str, tuple[int, int, int, int, bool, str]] = {
    "tiny": (1, 10, 0, 20, False, "generic"),
    "scqpth_small": (32, 10, 0, 20, False, "scqpth"),
    "mpc": (4096, 12, 4, 0, True, "generic"),
    "optnet": (128, 100, 0, 100, False, "optnet"),
    "scqpth_medium": (32, 100, 0, 200, False, "scqpth"),
    "mixed": (256, 50, 10, 50, True, "generic"),
    "large": (1, 500, 50, 500, True, "generic"),
    "svm": (1, 569, 1, 0, True, "svm"),
}


def _sym(X: np.ndarray) -> np.ndarray:
    return (X + np.swapaxes(X, -1, -2)) / 2


def _generic_case(rng: np.random.Generator, B: int, n: int, m: int, p: int, box: bool) -> dict:
    N, U = rng.standard_normal, rng.uniform
    M = N((B, n, n))
    Q = _sym(M @ np.swapaxes(M, -1, -2) / n + 0.1 * np.eye(n))
    q = N((B, n))
    z0 = N((B, n))
    A = N((B, m, n))
    c = _matvec(A, z0)
    G = N((B, p, n))
    s0 = U(size=(B, p))
    s0[U(size=(B, p)) < 0.3] = 0.0
    h = _matvec(G, z0) + s0
    out = {"Q": Q, "q": q, "A": A, "c": c, "G": G, "h": h, "lb": None, "ub": None}
    if box:
        out["lb"] = z0 - U(size=(B, n))
        out["ub"] = z0 + U(size=(B, n))
    return out


def _scqpth_case(rng: np.random.Generator, B: int, n: int, p: int) -> dict:
    """scqpth_bench's create_qp_data: k = p/2 two-sided rows l ≤ Ãz ≤ u of density 0.15."""
    N, U = rng.standard_normal, rng.uniform
    k = p // 2
    M = N((B, n, n)) * (U(size=(B, n, n)) < 0.5)
    Q = _sym(np.swapaxes(M, -1, -2) @ M + 0.01 * np.eye(n))
    q = N((B, n))
    V = N((B, k, n))
    W = U(size=(B, k, n))
    mask = W < 0.15
    empty = ~mask.any(axis=-1)  # a row with no entry keeps its smallest-W entry
    smallest = W.argmin(axis=-1)
    bi, ri = np.nonzero(empty)
    mask[bi, ri, smallest[bi, ri]] = True
    At = V * mask
    lo = -U(size=(B, k))
    up = U(size=(B, k))
    G = np.concatenate([At, -At], axis=1)
    h = np.concatenate([up, -lo], axis=1)
    return {"Q": Q, "q": q, "A": None, "c": None, "G": G, "h": h, "lb": None, "ub": None}


def _optnet_case(rng: np.random.Generator, B: int, n: int, p: int) -> dict:
    """qpth's prof-gurobi.py problems."""
    N, U = rng.standard_normal, rng.uniform
    L = U(size=(B, n, n))
    Q = _sym(L @ np.swapaxes(L, -1, -2) + 1e-3 * np.eye(n))
    G = N((B, p, n))
    z0 = N((B, n))
    s0 = U(size=(B, p))
    q = N((B, n))
    h = _matvec(G, z0) + s0
    return {"Q": Q, "q": q, "A": None, "c": None, "G": G, "h": h, "lb": None, "ub": None}


def svm_dual(kernel: str = "rbf", C: float = 1.0) -> dict:
    """The soft-margin SVM dual on scikit-learn's breast_cancer (569 samples, 30 features,
    standardized with ddof 0): Q = sym(yyᵀ∘K), q = −1, A = yᵀ, c = 0, 0 ≤ α ≤ C, with
    K = exp(−γ‖xᵢ − xⱼ‖²), γ = 1/(30·var X) ('scale'), or K = XXᵀ for ``kernel="linear"``;
    y = +1 for target 1, −1 for target 0. Also returns X and y. Unbatched."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    X = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    y = np.where(data.target == 1, 1.0, -1.0)
    if kernel == "rbf":
        gamma = 1.0 / (X.shape[1] * X.var())
        sq = (X * X).sum(axis=1)
        K = np.exp(-gamma * np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0))
    elif kernel == "linear":
        K = X @ X.T
    else:
        raise ValueError(f"kernel must be 'rbf' or 'linear', got {kernel!r}")
    n = len(y)
    return {
        "Q": _sym(np.outer(y, y) * K),
        "q": -np.ones(n),
        "A": y[None, :],
        "c": np.zeros(1),
        "lb": np.zeros(n),
        "ub": np.full(n, float(C)),
        "X": X,
        "y": y,
    }


def qp_case(name: str) -> dict:
    """One case of BENCH_QP.md: a dict Q, q, A, c, G, h, lb, ub (None where the case has no
    such constraint; leading batch dimension B always, also for B = 1) and the loss weights
    w (B, n), all float64, drawn exactly as BENCH_QP.md says from
    ``rng = np.random.default_rng([0, B, n, m, p])``."""
    if name not in QP_CASES:
        raise ValueError(f"unknown case {name!r}; the cases are {list(QP_CASES)}")
    B, n, m, p, box, kind = QP_CASES[name]
    rng = np.random.default_rng([0, B, n, m, p])
    if kind == "generic":
        out = _generic_case(rng, B, n, m, p, box)
        if m == 0:
            out["A"] = out["c"] = None
        if p == 0:
            out["G"] = out["h"] = None
    elif kind == "scqpth":
        out = _scqpth_case(rng, B, n, p)
    elif kind == "optnet":
        out = _optnet_case(rng, B, n, p)
    else:
        svm = svm_dual("rbf")
        out = {k: None if v is None else v[None] for k, v in svm.items() if k not in ("X", "y")}
        out.update(G=None, h=None)
    out["w"] = rng.standard_normal((B, n))
    return out


# --------------------------------------------------------------------------------------------
# random QPs for the tests: known optimum, infeasible, unbounded


def _qp_rng(batch: Batch, n: int, m: int, p: int, seed: int, tag: int):
    shape = _batch_shape(batch)
    return shape, math.prod(shape), np.random.default_rng([seed, math.prod(shape), n, m, p, tag])


def feasible_qp(
    batch: Batch,
    n: int,
    m: int = 0,
    p: int = 0,
    *,
    bounds: str = "box",
    rank_Q: int | None = None,
    rank_A: int | None = None,
    fixed: int = 0,
    weak: int = 0,
    seed: int = 0,
    dtype: Any = np.float64,
) -> dict:
    """Random convex QPs built backwards from their KKT conditions, so that the optimum is
    known: a dict Q, q, A, c, G, h, lb, ub (None where absent) and z_star, lam_star,
    mu_star, nu_star, the optimum and multipliers it was built from.

    z⋆ ~ N(0, I); Q = MMᵀ/r with M (n, r), r = ``rank_Q`` (default n, then + 0.1·I;
    ``rank_Q=0`` gives LPs); A = N(m, k)·N(k, n) of rank k = ``rank_A`` (default m), c = Az⋆
    (consistent); per row of G one of: active with μ ~ U(0.1, 1), inactive with slack
    U(0.1, 1) (about 40 % / 60 %), or — the first ``weak`` rows — weakly active (slack 0 and
    μ = 0, a degenerate optimum). Bounds, for ``bounds`` in "none", "lower", "upper", "box",
    "inf" (box with about a third of the lb and ub entries ±inf and a quarter of h +inf):
    each finite bound is active (|ν| ~ U(0.1, 1)) or at distance U(0.1, 1); the first
    ``fixed`` variables have lb = ub = z⋆ (box and inf only). Then
    q = −(Qz⋆ + Aᵀλ + Gᵀμ + ν) with λ ~ N(0, I), so z⋆ satisfies the KKT conditions; it is
    the unique optimum whenever Q is positive definite (the default).
    """
    if bounds not in ("none", "lower", "upper", "box", "inf"):
        raise ValueError(f"bounds must be none, lower, upper, box or inf, got {bounds!r}")
    shape, B, rng = _qp_rng(batch, n, m, p, seed, 11)
    N, U = rng.standard_normal, rng.uniform
    r = n if rank_Q is None else rank_Q
    M = N((B, n, r))
    Q = M @ np.swapaxes(M, -1, -2) / max(r, 1)
    if rank_Q is None:
        Q += 0.1 * np.eye(n)
    Q = _sym(Q)
    z = N((B, n))
    k = m if rank_A is None else rank_A
    A = N((B, m, k)) @ N((B, k, n))
    c = _matvec(A, z)
    lam = N((B, m))
    G = N((B, p, n))
    active = U(size=(B, p)) < 0.4
    active[:, :weak] = True
    mu = np.where(active, U(0.1, 1.0, (B, p)), 0.0)
    mu[:, :weak] = 0.0
    h = _matvec(G, z) + np.where(active, 0.0, U(0.1, 1.0, (B, p)))
    nu = np.zeros((B, n))
    lb = ub = None
    if bounds != "none":
        side = U(size=(B, n))  # < 0.25 at lb, < 0.5 at ub, else inactive
        size = U(0.1, 1.0, (B, n))
        gap_lo, gap_up = U(0.1, 1.0, (B, n)), U(0.1, 1.0, (B, n))
        at_lb = (side < 0.25) & (bounds != "upper")
        at_ub = (side >= 0.25) & (side < 0.5) & (bounds != "lower")
        lo = np.where(at_lb, z, z - gap_lo)
        up = np.where(at_ub, z, z + gap_up)
        nu = np.where(at_ub, size, 0.0) - np.where(at_lb, size, 0.0)
        if bounds == "inf":
            lo = np.where(~at_lb & (U(size=(B, n)) < 0.33), -np.inf, lo)
            up = np.where(~at_ub & (U(size=(B, n)) < 0.33), np.inf, up)
            h = np.where(~active & (U(size=(B, p)) < 0.25), np.inf, h)
        if fixed and bounds in ("box", "inf"):
            lo[:, :fixed] = up[:, :fixed] = z[:, :fixed]
            nu[:, :fixed] = N((B, fixed))
        lb = None if bounds == "upper" else lo
        ub = None if bounds == "lower" else up
    grad = _matvec(Q, z) + _matvec(np.swapaxes(A, -1, -2), lam)
    q = -(grad + _matvec(np.swapaxes(G, -1, -2), mu) + nu)
    out = {"Q": Q, "q": q, "A": A, "c": c, "G": G, "h": h, "lb": lb, "ub": ub, "z_star": z,
           "lam_star": lam, "mu_star": mu, "nu_star": nu}  # fmt: skip
    return {
        key: None if v is None else v.reshape(shape + v.shape[1:]).astype(dtype)
        for key, v in out.items()
    }


def infeasible_qp(batch: Batch, n: int, *, kind: str = "rows", seed: int = 0) -> dict:
    """Random primal-infeasible QPs (Q positive definite), a dict Q, q, A, c, G, h, lb, ub:

    * "rows": G = [g; −g; G₀] with gᵀz ≤ t − 1 and −gᵀz ≤ −t − 1 (contradictory);
    * "bounds": lb > ub in one coordinate;
    * "equality": A = [a; a] with c = [1, 2] (inconsistent, rank-deficient A);
    * "mixed": Σz = n + 1 with 0 ≤ z ≤ 1 (each part feasible alone).
    """
    kinds = ("rows", "bounds", "equality", "mixed")
    if kind not in kinds:
        raise ValueError(f"kind must be one of {kinds}, got {kind!r}")
    shape, B, rng = _qp_rng(batch, n, 0, 0, seed, 12 + kinds.index(kind))
    N, U = rng.standard_normal, rng.uniform
    M = N((B, n, n))
    Q = _sym(M @ np.swapaxes(M, -1, -2) / n + 0.1 * np.eye(n))
    q = N((B, n))
    out: dict[str, Any] = {"Q": Q, "q": q, "A": None, "c": None, "G": None, "h": None}
    out["lb"] = out["ub"] = None
    if kind == "rows":
        g, G0 = N((B, 1, n)), N((B, 3, n))
        t = N((B, 1))
        out["G"] = np.concatenate([g, -g, G0], axis=1)
        out["h"] = np.concatenate([t - 1, -t - 1, U(1.0, 2.0, (B, 3))], axis=1)
    elif kind == "bounds":
        lb = -U(1.0, 2.0, (B, n))
        ub = U(1.0, 2.0, (B, n))
        j = rng.integers(0, n, B)
        ub[np.arange(B), j] = lb[np.arange(B), j] - U(0.1, 1.0, B)
        out["lb"], out["ub"] = lb, ub
    elif kind == "equality":
        a = N((B, 1, n))
        out["A"] = np.concatenate([a, a], axis=1)
        out["c"] = np.broadcast_to([1.0, 2.0], (B, 2)).copy()
    else:
        out["A"] = np.ones((B, 1, n))
        out["c"] = np.full((B, 1), n + 1.0)
        out["lb"], out["ub"] = np.zeros((B, n)), np.ones((B, n))
    return {k: None if v is None else v.reshape(shape + v.shape[1:]) for k, v in out.items()}


def unbounded_qp(batch: Batch, n: int, m: int = 0, p: int = 0, *, seed: int = 0) -> dict:
    """Random feasible but unbounded (dual-infeasible) convex QPs, a dict Q, q, A, c, G, h,
    lb: a direction v with Qv = 0, Av = 0, Gv ≤ 0 and lb finite only where v ≥ 0, and
    qᵀv = −‖v‖² < 0, so the objective decreases without bound along z₀ + tv (m < n − 1).

    Q = P MMᵀ P/n with P = I − vvᵀ/‖v‖² (positive semidefinite, singular), A's rows projected
    on v⊥, G's rows flipped where Gv > 0, h = Gz₀ + U(0, 1), c = Az₀, lb = z₀ − U(0, 1)
    (−inf where v < 0), q = P q₀ − v.
    """
    if m >= n - 1:
        raise ValueError(f"need m < n - 1, got n = {n}, m = {m}")
    shape, B, rng = _qp_rng(batch, n, m, p, seed, 16)
    N, U = rng.standard_normal, rng.uniform
    v = N((B, n))
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    P = np.eye(n) - v[:, :, None] * v[:, None, :]
    M = N((B, n, n))
    Q = _sym(P @ M @ np.swapaxes(M, -1, -2) @ P / n)
    z0 = N((B, n))
    A = N((B, m, n)) @ P
    G = N((B, p, n))
    G = np.where(_matvec(G, v)[..., None] > 0, -G, G)
    q = _matvec(P, N((B, n))) - v
    lb = np.where(v >= 0, z0 - U(size=(B, n)), -np.inf)
    out = {
        "Q": Q,
        "q": q,
        "A": A,
        "c": _matvec(A, z0),
        "G": G,
        "h": _matvec(G, z0) + U(size=(B, p)),
        "lb": lb,
        "ub": None,
    }
    return {k: None if v is None else v.reshape(shape + v.shape[1:]) for k, v in out.items()}


# --------------------------------------------------------------------------------------------
# an independent answer: Clarabel at tol 1e-10, polished on its active set


def clarabel_qp(
    Q: Any,
    q: Any,
    *,
    A: Any = None,
    c: Any = None,
    G: Any = None,
    h: Any = None,
    lb: Any = None,
    ub: Any = None,
    tol: float = 1e-10,
    polish: bool = True,
) -> dict:
    """Solve a batch of QPs (``solve_qp``'s arguments) one by one with Clarabel (an
    interior-point conic solver, tolerances ``tol``; needs the ``clarabel`` package) and,
    with ``polish``, replace each answer by the exact optimum on its active set (rows whose
    multiplier exceeds their slack, solved as one equality-constrained KKT system by least
    squares), kept only when it is feasible and its multipliers have the right signs to
    1e-9 (relative); this is BENCH_QP.md's reference.

    Returns a dict z, lam, mu, nu (float64, NaN where not solved) and status (int32, the
    batch shape; fastkkt's codes: 0 solved, 1 primal infeasible, 2 dual infeasible, 3
    anything else) and polished (bool, the batch shape).
    """
    import clarabel
    import scipy.sparse as sp

    Q, q = np.asarray(Q, np.float64), np.asarray(q, np.float64)
    n = q.shape[-1]
    A = np.zeros((*Q.shape[:-2], 0, n)) if A is None else np.asarray(A, np.float64)
    c = np.zeros(A.shape[:-1]) if c is None else np.asarray(c, np.float64)
    G = np.zeros((*Q.shape[:-2], 0, n)) if G is None else np.asarray(G, np.float64)
    h = np.zeros(G.shape[:-1]) if h is None else np.asarray(h, np.float64)
    lb = np.full(n, -np.inf) if lb is None else np.asarray(lb, np.float64)
    ub = np.full(n, np.inf) if ub is None else np.asarray(ub, np.float64)
    m, p = A.shape[-2], G.shape[-2]
    batch = np.broadcast_shapes(
        Q.shape[:-2], q.shape[:-1], A.shape[:-2], c.shape[:-1], G.shape[:-2], h.shape[:-1],
        lb.shape[:-1] if lb.ndim else (), ub.shape[:-1] if ub.ndim else (),
    )  # fmt: skip
    Q = np.broadcast_to(Q, (*batch, n, n))
    q = np.broadcast_to(q, (*batch, n))
    A, c = np.broadcast_to(A, (*batch, m, n)), np.broadcast_to(c, (*batch, m))
    G, h = np.broadcast_to(G, (*batch, p, n)), np.broadcast_to(h, (*batch, p))
    lb, ub = np.broadcast_to(lb, (*batch, n)), np.broadcast_to(ub, (*batch, n))
    out = {
        "z": np.full((*batch, n), np.nan),
        "lam": np.full((*batch, m), np.nan),
        "mu": np.full((*batch, p), np.nan),
        "nu": np.full((*batch, n), np.nan),
        "status": np.full(batch, MAX_ITER, dtype=np.int32),
        "polished": np.zeros(batch, dtype=bool),
    }
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = tol
    settings.tol_ktratio = min(settings.tol_ktratio, tol)
    settings.max_iter = 500
    statuses = {
        clarabel.SolverStatus.Solved: QP_SOLVED,
        clarabel.SolverStatus.PrimalInfeasible: PRIMAL_INFEASIBLE,
        clarabel.SolverStatus.DualInfeasible: DUAL_INFEASIBLE,
    }
    eye = np.eye(n)
    for idx in np.ndindex(*batch):
        g_rows, u_rows, l_rows = np.isfinite(h[idx]), np.isfinite(ub[idx]), np.isfinite(lb[idx])
        if (lb[idx] > ub[idx]).any():
            out["status"][idx] = PRIMAL_INFEASIBLE
            continue
        C = np.vstack([G[idx][g_rows], eye[u_rows], -eye[l_rows]])
        d = np.concatenate([h[idx][g_rows], ub[idx][u_rows], -lb[idx][l_rows]])
        Qs = (Q[idx] + Q[idx].T) / 2
        solver = clarabel.DefaultSolver(
            sp.triu(sp.csc_matrix(Qs)).tocsc(),
            q[idx],
            sp.csc_matrix(np.vstack([A[idx], C])),
            np.concatenate([c[idx], d]),
            [clarabel.ZeroConeT(m), clarabel.NonnegativeConeT(len(d))],
            settings,
        )
        sol = solver.solve()
        out["status"][idx] = statuses.get(sol.status, MAX_ITER)
        if sol.status != clarabel.SolverStatus.Solved:
            continue
        z, y = np.array(sol.x), np.array(sol.z)
        lam, w = y[:m], y[m:]
        if polish:
            polished = _polish_active_set(Qs, q[idx], A[idx], c[idx], C, d, z, lam, w)
            if polished is not None:
                z, lam, w = polished
                out["polished"][idx] = True
        mu = np.zeros(p)
        mu[g_rows] = w[: g_rows.sum()]
        nu = np.zeros(n)
        nu[u_rows] += w[g_rows.sum() : g_rows.sum() + u_rows.sum()]
        nu[l_rows] -= w[g_rows.sum() + u_rows.sum() :]
        out["z"][idx], out["lam"][idx], out["mu"][idx], out["nu"][idx] = z, lam, mu, nu
    return out


def _polish_active_set(Q, q, A, c, C, d, z, lam, w):
    """(z, λ, w) solving the KKT system with the rows w > slack as equalities, or None when
    that point is infeasible or has a negative multiplier (beyond 1e-9, relative)."""
    n, m = len(q), len(c)
    active = w > d - C @ z
    Ca = C[active]
    K = np.block(
        [
            [Q, A.T, Ca.T],
            [A, np.zeros((m, m + len(Ca)))],
            [Ca, np.zeros((len(Ca), m + len(Ca)))],
        ]
    )
    x = np.linalg.lstsq(K, np.concatenate([-q, c, d[active]]), rcond=None)[0]
    zp, lp = x[:n], x[n : n + m]
    wp = np.zeros(len(d))
    wp[active] = x[n + m :]
    feasible = (C @ zp - d <= 1e-9 * (1 + np.abs(d).max(initial=0))).all()
    signs = (wp >= -1e-9 * (1 + np.abs(q).max(initial=0))).all()
    if feasible and signs and np.isfinite(x).all():
        return zp, lp, np.maximum(wp, 0.0)
    return None


def assert_qp_kkt(problem: dict, z: Any, lam: Any, mu: Any, nu: Any, tol: float) -> None:
    """Assert that every element of (z, λ, μ, ν) solves ``problem`` (a dict of solve_qp's
    arguments, extra keys ignored) to ``tol``: the three measures of
    :func:`qp_kkt_residuals` ≤ tol, and per row, with ε = tol·(1 + ‖q‖∞ + ‖Qz‖∞ + ‖ν‖∞ +
    ‖Gᵀμ‖∞) (scale of the dual residual): μ ≥ −ε; μᵢ·slackᵢ ≤ ε·(1 + slack scale);
    ν ≤ ε where ub = +inf (or absent), ν ≥ −ε where lb = −inf (or absent);
    ν₊·(ub − z) and ν₋·(z − lb) ≤ ε·(1 + ‖z‖∞ + bound scale) (ν = 0 off the bounds)."""
    f64 = np.float64
    P = {k: problem.get(k) for k in ("Q", "q", "A", "c", "G", "h", "lb", "ub")}
    z, lam, mu, nu = (np.asarray(x, f64) for x in (z, lam, mu, nu))
    assert np.isfinite(z).all(), "z is not finite"
    p, d, g = qp_kkt_residuals(P["Q"], P["q"], z, lam, mu, nu, **{k: P[k] for k in "AcGh"},
                               lb=P["lb"], ub=P["ub"])  # fmt: skip
    for name, r in (("primal", p), ("dual", d), ("gap", g)):
        worst = float(np.max(r, initial=0.0))
        assert worst <= tol, f"{name} residual {worst:.3g} > tol = {tol:g}"
    Q = np.asarray(P["Q"], f64)
    Qz = _matvec((Q + np.swapaxes(Q, -1, -2)) / 2, z)
    eps = tol * (1 + np.maximum.reduce([_inf_norm(np.asarray(P["q"], f64) + 0 * z), _inf_norm(Qz),
                                        _inf_norm(nu)]))  # fmt: skip
    if P["G"] is not None and mu.shape[-1] > 0:
        G, h = np.asarray(P["G"], f64), np.asarray(P["h"], f64)
        eps = np.maximum(eps, tol * _inf_norm(_matvec(np.swapaxes(G, -1, -2), mu)))
        slack = np.where(np.isfinite(h), h - _matvec(G, z), np.inf)
        assert (mu >= -eps[..., None]).all(), f"negative μ: min {mu.min():.3g}"
        scale = 1 + np.maximum(_inf_norm(np.where(np.isfinite(h), h, 0.0)), _inf_norm(z))
        prod = mu * np.maximum(np.where(np.isfinite(slack), slack, 0.0), 0.0)
        assert (prod <= (eps * scale)[..., None]).all(), f"μ∘slack up to {prod.max():.3g}"
        assert (np.where(np.isinf(slack), np.abs(mu), 0.0) <= eps[..., None]).all(), (
            "μ ≠ 0 on a row with h = +inf"
        )
    for bound, sign in ((P["ub"], 1.0), (P["lb"], -1.0)):
        part = np.maximum(sign * nu, 0.0)
        if bound is None:
            assert (part <= eps[..., None]).all(), "ν has the sign of a bound that is absent"
            continue
        b = np.broadcast_to(np.asarray(bound, f64), z.shape)
        dist = np.where(np.isfinite(b), sign * (b - z), np.inf)
        assert (np.where(np.isinf(dist), part, 0.0) <= eps[..., None]).all(), (
            "ν has the sign of an infinite bound"
        )
        scale = 1 + np.maximum(_inf_norm(np.where(np.isfinite(b), b, 0.0)), _inf_norm(z))
        prod = part * np.maximum(np.where(np.isfinite(dist), dist, 0.0), 0.0)
        assert (prod <= (eps * scale)[..., None]).all(), f"ν∘(distance to bound) {prod.max():.3g}"
