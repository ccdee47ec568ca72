"""Forward solves of every BENCH_QP.md case (fastkkt.solve_qp and its peers, one group per
case), each answer checked against the polished reference (z within 1e-6) and the iteration
counts recorded in ``extra_info``. A quick run (--quick or FASTKKT_BENCH_QUICK=1) keeps
the two smallest cases."""

from __future__ import annotations

import numpy as np
import pytest
from methods import QP_FORWARD, QPProblem, qp_cases, quick_from_env


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "qp_problem" in metafunc.fixturenames:
        quick = metafunc.config.getoption("--quick") or quick_from_env()
        metafunc.parametrize("qp_problem", qp_cases(quick), indirect=True)


@pytest.fixture(scope="session")
def qp_problem(request: pytest.FixtureRequest) -> QPProblem:
    return QPProblem(request.param)


@pytest.mark.parametrize("method", QP_FORWARD, ids=lambda method: method.name)
def test_qp_forward(benchmark, qp_problem, method):
    reason = method.missing()
    if reason:
        pytest.skip(reason)
    qp_problem.z_ref  # the reference first, outside the timing  # noqa: B018
    run = method.make(qp_problem)
    run()  # warm-up
    benchmark.group = f"qp {qp_problem.name}"
    z, iterations = benchmark(run)
    qp_problem.check_z(z, method.rtol)
    if iterations is not None:
        iterations = np.asarray(iterations)
        benchmark.extra_info["iterations"] = {
            "min": int(iterations.min()),
            "median": float(np.median(iterations)),
            "max": int(iterations.max()),
        }
