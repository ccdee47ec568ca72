"""Shared pytest configuration: hypothesis profiles, the thread-count guard (every test leaves
fastkkt's thread setting as it found it; `restore_threads` gives a test the setting it started
with) and the fixture of the two solve_qp implementations."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# "ci": more examples, derandomized so that a CI failure reproduces; "dev": quick local runs.
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=50,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=20, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# CI sets FASTKKT_REQUIRE_TORCH=1: there a missing PyTorch, or a missing test extra
# (pip install ".[test]"), is an error, so the tests that need them cannot silently turn into
# skips.
if os.environ.get("FASTKKT_REQUIRE_TORCH") == "1":
    import clarabel  # noqa: F401
    import dask.array  # noqa: F401
    import distributed  # noqa: F401
    import piqp  # noqa: F401
    import psutil  # noqa: F401
    import qpsolvers.problems  # noqa: F401
    import sklearn  # noqa: F401
    import torch  # noqa: F401
    import zarr  # noqa: F401


@pytest.fixture(autouse=True)
def restore_threads():
    """The thread-count guard: the setting before the test (its value), restored after it."""
    import fastkkt

    before = fastkkt.get_num_threads()
    yield before
    fastkkt.set_num_threads(before)


# The two implementations of solve_qp that every contract test runs on: the pure-NumPy
# specification and the compiled solver.
QP_IMPLEMENTATIONS = ["reference", "fastkkt"]


@pytest.fixture(params=QP_IMPLEMENTATIONS, scope="session")
def qp(request: pytest.FixtureRequest):
    """The module whose solve_qp / solve_qp_ex / QPError a test checks."""
    import fastkkt

    return fastkkt.reference if request.param == "reference" else fastkkt
