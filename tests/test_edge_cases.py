"""One named test per edge case, each against the reference or a closed form."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastkkt
from fastkkt import reference
from fastkkt.testing import assert_allclose_normwise, random_qp


def _check(Q, q, A, c, rtol=1e-12):
    """fastkkt.solve agrees with the reference (values, shapes and dtypes)."""
    z, lam = fastkkt.solve(Q, q, A, c, return_multipliers=True)
    zr, lr = reference.solve(Q, q, A, c, return_multipliers=True)
    assert (z.dtype, lam.dtype) == (zr.dtype, lr.dtype)
    assert_allclose_normwise(z, zr, rtol)
    assert_allclose_normwise(lam, lr, rtol)
    return z, lam


def test_unconstrained_m_zero():
    Q, q, A, c = random_qp(6, 5, 0, seed=1)
    assert A.shape == (6, 0, 5)
    z, lam = _check(Q, q, A, c)
    assert lam.shape == (6, 0)
    for i in range(6):  # z = −Q⁻¹q
        assert_allclose_normwise(z[i], np.linalg.solve(Q[i], -q[i]), 1e-12)


def test_single_variable():
    # minimize z² − 4z (Q = 2, q = −4): z = 2; with the constraint 3z = 3: z = 1 and
    # 2·1 + 3λ = 4, λ = 2/3.
    z = fastkkt.solve([[2.0]], [-4.0], np.zeros((0, 1)), np.zeros(0))
    np.testing.assert_allclose(z, [2.0], rtol=1e-15)
    z, lam = fastkkt.solve([[2.0]], [-4.0], [[3.0]], [3.0], return_multipliers=True)
    np.testing.assert_allclose(z, [1.0], rtol=1e-15)
    np.testing.assert_allclose(lam, [2 / 3], rtol=1e-15)
    _check(*random_qp(20, 1, 0, seed=2))
    _check(*random_qp(20, 1, 1, seed=3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_empty_batch(dtype):
    Q, q, A, c = random_qp(0, 4, 2, dtype=dtype)
    assert Q.shape == (0, 4, 4)
    z, lam = fastkkt.solve(Q, q, A, c, return_multipliers=True)
    assert (z.shape, lam.shape) == ((0, 4), (0, 2))
    assert z.dtype == lam.dtype == dtype
    z, lam, info = fastkkt.solve_ex(Q, q, A, c)
    assert (z.shape, lam.shape, info.shape) == ((0, 4), (0, 2), (0,))
    assert info.dtype == np.int32
    # An empty batch dimension that broadcasts against a shared Q and A.
    Q1, _q1, A1, c1 = random_qp((), 4, 2, dtype=dtype)
    z = fastkkt.solve(Q1, np.zeros((3, 0, 4), dtype), A1, c1)
    assert z.shape == (3, 0, 4)
    assert z.dtype == dtype
    F = fastkkt.factorize(Q, A)
    assert F.batch_shape == (0,)
    assert F.solve(q, c).shape == (0, 4)


def test_singular_q_regular_on_null_space():
    # Q = diag(1, 0), A = [[0, 1]]: z₂ = c, z₁ = −q₁, λ = −q₂.
    z, lam = fastkkt.solve(
        np.diag([1.0, 0.0]), [2.0, 3.0], [[0.0, 1.0]], [5.0], return_multipliers=True
    )
    np.testing.assert_allclose(z, [-2.0, 5.0], rtol=1e-15)
    np.testing.assert_allclose(lam, [-3.0], rtol=1e-15)


def test_zero_diagonal():
    # Every diagonal entry of K is zero, so LDLᵀ needs pivoting. Q = [[0, 1], [1, 0]] is
    # indefinite but positive on null(A) = span{(1, 1)}.
    Q = np.array([[0.0, 1.0], [1.0, 0.0]])
    A = np.array([[1.0, -1.0]])
    q = np.array([-2.0, -4.0])
    # z₁ = z₂ + 1 (c = 1); minimize z₁z₂ − 2z₁ − 4z₂ ⇒ 2z₂ + 1 − 6 = 0: z₂ = 2.5, z₁ = 3.5;
    # λ from the first row z₂ + λ = 2: λ = −0.5.
    z, lam = fastkkt.solve(Q, q, A, [1.0], return_multipliers=True)
    np.testing.assert_allclose(z, [3.5, 2.5], rtol=1e-14)
    np.testing.assert_allclose(lam, [-0.5], rtol=1e-14)


def test_dependent_rows_raise_kkterror():
    Q, q, A, c = random_qp(5, 6, 3, seed=4)
    A[2, 2] = 2.0 * A[2, 0] - A[2, 1]  # rank 2 in element 2
    A[4, 1] = A[4, 0]  # duplicated row in element 4
    with pytest.raises(fastkkt.KKTError) as excinfo:
        fastkkt.solve(Q, q, A, c)
    assert excinfo.value.indices == [(2,), (4,)]
    _z, _lam, info = fastkkt.solve_ex(Q, q, A, c)
    np.testing.assert_array_equal(info, [0, 0, 1, 0, 1])
    np.testing.assert_array_equal(info, reference.solve_ex(Q, q, A, c)[2])


def test_saddle_point_raises_kkterror():
    # Q = diag(1, −1, 1), A = [[1, 0, 0]]: on null(A) = span{e₂, e₃} Q is diag(−1, 1).
    Q = np.diag([1.0, -1.0, 1.0])
    args = (Q, np.ones(3), [[1.0, 0.0, 0.0]], [1.0])
    with pytest.raises(fastkkt.KKTError) as excinfo:
        fastkkt.solve(*args)
    assert excinfo.value.indices == [()]
    z, lam, info = fastkkt.solve_ex(*args)
    assert info.shape == ()
    assert info == 2
    assert np.isnan(z).all()
    assert np.isnan(lam).all()
    # Unconstrained negative definite Q: a maximum.
    _, _, info = fastkkt.solve_ex(-np.eye(3), np.ones(3), np.zeros((0, 3)), np.zeros(0))
    assert info == 2


def test_nonsymmetric_q_solved_as_symmetric_part():
    Q, q, A, c = random_qp(8, 7, 3, seed=5)
    rng = np.random.default_rng(5)
    S = rng.standard_normal((8, 7, 7))
    Qn = Q + (S - np.swapaxes(S, -1, -2))  # same symmetric part, up to rounding
    z = fastkkt.solve(Qn, q, A, c)
    assert_allclose_normwise(z, reference.solve(Qn, q, A, c), 1e-12)
    assert_allclose_normwise(z, reference.solve(Q, q, A, c), 1e-12)


def test_float32_dtype_and_accuracy():
    Q, q, A, c = random_qp(64, 12, 4, seed=6, dtype=np.float32)
    z, lam = fastkkt.solve(Q, q, A, c, return_multipliers=True)
    assert z.dtype == lam.dtype == np.float32
    zr, lr = reference.solve(Q, q, A, c, return_multipliers=True)
    assert_allclose_normwise(z, zr, 1e-4)
    assert_allclose_normwise(lam, lr, 1e-4)


def test_mixed_float32_float64_promotes():
    Q, q, A, c = random_qp(4, 5, 2, seed=7)
    args = (Q.astype(np.float32), q, A.astype(np.float32), c.astype(np.float32))
    z = fastkkt.solve(*args)
    assert z.dtype == np.float64
    assert_allclose_normwise(z, reference.solve(*args), 1e-12)


def test_integer_and_bool_inputs_become_float64():
    Q = np.array([[2, 0], [0, 4]], dtype=np.int32)
    q = np.array([-2, -4], dtype=np.int64)
    A = np.array([[True, True]])
    c = np.array([1], dtype=np.int8)
    z, lam = _check(Q, q, A, c)
    assert z.dtype == lam.dtype == np.float64
    # 2z₁ + λ = 2, 4z₂ + λ = 4, z₁ + z₂ = 1: λ = 4/3, z = (1/3, 2/3).
    z, lam = fastkkt.solve([[2, 0], [0, 4]], [-2, -4], [[1, 1]], [1], return_multipliers=True)
    assert z.dtype == np.float64
    np.testing.assert_allclose(z, [1 / 3, 2 / 3], rtol=1e-15)
    np.testing.assert_allclose(lam, [4 / 3], rtol=1e-15)


def test_fortran_order():
    Q, q, A, c = random_qp((3, 4), 6, 2, seed=8)
    F = [np.asfortranarray(x) for x in (Q, q, A, c)]
    assert not F[0].flags.c_contiguous
    np.testing.assert_array_equal(fastkkt.solve(*F), fastkkt.solve(Q, q, A, c))
    _check(*F)


def test_negative_and_non_unit_strides():
    Q, q, A, c = random_qp(6, 5, 2, seed=9)
    Qr, qr, Ar, cr = Q[::-1, ::-1, ::-1], q[::-1, ::-1], A[::-1, ::-1, ::-1], c[::-1, ::-1]
    assert Qr.strides[0] < 0
    _check(Qr, qr, Ar, cr)
    big_Q = np.zeros((12, 10, 10))
    big_Q[::2, ::2, ::2] = Q
    big_q = np.zeros((6, 15))
    big_q[:, ::3] = q
    _check(big_Q[::2, ::2, ::2], big_q[:, ::3], A[:, :, :], c)
    # A transposed view: non-symmetric-looking strides of a symmetric matrix.
    _check(np.swapaxes(Q, -1, -2), q, A, c)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_large_system_layout_does_not_change_the_bits(dtype):
    """n + m ≥ 176 (the tiled kernel, whose assembly reads Q in blocks with register transposes
    where rows are contiguous): C order, Fortran order, a transposed view and a strided view of
    the same Q give the same bits, and agree with the reference. n = 187 leaves rows past the
    last whole block."""
    Q, q, A, c = random_qp(2, 187, 13, seed=40, dtype=dtype)
    S = np.triu(np.ones((187, 187), dtype), 1)
    Q = Q + 0.01 * (S - S.T)  # not symmetric: both triangles matter
    z, lam = _check(Q, q, A, c, rtol=1e-11 if dtype == np.float64 else 1e-3)
    big = np.zeros((2, 2 * 187, 3 * 187), dtype)
    big[:, ::2, ::3] = Q
    for Qv in (np.asfortranarray(Q), np.swapaxes(np.swapaxes(Q, -1, -2).copy(), -1, -2),
               big[:, ::2, ::3]):  # fmt: skip
        z2, lam2 = fastkkt.solve(Qv, q, np.asfortranarray(A), c, return_multipliers=True)
        np.testing.assert_array_equal(z2, z)
        np.testing.assert_array_equal(lam2, lam)


@pytest.mark.parametrize(("where", "name"), [((5, 3), "Q"), ((150, 20), "Q"), ((186, 186), "Q"),
                                             ((185, 2), "Q"), (None, "A")])  # fmt: skip
def test_large_system_non_finite_input_is_named(where, name):
    """NaN anywhere in Q of a large system — inside a block, in a diagonal block, in the rows
    past the last whole block — or in A is reported as such (and solved as given without the
    check)."""
    Q, q, A, c = random_qp((), 187, 13, seed=41)
    if where is None:
        A[4, 100] = np.nan
    else:
        Q[where] = np.nan
    with pytest.raises(ValueError, match=name):
        fastkkt.solve(Q, q, A, c)
    z, _, info = fastkkt.solve_ex(Q, q, A, c, check_finite=False)
    assert np.isnan(z).any() or info != 0


@pytest.mark.parametrize("dtype", [">f8", ">f4"])
def test_non_native_byte_order(dtype):
    Q, q, A, c = random_qp(5, 6, 3, seed=10, dtype=np.dtype(dtype).newbyteorder("=").type)
    swapped = [x.astype(dtype) for x in (Q, q, A, c)]
    assert not swapped[0].dtype.isnative
    z, lam = fastkkt.solve(*swapped, return_multipliers=True)
    z_native, lam_native = fastkkt.solve(Q, q, A, c, return_multipliers=True)
    assert z.dtype.isnative
    assert z.dtype == z_native.dtype
    np.testing.assert_array_equal(z, z_native)
    np.testing.assert_array_equal(lam, lam_native)
    _check(*swapped, rtol=1e-12 if dtype == ">f8" else 1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("how", ["pickled", "explicit native order", "with metadata"])
def test_equal_but_distinct_dtype_objects(how, dtype):
    """Arrays whose dtype equals float64/float32 without being NumPy's own descriptor object
    (after pickle.loads, with an explicit native byte order as zarr returns them, or with
    metadata) are accepted, and solved bitwise as the usual ones."""
    args = random_qp(4, 6, 2, seed=12, dtype=dtype)
    if how == "pickled":
        other = pickle.loads(pickle.dumps(args))
    else:
        d = np.dtype(dtype).newbyteorder("=") if how == "explicit native order" else None
        d = d if d is not None else np.dtype(dtype, metadata={"source": "test"})
        other = tuple(x.view(d) for x in args)
    assert other[0].dtype == np.dtype(dtype)
    assert other[0].dtype is not np.dtype(dtype)
    z, lam, info = fastkkt.solve_ex(*other)
    for got, want in zip((z, lam, info), fastkkt.solve_ex(*args)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_read_only_inputs():
    args = random_qp(4, 6, 2, seed=11)
    for x in args:
        x.flags.writeable = False
    _check(*args)
    F = fastkkt.factorize(args[0], args[2])
    F.solve(args[1], args[3])
    fastkkt.solve_ex(*args)


def test_inputs_not_modified():
    Q, q, A, c = random_qp(4, 6, 2, seed=12)
    S = np.triu(np.ones((6, 6)), 1)
    Q = Q + (S - S.T)  # non-symmetric: tempting to symmetrize in place
    args = [Q, q, A, c]
    copies = [x.copy() for x in args]
    fastkkt.solve(*args)
    fastkkt.solve_ex(*args)
    F = fastkkt.factorize(Q, A)
    F.solve(q, c)
    for x, y in zip(args, copies):
        np.testing.assert_array_equal(x, y)
    # Also when the inputs are already in the compute dtype and layout of a float32 call.
    args32 = [x.astype(np.float32) for x in args]
    copies32 = [x.copy() for x in args32]
    fastkkt.solve_ex(*args32)
    for x, y in zip(args32, copies32):
        np.testing.assert_array_equal(x, y)


def test_more_constraints_than_variables_is_singular():
    Q, q, A, c = random_qp(3, 3, 5, seed=13)
    _, _, info = fastkkt.solve_ex(Q, q, A, c)
    np.testing.assert_array_equal(info, [1, 1, 1])
    np.testing.assert_array_equal(reference.solve_ex(Q, q, A, c)[2], [1, 1, 1])
    with pytest.raises(fastkkt.KKTError):
        fastkkt.solve(Q, q, A, c)


def test_zero_matrix_is_singular():
    _, _, info = fastkkt.solve_ex(np.zeros((3, 3)), np.ones(3), np.zeros((0, 3)), np.zeros(0))
    assert info == 1


def test_nan_with_check_finite_false_is_not_garbage():
    Q, q, A, c = random_qp(4, 5, 2, seed=14)
    q[2, 1] = np.nan
    z, _lam, info = fastkkt.solve_ex(Q, q, A, c, check_finite=False)
    assert np.isnan(z[2]).any()  # a NaN input gives a NaN answer, never a finite one
    ok = [0, 1, 3]
    np.testing.assert_array_equal(info[ok], 0)
    assert_allclose_normwise(z[ok], reference.solve(Q[ok], q[ok], A[ok], c[ok]), 1e-12)


@pytest.mark.parametrize("small", [np.int8, np.uint8, np.int16, np.bool_])
def test_float32_with_small_integers_stays_float32(small):
    """Promotion as NumPy's: float32 with int8, uint8, int16 or bool is float32 (it was
    computed in float64), as in fastkkt.reference and fastkkt.torch."""
    Q, q, A, c = random_qp(4, 5, 2, seed=3, dtype=np.float32)
    c_small = np.ones_like(c, dtype=small)
    z = fastkkt.solve(Q, q, A, c_small)
    assert z.dtype == np.result_type(Q, c_small) == np.float32
    assert_allclose_normwise(z, reference.solve(Q, q, A, c_small), 1e-5)
    F = fastkkt.factorize(Q, A)
    assert F.solve(q, c_small).dtype == np.float32


def test_float32_factorization_with_float64_right_hand_sides():
    """F.solve with float64 q, c on a float32 factorization computes in float64, exactly as
    fastkkt.solve(Q, q, A, c) does (it used to round q and c to float32)."""
    Q, q, A, c = random_qp(6, 8, 3, seed=21)
    Q32, A32 = Q.astype(np.float32), A.astype(np.float32)
    F = fastkkt.factorize(Q32, A32)
    z, lam = F.solve(q, c, return_multipliers=True)
    zs, lams = fastkkt.solve(Q32, q, A32, c, return_multipliers=True)
    assert z.dtype == lam.dtype == np.float64
    np.testing.assert_array_equal(z, zs)
    np.testing.assert_array_equal(lam, lams)
    assert_allclose_normwise(z, reference.solve(Q32, q, A32, c), 1e-12)
    # float32 right-hand sides still use the float32 factorization
    assert F.solve(q.astype(np.float32), c.astype(np.float32)).dtype == np.float32
