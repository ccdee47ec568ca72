"""The small problems with published solutions that ship with qpsolvers
(qpsolvers.problems: QPSUT01–05, QPTEST), on both implementations: z, and the multipliers
(qpsolvers' signed z_box is fastkkt's ν) where the active constraints are linearly
independent so that they are unique. The published solutions are printed to 8–9 digits and
are not all exact: QPSUT03's x is off by 4e-7 (Clarabel at 1e-10, PIQP at 1e-12 and the
reference agree with each other to 1e-8), hence the tolerance 1e-6; QPSUT04's published y has
the wrong sign (Px + q + Aᵀy ≠ 0 with it), so published multipliers are only compared where
they satisfy the stationarity condition themselves."""

from __future__ import annotations

import numpy as np
import pytest

from fastkkt.testing import assert_qp_kkt

problems = pytest.importorskip("qpsolvers.problems")

NAMES = ["get_qpsut01", "get_qpsut02", "get_qpsut03", "get_qpsut04", "get_qpsut05", "get_qptest"]
RTOL = 1e-6


def _close(got, want, what):
    want = np.asarray(want, dtype=np.float64)
    scale = 1 + np.abs(want).max(initial=0)
    assert np.abs(np.asarray(got) - want).max(initial=0) <= RTOL * scale, what


def _active_rows_independent(kw: dict, z: np.ndarray) -> bool:
    n = len(z)
    rows = [kw["A"]] if "A" in kw else []
    if "G" in kw:
        rows.append(kw["G"][np.abs(kw["G"] @ z - kw["h"]) <= 1e-6])
    eye = np.eye(n)
    for name in ("lb", "ub"):
        if name in kw:
            rows.append(eye[np.abs(z - np.asarray(kw[name], dtype=float)) <= 1e-6])
    M = np.vstack(rows) if rows else np.zeros((0, n))
    return np.linalg.matrix_rank(M) == len(M)


@pytest.mark.parametrize("name", NAMES)
def test_qpsolvers_problem(qp, name):
    problem, solution = getattr(problems, name)()
    Q = np.atleast_2d(problem.P)
    q = np.asarray(problem.q, dtype=np.float64).ravel()
    kw = {}
    if problem.A is not None:
        kw["A"], kw["c"] = np.atleast_2d(problem.A), np.atleast_1d(problem.b)
    if problem.G is not None:
        kw["G"], kw["h"] = np.atleast_2d(problem.G), np.atleast_1d(problem.h)
    if problem.lb is not None:
        kw["lb"] = problem.lb
    if problem.ub is not None:
        kw["ub"] = problem.ub
    sol = qp.solve_qp_ex(Q, q, **kw)
    assert sol.info == 0
    assert_qp_kkt({"Q": Q, "q": q, **kw}, *sol[:4], 1e-8)
    _close(sol.z, solution.x, "z")
    if not _active_rows_independent(kw, sol.z):
        return  # e.g. QPSUT02: the multipliers are not unique
    stationarity = Q @ solution.x + q
    for mat, mult in ((problem.A, solution.y), (problem.G, solution.z)):
        if mat is not None and mult is not None and len(mult):
            stationarity = stationarity + np.atleast_2d(mat).T @ mult
    if solution.z_box is not None and len(solution.z_box):
        stationarity = stationarity + solution.z_box
    if np.abs(stationarity).max() > RTOL * (1 + np.abs(q).max()):
        return  # published multipliers inconsistent with their own x (QPSUT04)
    for got, want, what in (
        (sol.lam, solution.y, "lam"),
        (sol.mu, solution.z, "mu"),
        (sol.nu, solution.z_box, "nu"),
    ):
        if want is not None and len(want):
            _close(got, want, what)
