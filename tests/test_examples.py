"""Run the scripts in examples/ as a user would (fresh interpreter, temporary cwd) and check
what they print and save."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("torch")

from examples_run import printed_number, run_example


def test_learn_constraint(tmp_path):
    out = run_example("learn_constraint.py", tmp_path)
    learned, optimal = printed_number("learned c", out), printed_number("optimal c", out)
    assert abs(learned - optimal) < 1e-3
    assert abs(optimal - 2.0) < 0.1  # the targets lie near the hidden line z₁ + z₂ = 2
    if importlib.util.find_spec("matplotlib") is not None:
        png = tmp_path / "learn_constraint.png"  # the default --out, in the cwd
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_input_dependent_constraint(tmp_path):
    out = run_example("input_dependent_constraint.py", tmp_path)
    before = printed_number("constraint error before training", out)
    after = printed_number("constraint error after training", out)
    assert after < 0.05 * before
