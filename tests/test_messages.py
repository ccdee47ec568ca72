"""What users read: error messages (batch-dimension limit, failing elements), the command-line
help, and the license and changelog that ship with the package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastkkt
from fastkkt.testing import random_qp

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = {
    "solve": fastkkt.solve,
    "solve_ex": fastkkt.solve_ex,
    "factorize": lambda Q, q, A, c: fastkkt.factorize(Q, A).solve(q, c),
}


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("which", ["all", "q only", "Q only"])
def test_more_than_32_batch_dimensions(entry, which):
    Q, q, A, c = random_qp((), 2, 1, seed=1)
    deep = (1,) * 33
    if which == "all":
        Q, q, A, c = (x.reshape(deep + x.shape) for x in (Q, q, A, c))
    elif which == "q only":
        q = q.reshape(deep + q.shape)
    else:
        Q = Q.reshape(deep + Q.shape)
    if entry == "factorize" and which == "q only":
        F = fastkkt.factorize(Q, A)
        call = lambda: F.solve(q, c)  # noqa: E731
    else:
        call = lambda: ENTRIES[entry](Q, q, A, c)  # noqa: E731
    with pytest.raises(ValueError, match=r"(?s)(?=.*\b32\b)(?=.*\b33\b)(?=.*\(1, 1, 1)") as exc:
        call()
    name = "q" if which == "q only" else "Q"
    assert re.search(rf"\b{name} \(", str(exc.value)), str(exc.value)


def test_32_batch_dimensions_still_work():
    Q, q, A, c = random_qp((), 2, 1, seed=1)
    deep = (1,) * 32
    z = fastkkt.solve(*(x.reshape(deep + x.shape) for x in (Q, q, A, c)))
    np.testing.assert_array_equal(z.reshape(2), fastkkt.solve(Q, q, A, c))


def test_kkterror_message_of_one_problem_has_no_empty_index():
    Q, q, A, c = random_qp((), 3, 1, seed=2)
    Q[:] = 0
    with pytest.raises(fastkkt.KKTError) as exc:
        fastkkt.solve(Q, q, A, c)
    msg = str(exc.value)
    assert "()" not in msg, msg
    assert exc.value.indices == [()]


def test_kkterror_message_with_many_failures():
    Q, q, A, c = random_qp(20, 3, 1, seed=3)
    Q[:] = 0
    with pytest.raises(fastkkt.KKTError) as exc:
        fastkkt.solve(Q, q, A, c)
    msg = str(exc.value)
    assert "…." not in msg, msg
    assert "12 more" in msg, msg
    assert "20 of 20" in msg, msg


def test_command_line_help():
    out = subprocess.run(
        [sys.executable, "-m", "fastkkt", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "`" not in out, out
    for option in ("--batch", "-n", "-m", "--repeat"):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(option))
        assert len(line.split()) > 2, line  # the option and its help text


def test_license_and_changelog():
    text = (ROOT / "LICENSE").read_text()
    assert "BSD 3-Clause" in text or "Redistribution and use in source and binary forms" in text
    assert "fastkkt developers" in text
    assert "[0.1.0]" in (ROOT / "CHANGELOG.md").read_text()
