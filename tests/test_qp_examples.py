"""Run the solve_qp examples (examples/svm_dual.py, simplex_projection.py, l1_ball.py) as a
user would, on small settings, and check the numbers they print against the independent
answers they compute (libsvm, the sort-based closed form, scikit-learn's Lasso)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from examples_run import run_example

pytest.importorskip("sklearn")


def _run(name: str, cwd: Path, *args: str) -> str:
    return run_example(name, cwd, *args)


def _numbers(label: str, text: str) -> list[float]:
    found = re.findall(rf"{re.escape(label)}\s*[=:]\s*(-?\d+\.?\d*(?:e[-+]\d+)?)", text)
    assert found, f"{label!r} not found in output:\n{text}"
    return [float(x) for x in found]


def test_svm_dual(tmp_path):
    out = _run("svm_dual.py", tmp_path, "--samples", "200")
    assert out.count("same set: True") == 2, out  # linear and rbf
    assert max(_numbers("relative dual objective difference", out)) <= 1e-6
    assert max(_numbers("|b - b_svc|", out)) <= 1e-5
    assert max(_numbers("max |w - w_svc|", out)) <= 1e-5
    assert min(_numbers("predictions agree with SVC", out)) == 1.0
    assert min(_numbers("training accuracy", out)) >= 0.95
    assert min(_numbers("min ν over α = C", out)) >= 0.0


def test_simplex_projection(tmp_path):
    out = _run("simplex_projection.py", tmp_path, "--batch", "64", "--n", "10", "--steps", "300")
    assert _numbers("max |z - closed form|", out)[0] <= 1e-7
    assert _numbers("max |μ_i − (θ − v_i)| over zero components", out)[0] <= 1e-7
    assert _numbers("max |z_i μ_i| (complementary slackness)", out)[0] <= 1e-7
    assert _numbers("min μ_i over zero components", out)[0] > 0
    assert _numbers("max objective gap to the direct QP solution", out)[0] <= 1e-6


def test_l1_ball(tmp_path):
    out = _run("l1_ball.py", tmp_path, "--fractions", "0.2", "0.7")
    assert _numbers("max relative |beta - beta_lasso|", out)[0] <= 1e-6
    assert "constraint active (‖β‖₁ = t) in every case: True" in out
