"""The helpers of the example tests (tests/test_examples.py, tests/test_torch_qp_examples.py):
run a script of examples/ as a user would (a fresh interpreter, a temporary cwd) and read the
numbers it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, cwd: Path, *args: str) -> str:
    """The standard output of ``python examples/<name> *args`` run in `cwd`; it must succeed."""
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


def printed_number(label: str, text: str) -> float:
    """The number printed last after ``<label> =`` or ``<label>:`` in `text`."""
    found = re.findall(rf"{re.escape(label)}\s*[=:]\s*(-?\d+\.?\d*(?:e[-+]\d+)?)", text)
    assert found, f"{label!r} not found in output:\n{text}"
    return float(found[-1])
