"""Forward solves of every BENCH.md case: fastkkt and its peers, one group per case."""

import pytest
from methods import FORWARD, case_name


@pytest.mark.parametrize("method", FORWARD, ids=lambda method: method.name)
def test_forward(benchmark, problem, method, run):
    benchmark.group = f"fwd {case_name(problem.case)}"
    z = benchmark(run)
    problem.check_z(z, method.rtol)
