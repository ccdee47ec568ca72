"""pytest-benchmark suites of BENCH.md; not part of the default test run.

    python -m pytest benchmarks -p no:cacheprovider --benchmark-enable   # time every case
    python -m pytest benchmarks --benchmark-disable -x -q --quick       # smoke: each runs once

``--quick`` (or FASTKKT_BENCH_QUICK=1) leaves out the two cases with the most work.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from methods import Method, Problem, case_name, cases, quick_from_env


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--quick",
        action="store_true",
        help="leave out the two biggest cases (also FASTKKT_BENCH_QUICK=1)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "problem" in metafunc.fixturenames:
        quick = metafunc.config.getoption("--quick") or quick_from_env()
        chosen = cases(quick)
        metafunc.parametrize("problem", chosen, ids=map(case_name, chosen), indirect=True)


@pytest.fixture(scope="session")
def problem(request: pytest.FixtureRequest) -> Problem:
    """One case's problems (the reference answers are computed on first use)."""
    return Problem(request.param)


@pytest.fixture
def run(problem: Problem, method: Method) -> Callable[[], Any]:
    """The closure to time: `method` (a test parameter) set up for `problem`. Skips a
    method whose package does not import here or that is not run on this case."""
    if not method.applies(problem.case):
        pytest.skip(f"{method.name} loops over problems in Python: only run for B <= 1024")
    reason = method.missing()
    if reason:
        pytest.skip(reason)
    return method.make(problem)
