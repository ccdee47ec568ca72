"""fastkkt.torch inputs: dtypes promote as NumPy promotes them (fastkkt._validate), Python
lists are what numpy.asarray makes of them, and tensors it cannot solve with (nested, sparse,
meta, complex) get clear errors naming the argument."""

from __future__ import annotations

import itertools
import sys
import typing

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastkkt  # noqa: E402
import fastkkt.torch as ft  # noqa: E402
from fastkkt._validate import compute_dtype, compute_itemsize  # noqa: E402
from fastkkt.testing import random_qp  # noqa: E402

# An integer-valued problem (n = 3, m = 1), exactly representable in every dtype below
# (c = 1 also as bool), with a positive definite Q.
_Q = [[4, 1, 0], [1, 3, 1], [0, 1, 2]]
_q = [1, -2, 1]
_A = [[1, 1, 1]]
_c = [1]
_Z = fastkkt.reference.solve(*(np.array(x, dtype=np.float64) for x in (_Q, _q, _A, _c)))

f16, f32, f64, bf16 = torch.float16, torch.float32, torch.float64, torch.bfloat16
i8, u8, i16, i32, i64 = torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64
b = torch.bool

# dtypes of (Q, q, A, c) and the dtype NumPy's promotion gives to the solve
PROMOTIONS = [
    ((f32, f32, f32, f32), f32),
    ((f32, f32, i8, f32), f32),  # NumPy: float32 + int8 = float32
    ((f32, f32, u8, f32), f32),
    ((f32, i16, f32, f32), f32),
    ((f32, f32, f32, b), f32),  # bool never widens a float
    ((f32, f32, i32, f32), f64),  # float32 + int32 = float64
    ((f32, i64, f32, f32), f64),
    ((f16, f16, f16, f16), f32),  # float16 is computed in float32
    ((f16, i16, f16, f16), f32),
    ((f16, f16, f16, f64), f64),
    ((i64, i64, i64, i64), f64),  # integers become float64
    ((i8, i8, i8, b), f64),
    ((bf16, f32, f32, f32), f32),  # no NumPy bfloat16: promotes as float16
]


def _numpy_rule(dtypes):
    """The contract's rule straight from NumPy: result_type, float32 if it is a float of at
    most 32 bits, else float64."""
    r = np.result_type(*dtypes)
    return np.float32 if r.kind == "f" and r.itemsize <= 4 else np.float64


@pytest.mark.parametrize(("dtypes", "expected"), PROMOTIONS, ids=lambda x: str(x))
def test_promotion_as_numpy(dtypes, expected):
    if bf16 not in dtypes:  # the table itself against NumPy
        np_dtypes = [torch.empty(0, dtype=d).numpy().dtype for d in dtypes]
        assert _numpy_rule(np_dtypes) == torch.empty(0, dtype=expected).numpy().dtype
    inputs = [torch.tensor(x).to(d) for x, d in zip((_Q, _q, _A, _c), dtypes)]
    z = ft.solve(*inputs)
    assert z.dtype == expected
    tol = 1e-5 if expected == f32 else 1e-13
    np.testing.assert_allclose(z.double().numpy(), _Z, rtol=tol)


def test_gradients_come_back_in_each_input_dtype():
    Q = torch.tensor(_Q, dtype=f16, requires_grad=True)
    q = torch.tensor(_q, dtype=f32, requires_grad=True)
    z = ft.solve(Q, q, torch.tensor(_A, dtype=i8), torch.tensor(_c, dtype=b))
    assert z.dtype == f32
    z.sum().backward()
    assert Q.grad.dtype == f16
    assert q.grad.dtype == f32


_NUMPY_DTYPES = [np.dtype(t) for t in "?bBhHiIlLefd"]


def test_compute_dtype_matches_numpy_result_type():
    """The plain-Python rule (used on torch dtypes) against numpy.result_type on every pair
    and triple of NumPy's bool, integer and float dtypes."""
    for k in (1, 2, 3):
        for dtypes in itertools.product(_NUMPY_DTYPES, repeat=k):
            want = _numpy_rule(dtypes)
            assert compute_dtype(dtypes) == want, dtypes
            assert compute_itemsize((d.kind, d.itemsize) for d in dtypes) == np.dtype(want).itemsize


def test_python_lists_are_float64_as_numpy_makes_them():
    """Lists next to float64 tensors: float64 like numpy.asarray, not rounded through torch's
    default float32 (which was off by ~1e-9)."""
    Q, q, A, c = random_qp((), 4, 2, seed=1)
    z = ft.solve(torch.tensor(Q), q.tolist(), torch.tensor(A), c.tolist())
    assert z.dtype == f64
    np.testing.assert_allclose(z.numpy(), fastkkt.reference.solve(Q, q, A, c), rtol=1e-13)
    # lists only: float64 as NumPy; int lists with float32 tensors: int64 -> float64
    assert ft.solve(Q.tolist(), q.tolist(), A.tolist(), c.tolist()).dtype == f64
    z = ft.solve(torch.tensor(_Q, dtype=f32), _q, torch.tensor(_A, dtype=f32), _c)
    assert z.dtype == f64
    np.testing.assert_allclose(z.numpy(), _Z, rtol=1e-13)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
@pytest.mark.parametrize("layout", [torch.strided, torch.jagged], ids=["strided", "jagged"])
def test_nested_tensor_is_a_type_error(layout):
    nested = torch.nested.nested_tensor([torch.zeros(2, 3), torch.zeros(1, 3)], layout=layout)
    Q, q, c = (torch.tensor(x, dtype=f64) for x in (_Q, _q, _c))
    with pytest.raises(TypeError, match=r"^A is a nested tensor; fastkkt.torch takes dense"):
        ft.solve(Q, q, nested, c)


def test_sparse_meta_and_complex_inputs():
    Q, q, A, c = (torch.tensor(x, dtype=f64) for x in (_Q, _q, _A, _c))
    with pytest.raises(TypeError, match=r"^Q has layout torch.sparse_coo; .*\.to_dense\(\)"):
        ft.solve(Q.to_sparse(), q, A, c)
    with pytest.raises(NotImplementedError, match=r"^c is a meta tensor .*CPU tensors only"):
        ft.solve(Q, q, A, c.to("meta"))
    with pytest.raises(TypeError, match=r"^q has dtype complex128; fastkkt solves real"):
        ft.solve(Q, np.array(_q, dtype=complex), A, c)
    with pytest.raises(TypeError, match=r"^q has dtype <U1"):
        ft.solve(Q, ["a", "b", "c"], A, c)
    with pytest.raises(ValueError, match=r"^A could not be converted to an array"):
        ft.solve(Q, q, [[1.0, 2.0], [1.0]], c)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="typing.get_overloads is Python 3.11+")
def test_solve_return_type_overloads():
    """What a type checker sees (mypy checks python/fastkkt in CI): solve returns a Tensor, or
    a (z, lam) pair with return_multipliers=True."""
    returns = {}
    for overload in typing.get_overloads(ft.solve):
        hints = typing.get_type_hints(overload)
        returns[hints["return_multipliers"]] = hints["return"]
    assert returns[typing.Literal[False]] is torch.Tensor
    assert returns[typing.Literal[True]] == tuple[torch.Tensor, torch.Tensor]
    assert returns[bool] == torch.Tensor | tuple[torch.Tensor, torch.Tensor]
