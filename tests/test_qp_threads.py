"""solve_qp of the compiled solver gives bitwise-identical results for any thread count,
including the status and iteration counts, with bad elements in the batch."""

from __future__ import annotations

import numpy as np
import pytest

import fastkkt
from fastkkt.testing import feasible_qp, qp_case

ARGS = ("Q", "q", "A", "c", "G", "h", "lb", "ub")


def _batch():
    P = feasible_qp(64, 12, 3, 10, bounds="inf", fixed=1, weak=1, seed=21)
    P = {k: v for k, v in P.items() if k in ARGS}
    P["ub"][5, 0] = P["lb"][5, 0] - 1.0  # one infeasible element
    return P


@pytest.mark.parametrize("case", ["generic", "scqpth_small"])
def test_bitwise_across_thread_counts(restore_threads, case):
    if case == "generic":
        P = _batch()
    else:
        P = {k: v for k, v in qp_case(case).items() if k in ARGS and v is not None}
    results = []
    for k in (1, 2, 3, 5):
        fastkkt.set_num_threads(k)
        results.append(fastkkt.solve_qp_ex(**P))
    assert results[0].info.any() == (case == "generic")
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
