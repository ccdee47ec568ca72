"""fastkkt — batched equality-constrained quadratic programs through their KKT systems.

For each batch element::

    minimize_z  ½ zᵀ Q z + qᵀ z   subject to  A z = c
    ⇔  [ sym(Q)  Aᵀ ] [ z ]   [ −q ]
       [ A       0  ] [ λ ] = [  c ]

``fastkkt.solve`` / ``solve_ex`` / ``factorize`` are the NumPy API, ``fastkkt.reference`` a
pure-NumPy implementation of the same contract, ``fastkkt.torch`` the differentiable layer.
"""

from fastkkt import reference, testing
from fastkkt._api import (
    KKTFactorization,
    factorize,
    get_num_threads,
    set_num_threads,
    solve,
    solve_ex,
)
from fastkkt._dispatch import core as _core
from fastkkt._errors import KKTError, QPError
from fastkkt._qp import QPSolution, solve_qp, solve_qp_ex

__version__ = "0.1.0"
#: Instruction-set level of the compiled core in use ("baseline", "avx2" or "avx512").
cpu_variant: str = _core.variant

__all__ = [
    "KKTError",
    "KKTFactorization",
    "QPError",
    "QPSolution",
    "__version__",
    "cpu_variant",
    "factorize",
    "get_num_threads",
    "reference",
    "set_num_threads",
    "solve",
    "solve_ex",
    "solve_qp",
    "solve_qp_ex",
    "testing",
]
