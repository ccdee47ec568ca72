"""Seeded problem generators and checks shared by the tests and the benchmarks.

``random_qp`` is *the* benchmark generator of BENCH.md; everything that needs random
problems calls it (or one of the hard-case generators below) instead of drawing its own.
Every generator is deterministic in its arguments.
"""

from __future__ import annotations

import math
from typing import Any, Union

import numpy as np

__all__ = [
    "assert_allclose_normwise",
    "ill_conditioned_qp",
    "indefinite_qp",
    "kkt_matrix",
    "kkt_residual",
    "loss_weights",
    "psd_qp",
    "random_qp",
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


def kkt_residual(Q: Any, q: Any, A: Any, c: Any, z: Any, lam: Any) -> np.ndarray:
    """Normwise backward error of (z, λ) for each batch element, computed in float64:

        ‖K x − b‖∞ / (‖K‖∞ ‖x‖∞ + ‖b‖∞),   x = [z; λ],  b = [−q; c].

    A backward-stable solver gives a small multiple of the unit roundoff of its dtype.
    Returns a float64 array of the broadcast batch shape (0 where K, x and b are all zero).
    """
    f64 = np.float64
    K = kkt_matrix(np.asarray(Q, f64), np.asarray(A, f64))
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
    r = np.abs((K @ x[..., None])[..., 0] - b).max(axis=-1, initial=0.0)
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
            terms.append(sign * (np.where(finite, bound, 0.0) * np.where(finite, part, 0.0)).sum(-1))

    def largest(xs: list) -> np.ndarray:
        return np.maximum.reduce(np.broadcast_arrays(*xs)) if len(xs) > 1 else xs[0]

    p = largest(primal) / (1 + largest(primal_scale))
    d = _inf_norm(grad) / (1 + largest(dual_scale))
    total = sum(terms[1:], terms[0])
    g = np.abs(total) / (1 + np.abs(zQz / 2 + qz) + largest([np.abs(t) for t in terms]))
    return p, d, g
