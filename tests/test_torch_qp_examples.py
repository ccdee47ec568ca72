"""Run the fastkkt.torch.solve_qp examples (examples/learn_box.py, examples/sparsemax.py) as a
user would, on small settings, and check what they print: the learned constraints against the
hidden ones, sparsemax against its sort-based closed form and its Jacobian against
diag(s) − s sᵀ/|S|."""

from __future__ import annotations

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
    found = re.findall(rf"{re.escape(label)}\s*=\s*(-?\d+\.?\d*(?:e[-+]\d+)?)", text)
    assert found, f"{label!r} not found in output:\n{text}"
    return float(found[-1])


def test_learn_box_recovers_the_hidden_constraints(tmp_path):
    out = _run("learn_box.py", tmp_path, "--steps", "200", "--samples", "128")
    assert _number("max |lb - lb*|", out) < 0.01, out
    assert _number("max |ub - ub*|", out) < 0.01, out
    assert _number("|h - h*|", out) < 0.01, out
    assert _number("final loss", out) < 1e-5, out


def test_sparsemax_closed_form_jacobian_and_training(tmp_path):
    out = _run("sparsemax.py", tmp_path, "--steps", "100", "--samples", "128")
    assert _number("max |layer - closed form|", out) < 1e-12, out
    assert _number("max |Jacobian - (diag(s) - s s^T/|S|)|", out) < 1e-12, out
    assert _number("retrieval accuracy", out) > 0.9, out
    assert _number("mean support size", out) < 3.0, out
