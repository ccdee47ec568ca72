"""Run the fastkkt.torch.solve_qp examples (examples/learn_box.py, examples/sparsemax.py) as a
user would, on small settings, and check what they print: the learned constraints against the
hidden ones, sparsemax against its sort-based closed form and its Jacobian against
diag(s) − s sᵀ/|S|."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from examples_run import printed_number, run_example


def test_learn_box_recovers_the_hidden_constraints(tmp_path):
    out = run_example("learn_box.py", tmp_path, "--steps", "200", "--samples", "128")
    assert printed_number("max |lb - lb*|", out) < 0.01, out
    assert printed_number("max |ub - ub*|", out) < 0.01, out
    assert printed_number("|h - h*|", out) < 0.01, out
    assert printed_number("final loss", out) < 1e-5, out


def test_sparsemax_closed_form_jacobian_and_training(tmp_path):
    out = run_example("sparsemax.py", tmp_path, "--steps", "100", "--samples", "128")
    assert printed_number("max |layer - closed form|", out) < 1e-12, out
    assert printed_number("max |Jacobian - (diag(s) - s s^T/|S|)|", out) < 1e-12, out
    assert printed_number("retrieval accuracy", out) > 0.9, out
    assert printed_number("mean support size", out) < 3.0, out
