"""Status and solution do not depend on the units of Q and A, together or separately.

Scaling the objective (Q, q) by s_Q and the constraints (A, c) by s_A, powers of 2 so that the
scaled data are exact, leaves z unchanged and multiplies λ by s_Q/s_A; the status must not
change either. Independent scalings (Q of order 1e-15 against A of order 1, which LAPACK
solves to 5e-16) were reported singular until the Q and A blocks were equilibrated separately
before deciding singularity (issue #11 item 12; cpp/include/fastkkt/equilibrate.hpp).

The expected answers are independent of fastkkt: the pure-NumPy reference (LAPACK) on the
balanced, unscaled problem in float64, carried over to the scaled one by the exact relations
above (and, for gradients, the chain rule through them).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fastkkt
import fastkkt.reference
import fastkkt.torch
from fastkkt.testing import assert_allclose_normwise, random_qp

POWERS = [-50, -20, 0, 20, 50]
DTYPES = [np.float64, np.float32]
# normwise relative error of a float32 / float64 solve of these well-conditioned problems
# against the float64 reference, with a wide margin (any LAPACK build)
RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 2e-3}


def _problems(batch=24, n=8, m=3, seed=11, dtype=np.float64):
    Q, q, A, c = (x.copy() for x in random_qp(batch, n, m, seed=seed, dtype=dtype))
    if np.ndim(batch) == 0 and batch >= 6:
        A[::6, 2] = A[::6, 0]  # every 6th element singular (dependent rows of A)
    return Q, q, A, c


def _expected(Q, q, A, c):
    """z, λ, info of the balanced problem: the float64 reference (LAPACK)."""
    f64 = [np.asarray(x, np.float64) for x in (Q, q, A, c)]
    return fastkkt.reference.solve_ex(*f64)


def _scale(eq, ea, Q, q, A, c):
    """(Q, q)·2^eq and (A, c)·2^ea, exactly, in the dtype of the data."""
    return np.ldexp(Q, eq), np.ldexp(q, eq), np.ldexp(A, ea), np.ldexp(c, ea)


def _assert_matches(got, expected, eq, ea, dtype, what):
    z, lam, info = got
    z0, lam0, info0 = expected
    msg = f"{what}, {np.dtype(dtype).name}, s_Q = 2^{eq}, s_A = 2^{ea}"
    np.testing.assert_array_equal(info, info0, err_msg=msg)
    ok = info0 == 0
    assert np.isnan(z[~ok]).all(), msg
    assert np.isnan(lam[~ok]).all(), msg
    rtol = RTOL[np.dtype(dtype)]
    assert_allclose_normwise(z[ok], z0[ok], rtol, msg)
    # λ scales by s_Q / s_A: compare in the balanced units (an exact power-of-two rescaling)
    assert_allclose_normwise(np.ldexp(lam[ok].astype(np.float64), ea - eq), lam0[ok], rtol, msg)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("e", POWERS)
def test_status_invariant_to_a_common_scaling(e, dtype):
    P = _problems(dtype=dtype)
    _assert_matches(fastkkt.solve_ex(*_scale(e, e, *P)), _expected(*P), e, e, dtype, "solve_ex")


@pytest.mark.parametrize("dtype", DTYPES)
def test_status_invariant_to_independent_scalings(dtype):
    """Every pair of exponents: the small interleaved kernel (24 elements of n + m = 11)."""
    P = _problems(dtype=dtype)
    expected = _expected(*P)
    for eq in POWERS:
        for ea in POWERS:
            got = fastkkt.solve_ex(*_scale(eq, ea, *P))
            _assert_matches(got, expected, eq, ea, dtype, "solve_ex")


# (eq, ea) pairs far beyond where the unequilibrated factorization reported singular:
# Q tiny against A, Q huge against A, and a common shift on top of one of them
GAPS = [(-50, 0), (0, -50), (40, 0), (-30, 30), (-60, -110)]


def _paths(dtype):
    """(name, (Q, q, A, c)) for every kernel: interleaved groups (with a partial last group),
    the one-problem natural order, the tiled kernel (n + m = 200), and a shared (broadcast)
    Q and A with a batch of right-hand sides."""
    yield "interleaved", _problems(19, 8, 3, seed=12, dtype=dtype)
    yield "one problem", random_qp((), 10, 4, seed=13, dtype=dtype)
    yield "tiled", random_qp(2, 160, 40, seed=14, dtype=dtype)
    Q, _, A, _ = random_qp((), 9, 3, seed=15, dtype=dtype)
    _, q, _, c = random_qp(21, 9, 3, seed=16, dtype=dtype)
    yield "shared Q and A", (Q, q, A, c)


def _expected_broadcast(Q, q, A, c):
    batch = np.broadcast_shapes(Q.shape[:-2], q.shape[:-1], A.shape[:-2], c.shape[:-1])
    n, m = Q.shape[-1], A.shape[-2]
    return _expected(
        np.broadcast_to(Q, batch + (n, n)),
        q,
        np.broadcast_to(A, batch + (m, n)),
        np.broadcast_to(c, batch + (m,)),
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_kernel_and_entry_point_under_independent_scalings(dtype):
    for name, P in _paths(dtype):
        expected = _expected_broadcast(*P)
        assert (expected[2] == 0).any(), name
        for eq, ea in GAPS:
            Q, q, A, c = _scale(eq, ea, *P)
            _assert_matches(fastkkt.solve_ex(Q, q, A, c), expected, eq, ea, dtype, name)
            F = fastkkt.factorize(Q, A)
            np.testing.assert_array_equal(np.broadcast_to(F.info, expected[2].shape), expected[2])
            got = F.solve_ex(q, c)
            _assert_matches(got, expected, eq, ea, dtype, name + ", factorize + solve_ex")
            if (expected[2] == 0).all():
                z, lam = fastkkt.solve(Q, q, A, c, return_multipliers=True)
                np.testing.assert_array_equal(z, got[0])  # solve == factorize(...).solve
                np.testing.assert_array_equal(lam, got[1])
                z2, lam2 = F.solve(q, c, return_multipliers=True)
                np.testing.assert_array_equal(z2, z)
                np.testing.assert_array_equal(lam2, lam)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mixed_units_in_one_batch_give_each_element_its_own_answer(dtype):
    """Balanced and unbalanced elements side by side in the interleaved groups: every element
    is right, and gets exactly the bits it gets alone (whichever path the group takes)."""
    Q, q, A, c = _problems(24, 8, 3, seed=17, dtype=dtype)
    expected = _expected(Q, q, A, c)
    eq = np.array([0, -50, 0, 40, 3, -30, 0, 0] * 3)
    ea = np.array([0, 0, -50, 0, 1, 30, 0, -2] * 3)
    Qs, qs = np.ldexp(Q, eq[:, None, None]), np.ldexp(q, eq[:, None])
    As, cs = np.ldexp(A, ea[:, None, None]), np.ldexp(c, ea[:, None])
    z, lam, info = fastkkt.solve_ex(Qs, qs, As, cs)
    np.testing.assert_array_equal(info, expected[2])
    ok = info == 0
    rtol = RTOL[np.dtype(dtype)]
    lam_balanced = lam.astype(np.float64) * 2.0 ** (ea - eq)[:, None]
    for b in np.flatnonzero(ok):
        assert_allclose_normwise(z[b], expected[0][b], rtol, f"element {b}")
        assert_allclose_normwise(lam_balanced[b], expected[1][b], rtol, f"element {b}")
    for b in range(24):
        zb, lb, ib = fastkkt.solve_ex(Qs[b], qs[b], As[b], cs[b])
        assert ib == info[b]
        np.testing.assert_array_equal(zb, z[b])
        np.testing.assert_array_equal(lb, lam[b])
    zf, lf, inf = fastkkt.factorize(Qs, As).solve_ex(qs, cs)
    np.testing.assert_array_equal(inf, info)
    np.testing.assert_array_equal(zf, z)
    np.testing.assert_array_equal(lf, lam)


def _adjoint_gradients(Q, q, A, c, w, v):
    """∂ℓ/∂(Q, q, A, c) of ℓ = Σ w·z + Σ v·λ by the adjoint of the KKT system, in float64 with
    LAPACK (numpy.linalg.solve), independently of fastkkt."""
    Q, q, A, c, w, v = (np.asarray(x, np.float64) for x in (Q, q, A, c, w, v))
    n, m = Q.shape[-1], A.shape[-2]
    K = np.zeros(Q.shape[:-2] + (n + m, n + m))
    K[..., :n, :n] = (Q + np.swapaxes(Q, -1, -2)) / 2
    K[..., n:, :n] = A
    K[..., :n, n:] = np.swapaxes(A, -1, -2)
    x = np.linalg.solve(K, np.concatenate([-q, c], -1)[..., None])[..., 0]
    d = np.linalg.solve(K, -np.concatenate([w, v], -1)[..., None])[..., 0]
    z, lam, dz, dl = x[..., :n], x[..., n:], d[..., :n], d[..., n:]
    outer = lambda a, b: a[..., :, None] * b[..., None, :]  # noqa: E731
    dQ = 0.5 * (outer(dz, z) + outer(z, dz))
    dA = outer(dl, z) + outer(lam, dz)
    return dQ, dz, dA, -dl


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path", ["interleaved", "one problem", "tiled", "shared Q and A"])
def test_torch_gradients_under_independent_scalings(dtype, path):
    """The backward pass solves with the stored (equilibrated) factorization: gradients of
    ℓ = Σ w·z + Σ v·λ match the adjoint formula on the balanced problem, carried over by the
    chain rule (Q' = s_Q Q, A' = s_A A, λ' = (s_Q/s_A) λ, so ∂ℓ/∂Q' = ∂ℓ̃/∂Q / s_Q with
    ℓ̃ = Σ w·z + (s_Q/s_A) Σ v·λ, and likewise for q, A / s_A, c / s_A)."""
    P = dict(_paths(dtype))[path]
    rng = np.random.default_rng(21)
    n, m = P[0].shape[-1], P[2].shape[-2]
    batch = np.broadcast_shapes(P[0].shape[:-2], P[1].shape[:-1])
    w = rng.standard_normal(batch + (n,)).astype(dtype)
    v = rng.standard_normal(batch + (m,)).astype(dtype)
    if path == "interleaved":
        keep = np.flatnonzero(_expected(*P)[2] == 0)  # the singular elements get zero gradients
        P = tuple(x[keep] for x in P)
        w, v = w[keep], v[keep]
    rtol = RTOL[np.dtype(dtype)] * (1 if dtype == np.float64 else 5)
    # in float32 the adjoint of (−60, −110) is ~2^220 times λ': beyond the dtype, whatever
    # the factorization; these gaps are still far beyond where float32 went wrong (2^12)
    gaps = GAPS if dtype == np.float64 else [(-40, 0), (0, -40), (25, 0), (-20, 20), (-40, -70)]
    for eq, ea in gaps:
        Qs, qs, As, cs = _scale(eq, ea, *P)
        ts = [torch.tensor(x, requires_grad=True) for x in (Qs, qs, As, cs)]
        z, lam = fastkkt.torch.solve(*ts, return_multipliers=True)
        ((z * torch.from_numpy(w)).sum() + (lam * torch.from_numpy(v)).sum()).backward()
        r = 2.0 ** (eq - ea)
        bshape = w.shape[:-1]
        Pb = [np.broadcast_to(x, bshape + x.shape[-k:]) for x, k in zip(P, (2, 1, 2, 1))]
        want = list(_adjoint_gradients(*Pb, w, v * r))
        for i in range(4):  # a shared (broadcast) operand: its gradients summed over the batch
            want[i] = want[i].sum(axis=tuple(range(want[i].ndim - P[i].ndim)))
        for t, g, s, name in zip(ts, want, (eq, eq, ea, ea), "QqAc"):
            got = t.grad.numpy().astype(np.float64) * 2.0**s
            assert_allclose_normwise(
                got, g, rtol, f"d{name}, {path}, {np.dtype(dtype).name}, 2^{eq}, 2^{ea}"
            )


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_units_stay_finite_and_solved(dtype):
    """Q near the top of the dtype's range against A near the bottom, and the reverse: the
    equilibration exponents exceed the range of one scale factor (they are applied as
    exponents), and the problem is still solved."""
    P = random_qp(4, 6, 2, seed=23, dtype=dtype)
    top = np.finfo(dtype).maxexp - 8  # Q·2^top, q·2^top stay finite
    low = np.finfo(dtype).minexp + 8  # A·2^low, c·2^low stay normal
    expected = _expected(*P)
    tested = 0
    fi = np.finfo(dtype)
    pairs = [(top, low), (low, top), (top, 0), (low, 0), (0, top), (0, low)]
    for eq, ea in pairs + [(top, top - 60), (low + 60, low)]:
        with np.errstate(over="ignore", under="ignore"):
            lam = np.abs(np.ldexp(expected[1], eq - ea))
        if not (lam.max() < fi.max and lam.min() > fi.tiny / fi.eps):
            continue  # λ of the scaled problem is not representable in the dtype
        got = fastkkt.solve_ex(*_scale(eq, ea, *P))
        _assert_matches(got, expected, eq, ea, dtype, "extreme units")
        tested += 1
    assert tested >= 4


@pytest.mark.parametrize("e", [1e-12, 1e-14, 1e-16, 1e-20, 1e-30, 1e-35, 1e-40, 1e-100, 1e-300])
def test_tiny_q_beside_unit_q_and_a(e):
    """Q ~ e beside q ~ 1 and A ~ 1 (q not in Q's units): the equilibrated solve's z comes out
    of a cancellation and was 5e-4 (e = 1e-14) to 170 (e = 1e-20) off with status 0 before the
    refinement in the caller's units, and from e ~ 1e-30 on, where that refinement cannot
    repair it (z = -64 at 1e-35, 0 at 1e-100), until the unscaled pivoted fallback
    (drivers.hpp solve_element). z = c / a exactly here; also a 3×2 case against LAPACK
    (numpy.linalg.solve) on the KKT matrix."""
    Q, q = np.array([[e]]), np.array([-0.0481664])
    A, c = np.array([[-0.9990118]]), np.array([1.06504726])
    z, _lam, info = fastkkt.solve_ex(Q, q, A, c)
    assert info == 0
    np.testing.assert_allclose(z, c / A[0], rtol=1e-12)
    np.testing.assert_allclose(fastkkt.factorize(Q, A).solve(q, c), z, rtol=1e-12)
    rng = np.random.default_rng(5)
    Q3 = e * np.eye(3)
    q3, A3, c3 = rng.standard_normal(3), rng.standard_normal((2, 3)), rng.standard_normal(2)
    K = np.block([[Q3, A3.T], [A3, np.zeros((2, 2))]])
    x = np.linalg.solve(K, np.concatenate([-q3, c3]))
    z3, lam3, info3 = fastkkt.solve_ex(Q3, q3, A3, c3)
    assert info3 == 0
    assert_allclose_normwise(np.concatenate([z3, lam3]), x, rtol=1e-8)


@pytest.mark.parametrize("e", [1e-6, 1e-8, 1e-12, 1e-20, 1e-30, 1e-40])
def test_tiny_q_beside_unit_q_and_a_float32(e):
    """The same in float32: at e = 1e-12 the equilibrated solve stopped with z 6e-5 off
    (500 ε) and status 0, below the fallback's threshold when it was 1024 ε; now every e
    gives z = c / a to a few ε, from `solve` and from a stored factorization alike."""
    f32 = np.float32
    Q, q = np.array([[e]], f32), np.array([-0.0481664], f32)
    A, c = np.array([[-0.9990118]], f32), np.array([1.06504726], f32)
    z, _lam, info = fastkkt.solve_ex(Q, q, A, c)
    assert info == 0
    assert z.dtype == f32
    exact = np.float64(c[0]) / np.float64(A[0, 0])
    np.testing.assert_allclose(z.astype(np.float64), [exact], rtol=32 * np.finfo(f32).eps)
    np.testing.assert_array_equal(fastkkt.factorize(Q, A).solve(q, c), z)


def test_tiny_q_elements_in_a_batch_of_ordinary_ones():
    """Elements with Q = 1e-35·I and A square (z = A⁻¹c: equilibrated, then the unscaled
    fallback) among ordinary ones, in one batch, against LAPACK on each KKT matrix; every
    element gives the bits it gives alone, and a stored factorization the same bits."""
    rng = np.random.default_rng(7)
    B, n, m = 19, 3, 3
    Q, q, A, c = random_qp(B, n, m, seed=31)
    tiny = np.arange(B) % 3 == 1
    Q = np.where(tiny[:, None, None], 1e-35 * np.eye(n), Q)
    q = q + rng.standard_normal(q.shape)
    z, lam, info = fastkkt.solve_ex(Q, q, A, c)
    np.testing.assert_array_equal(info, 0)
    for b in range(B):
        K = np.block([[Q[b], A[b].T], [A[b], np.zeros((m, m))]])
        x = np.linalg.solve(K, np.concatenate([-q[b], c[b]]))
        assert_allclose_normwise(np.concatenate([z[b], lam[b]]), x, rtol=1e-9)
        zb, lb, _ = fastkkt.solve_ex(Q[b], q[b], A[b], c[b])
        np.testing.assert_array_equal(zb, z[b])
        np.testing.assert_array_equal(lb, lam[b])
    zf, lf = fastkkt.factorize(Q, A).solve(q, c, return_multipliers=True)
    np.testing.assert_array_equal(zf, z)
    np.testing.assert_array_equal(lf, lam)


@pytest.mark.parametrize(
    ("dtype", "decades", "bound"), [(np.float64, 150, 1e-12), (np.float32, 18, 1e-5)]
)
def test_random_units_never_solved_with_a_large_backward_error(dtype, decades, bound):
    """Q, q, A and c each scaled by an independent power of ten in [10^-d, 10^d) (d = 150 in
    float64, 18 in float32; 1 ≤ n ≤ 5, 0 ≤ m ≤ n): every element reported solved has a normwise
    backward error ‖b − Kx‖∞ / (‖K‖∞‖x‖∞ + ‖b‖∞) ≤ 1e-12 (float32: 1e-5), the residual of the
    data as given computed in extended precision (long double: no overflow). Before the
    unscaled fallback and the NaN-aware residual norm of solve_element, 236 (float32: 129) of
    3000 such draws came back solved with backward errors up to 1 (z = 1.1e201 for 6.9e-38).
    The draws reported singular (1) have solutions outside the dtype's range (checked once
    for all 168 of 3000 float64 draws with mpmath at 60 digits)."""
    if np.finfo(np.longdouble).maxexp < 2 * np.finfo(np.float64).maxexp:
        pytest.skip("long double here has no wider exponent than float64 (the residual overflows)")
    rng = np.random.default_rng(123)
    L = np.longdouble
    solved = 0
    for _ in range(400):
        n = int(rng.integers(1, 6))
        m = int(rng.integers(0, n + 1))
        M = rng.standard_normal((n, n))
        Q = M @ M.T / n + 0.1 * np.eye(n)
        q, A, c = rng.standard_normal(n), rng.standard_normal((m, n)), rng.standard_normal(m)
        scales = (10.0 ** rng.integers(-decades, decades, 4)).tolist()
        Q, q, A, c = ((x * s).astype(dtype) for x, s in zip((Q, q, A, c), scales))
        with np.errstate(all="ignore"):
            z, lam, info = fastkkt.solve_ex(Q, q, A, c)
        assert info in (0, 1)
        if info != 0:
            assert np.isnan(z).all()
            assert np.isnan(lam).all()
            continue
        solved += 1
        K = np.block([[Q, A.T], [A, np.zeros((m, m), dtype)]]).astype(L)
        b = np.concatenate([-q, c]).astype(L)
        x = np.concatenate([z, lam]).astype(L)
        scale = np.abs(K).sum(1).max() * np.abs(x).max() + np.abs(b).max()
        berr = np.abs(b - K @ x).max() / scale
        assert berr <= bound, (n, m, scales, float(berr))
    assert solved >= 350
