"""The status codes: defined once in C++ (ldlt.hpp, qp.hpp), exported by the bindings and read
by every Python table (fastkkt/_status.py). Here they are checked against the numbers of the
public contract (API.md), written down independently."""

from __future__ import annotations

import numpy as np

import fastkkt
from fastkkt import _status
from fastkkt._dispatch import core
from fastkkt.testing import failing_qp, random_qp


def test_exported_codes_are_the_contract():
    assert core.factor_status == {"solved": 0, "singular": 1, "not_minimum": 2}
    assert core.qp_status == {
        "solved": 0,
        "primal_infeasible": 1,
        "dual_infeasible": 2,
        "max_iter": 3,
    }
    assert (_status.SOLVED, _status.SINGULAR, _status.NOT_MINIMUM) == (0, 1, 2)
    qp = (_status.QP_SOLVED, _status.PRIMAL_INFEASIBLE, _status.DUAL_INFEASIBLE, _status.MAX_ITER)
    assert qp == (0, 1, 2, 3)


def test_input_check_codes_never_collide_with_outcomes():
    inputs = set(core.input_status.values())
    assert len(inputs) == len(core.input_status) == 5
    assert min(inputs) > max(core.factor_status.values())
    assert min(inputs) == _status.FIRST_INPUT_CODE
    assert sorted(_status.NONFINITE.values()) == sorted("QqAc")


def test_messages_name_every_outcome():
    Q, q, A, c = failing_qp(3, 3, 1, {0: "singular", 2: "not_minimum"}, seed=4)
    _, _, info = fastkkt.solve_ex(Q, q, A, c)
    np.testing.assert_array_equal(info, [1, 0, 2])
    msg = str(fastkkt.KKTError(info))
    assert msg.startswith("2 of 3 problems failed: singular KKT matrix"), msg
    assert "at batch index (0,)" in msg, msg
    assert "not a strict minimum" in msg, msg
    assert "at batch index (2,)" in msg, msg
    msg = str(fastkkt.QPError(np.array([0, 1, 2, 3], np.int32)))
    for words in ("3 of 4 QPs failed", "primal infeasible at batch index (1,)", "max_iter"):
        assert words in msg, msg


def test_failing_batches_from_the_generator():
    """fastkkt.testing.failing_qp: the chosen elements fail with the chosen status (NumPy
    reference and compiled core agree), the others are random_qp's."""
    fails = {(0, 1): "singular", (1, 2): "not_minimum", (1, 0): "singular"}
    for n, m in ((4, 2), (3, 0)):
        Q, q, A, c = failing_qp((2, 3), n, m, fails, seed=5)
        expected = np.zeros((2, 3), np.int32)
        for idx, how in fails.items():
            expected[idx] = {"singular": 1, "not_minimum": 2}[how]
        for solve_ex in (fastkkt.solve_ex, fastkkt.reference.solve_ex):
            np.testing.assert_array_equal(solve_ex(Q, q, A, c)[2], expected)
        good = random_qp((2, 3), n, m, seed=5)
        for x, y in zip((Q, q, A, c), good):
            np.testing.assert_array_equal(x[expected == 0], y[expected == 0])
