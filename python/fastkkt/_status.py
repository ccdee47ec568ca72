"""The per-element status codes, read once from the compiled core, where they are defined
(cpp/include/fastkkt/common.hpp: the factorization outcome and the input-check outcome; qp.hpp:
the QP solver's outcome) and exported (cpp/module.cpp, bindings_qp.cpp). Every table and
message in Python reads these names; no code number is written anywhere else.

An ``info`` array of `fastkkt.solve_ex` holds a factorization outcome per element; the core
reports refused input with an input-check code in the same array, which the Python layer turns
into ValueError before any user sees it. An ``info`` of `fastkkt.solve_qp_ex` holds a QP outcome.
"""

from __future__ import annotations

from fastkkt._dispatch import core

__all__ = [
    "DUAL_INFEASIBLE",
    "INVALID_RECORD",
    "MAX_ITER",
    "NONFINITE",
    "NOT_MINIMUM",
    "PRIMAL_INFEASIBLE",
    "QP_SOLVED",
    "SINGULAR",
    "SOLVED",
]

# the factorization outcome (the public `info` of solve_ex)
SOLVED: int = core.factor_status["solved"]
SINGULAR: int = core.factor_status["singular"]
NOT_MINIMUM: int = core.factor_status["not_minimum"]

# the input-check outcome: the argument holding NaN or Inf, by code; a corrupted record
NONFINITE: dict[int, str] = {core.input_status[f"nonfinite_{name}"]: name for name in "QqAc"}
INVALID_RECORD: int = core.input_status["invalid_record"]
#: The smallest input-check code: info ≥ it means "refused input", not an outcome.
FIRST_INPUT_CODE: int = min(core.input_status.values())

# the QP solver's outcome (the public `info` of solve_qp_ex)
QP_SOLVED: int = core.qp_status["solved"]
PRIMAL_INFEASIBLE: int = core.qp_status["primal_infeasible"]
DUAL_INFEASIBLE: int = core.qp_status["dual_infeasible"]
MAX_ITER: int = core.qp_status["max_iter"]
