"""The README's code blocks run as written, and the worked example prints what it claims."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastkkt

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_block_runs(index: int) -> None:
    code = _blocks()[index]
    if "torch" in code:
        pytest.importorskip("torch")
    namespace: dict = {"np": np, "fastkkt": fastkkt}  # the README's imports
    exec(compile(code, f"README.md block {index}", "exec"), namespace)
    if "lam" in namespace and "r" in namespace:  # the worked example, against its closed form
        np.testing.assert_allclose(namespace["lam"], [1.6], rtol=1e-13)
    if "Q[3] = 0" in code:  # the solve_ex example: exactly element 3 fails, as singular
        info = namespace["info"]
        assert info[3] == 1
        assert np.count_nonzero(info) == 1


def test_main_job_prints_the_worked_example() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fastkkt", "--batch", "200", "--repeat", "1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "z = [ 2.6 -0.6]" in out
    assert "λ = [1.6]" in out
    diff = float(re.search(r"largest difference \|fastkkt − numpy\|\s+(\S+)", out).group(1))
    assert diff < 1e-10
