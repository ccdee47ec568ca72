"""Run the scripts in examples/ as a user would (fresh interpreter, temporary cwd) and check
what they print and save."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(name: str, cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _number(label: str, text: str) -> float:
    match = re.search(rf"{label}\s*[=:]\s*(-?\d+\.\d+)", text)
    assert match, f"{label!r} not found in output:\n{text}"
    return float(match.group(1))


def test_learn_constraint(tmp_path):
    out = _run("learn_constraint.py", tmp_path)
    learned, optimal = _number("learned c", out), _number("optimal c", out)
    assert abs(learned - optimal) < 1e-3
    assert abs(optimal - 2.0) < 0.1  # the targets lie near the hidden line z₁ + z₂ = 2
    if importlib.util.find_spec("matplotlib") is not None:
        png = tmp_path / "learn_constraint.png"  # the default --out, in the cwd
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_input_dependent_constraint(tmp_path):
    out = _run("input_dependent_constraint.py", tmp_path)
    before = _number("constraint error before training", out)
    after = _number("constraint error after training", out)
    assert after < 0.05 * before
