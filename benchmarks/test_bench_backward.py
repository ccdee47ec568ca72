"""Forward + backward (gradients of sum(w * z) with respect to Q, q, A and c), per case."""

import pytest
from methods import BACKWARD, case_name


@pytest.mark.parametrize("method", BACKWARD, ids=lambda method: method.name)
def test_forward_backward(benchmark, problem, method, run):
    benchmark.group = f"fwd+bwd {case_name(problem.case)}"
    grads = benchmark(run)
    problem.check_grads(grads, method.rtol)
