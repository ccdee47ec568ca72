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
