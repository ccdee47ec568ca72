"""Bad input gets a clear exception naming the argument and the shapes, never a crash."""

from __future__ import annotations

import re

import numpy as np
import pytest

import fastkkt
from fastkkt import reference
from fastkkt._errors import KKTError
from fastkkt.testing import failing_qp, random_qp

SOLVERS = {
    "solve": fastkkt.solve,
    "solve_ex": fastkkt.solve_ex,
    "reference": reference.solve,
    "factorize": lambda Q, q, A, c, **kw: fastkkt.factorize(Q, A, **kw).solve(q, c, **kw),
}


@pytest.fixture(params=list(SOLVERS))
def solver(request):
    return SOLVERS[request.param]


def _shape(shape):
    """A regex for a shape as a message may write it: (3, 4), [3, 4], 3x4, 3×4, (3,)."""
    if len(shape) == 0:
        return r"(\(\)|scalar|0-d|zero-dim)"
    dims = [str(d) for d in shape]
    if len(dims) == 1:
        return rf"[\(\[]{dims[0]},?[\)\]]"
    sep = r",\s*"
    return rf"([\(\[]{sep.join(dims)}[\)\]]|{'[x×]'.join(dims)})"


def _names(*names, shape=None):
    """Pattern requiring every name as a word and, if given, the shape, anywhere."""
    parts = [rf"(?=.*\b{re.escape(n)}\b)" for n in names]
    if shape is not None:
        parts.append(rf"(?=.*{_shape(shape)})")
    return "(?s)^" + "".join(parts)


def _good(n=3, m=2, batch=()):
    return random_qp(batch, n, m, seed=1)


# (description, which argument to replace, replacement, pattern)
BAD_SHAPES = [
    ("Q rank 1", 0, np.ones(3), _names("Q", shape=(3,))),
    ("Q rank 0", 0, np.float64(1.0), _names("Q", shape=())),
    ("Q not square", 0, np.ones((3, 4)), _names("Q", shape=(3, 4))),
    ("Q batched not square", 0, np.ones((5, 3, 4)), _names("Q", shape=(5, 3, 4))),
    ("q rank 0", 1, np.float64(1.0), _names("q", shape=())),
    ("q wrong n", 1, np.ones(4), _names("q", shape=(4,))),
    ("q is a matrix with wrong n", 1, np.ones((3, 2)), _names("q", shape=(3, 2))),
    ("A rank 1", 2, np.ones(3), _names("A", shape=(3,))),
    ("A wrong n", 2, np.ones((2, 4)), _names("A", shape=(2, 4))),
    ("c rank 0", 3, np.float64(1.0), _names("c", shape=())),
    ("c wrong m", 3, np.ones(3), _names("c", shape=(3,))),
    ("c for m = 0", 3, np.ones(1), _names("c", shape=(1,))),
]


@pytest.mark.parametrize(
    ("which", "value", "pattern"), [b[1:] for b in BAD_SHAPES], ids=[b[0] for b in BAD_SHAPES]
)
def test_bad_shape(solver, which, value, pattern):
    args = list(_good())
    args[which] = value
    if which == 3 and value.shape == (1,):  # c for an unconstrained problem
        args[2] = np.zeros((0, 3))
    with pytest.raises(ValueError, match=pattern):
        solver(*args)


def test_batch_dims_do_not_broadcast(solver):
    Q, _q, A, c = random_qp(2, 3, 1, seed=2)
    _, q5, _, _ = random_qp(5, 3, 1, seed=2)
    # The message names the argument whose batch dimensions clash and shows both batches.
    pattern = r"(?s)^(?=.*\bq\b)(?=.*[\(\[]2\b)(?=.*[\(\[]5\b)"
    with pytest.raises(ValueError, match=pattern):
        solver(Q, q5, A, c)


def test_batch_dims_do_not_broadcast_a_c():
    Q, _q, _A, _c = random_qp((4, 1), 3, 2, seed=3)
    c3 = np.ones((3, 2))
    pattern = r"(?s)^(?=.*\bc\b)(?=.*[\(\[]3\b)(?=.*[\(\[]4\b)"
    for solver in (fastkkt.solve, fastkkt.solve_ex, reference.solve):
        with pytest.raises(ValueError, match=pattern):
            solver(Q, np.ones((4, 3, 3)), np.ones((5, 1, 2, 3)), c3)


def test_factorize_q_a_do_not_broadcast():
    with pytest.raises(ValueError, match=r"(?s)^(?=.*\bQ\b)(?=.*\bA\b)"):
        fastkkt.factorize(np.ones((2, 3, 3)), np.ones((4, 1, 3)))


@pytest.mark.parametrize("which", [0, 1, 2, 3], ids=["Q", "q", "A", "c"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_finite_input(solver, which, bad, dtype):
    args = [x.astype(dtype) for x in random_qp(4, 3, 2, seed=4)]
    args[which][2].flat[-1] = bad
    name = "QqAc"[which]
    with pytest.raises(ValueError, match=rf"(?s)^(?=.*\b{name}\b)(?=.*(?i:nan|inf|finite))"):
        solver(*args)


def test_non_finite_input_in_shared_operand():
    Q, _q, A, c = random_qp((), 3, 2, seed=5)
    Q[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"\bQ\b"):
        fastkkt.solve(Q, np.ones((6, 3)), A, c)


@pytest.mark.parametrize("which", [0, 1, 2, 3], ids=["Q", "q", "A", "c"])
@pytest.mark.parametrize(
    "make",
    [lambda x: x.astype(np.complex128), lambda x: x.astype(object)],
    ids=["complex", "object"],
)
def test_complex_and_object_raise_typeerror(solver, which, make):
    args = list(random_qp(2, 3, 2, seed=6))
    args[which] = make(args[which])
    with pytest.raises(TypeError, match=rf"\b{'QqAc'[which]}\b"):
        solver(*args)


def test_string_input_raises_typeerror():
    Q, _q, A, c = _good()
    with pytest.raises(TypeError):
        fastkkt.solve(Q, np.array(["a", "b", "c"]), A, c)


def test_kkterror_class():
    assert issubclass(fastkkt.KKTError, np.linalg.LinAlgError)
    assert fastkkt.KKTError is KKTError


def test_kkterror_names_failing_indices():
    Q, q, A, c = failing_qp((2, 3), 4, 2, {(0, 2): "singular", (1, 1): "not_minimum"}, seed=7)
    expected_info = np.zeros((2, 3), np.int32)
    expected_info[0, 2], expected_info[1, 1] = 1, 2
    idx = r"[\(\[]{},\s*{}[\)\]]"
    pattern = rf"(?s)^(?=.*{idx.format(0, 2)})(?=.*{idx.format(1, 1)})"
    for solve in (fastkkt.solve, reference.solve):
        with pytest.raises(KKTError, match=pattern) as excinfo:
            solve(Q, q, A, c)
        err = excinfo.value
        assert err.indices == [(0, 2), (1, 1)]
        assert err.info.dtype == np.int32
        np.testing.assert_array_equal(err.info, expected_info)
    # np.linalg.LinAlgError handlers catch it.
    with pytest.raises(np.linalg.LinAlgError):
        fastkkt.solve(Q, q, A, c)


def test_kkterror_pickles():
    import pickle

    err = KKTError(np.array([[0, 1], [2, 0]], np.int32))
    back = pickle.loads(pickle.dumps(err))
    assert back.indices == [(0, 1), (1, 0)]
    assert str(back) == str(err)
    np.testing.assert_array_equal(back.info, err.info)


def test_corrupted_factorization_records_raise_instead_of_crashing() -> None:
    """The solve indexes memory through the stored permutation: records that no factorization
    wrote (here: a forged permutation, an unknown status) must raise, never crash."""
    from fastkkt.testing import random_qp

    Q, q, A, c = random_qp(2, 3, 1, seed=5)
    N = 4
    perm = slice(-N - 2, -2)  # a record ends with perm (N entries), ‖K‖∞ and flags
    F = fastkkt.factorize(Q, A)
    F._records[:, perm] = 1e9
    with pytest.raises(ValueError, match="modified"):
        F.solve(q, c)
    F = fastkkt.factorize(Q, A)
    F._records[0, perm] = 0  # one index four times
    with pytest.raises(ValueError, match="modified"):
        F.solve(q, c)
    F = fastkkt.factorize(Q, A)
    F._info[:] = 9
    with pytest.raises(ValueError, match="modified"):
        F.solve(q, c)
