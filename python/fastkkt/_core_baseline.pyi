"""Type stub for the compiled core (cpp/module.cpp and what it registers), every ISA variant.

Arrays must already be validated, converted to one float dtype and broadcast to one batch
shape by fastkkt._validate; outputs are C-contiguous and writeable.
"""

import numpy as np

variant: str
#: Per-element status codes by name (cpp/include/fastkkt/ldlt.hpp, qp.hpp): the factorization
#: outcomes, the input-check outcomes and the QP solver's outcomes.
factor_status: dict[str, int]
input_status: dict[str, int]
qp_status: dict[str, int]

def record_size(N: int) -> int: ...
def cpu_level() -> str: ...
def usable_threads(requested: int) -> int: ...
def solve(
    Q: np.ndarray,
    q: np.ndarray,
    A: np.ndarray,
    c: np.ndarray,
    z: np.ndarray,
    lam: np.ndarray,
    info: np.ndarray,
    check_finite: bool,
    nthreads: int,
    records: np.ndarray | None = None,
    finfo: np.ndarray | None = None,
) -> int: ...
def factorize(
    Q: np.ndarray,
    A: np.ndarray,
    records: np.ndarray,
    info: np.ndarray,
    check_finite: bool,
    nthreads: int,
) -> None: ...
def backward(
    records: np.ndarray,
    finfo: np.ndarray,
    Q: np.ndarray,
    A: np.ndarray,
    gz: np.ndarray,
    mglam: np.ndarray,
    z: np.ndarray,
    lam: np.ndarray,
    info: np.ndarray,
    dz: np.ndarray,
    gc: np.ndarray,
    dQ: np.ndarray | None,
    dA: np.ndarray | None,
    nthreads: int,
) -> None: ...
def solve_factored(
    records: np.ndarray,
    finfo: np.ndarray,
    Q: np.ndarray,
    q: np.ndarray,
    A: np.ndarray,
    c: np.ndarray,
    z: np.ndarray,
    lam: np.ndarray,
    info: np.ndarray,
    check_finite: bool,
    nthreads: int,
) -> None: ...
def solve_qp(
    Q: np.ndarray,
    q: np.ndarray,
    A: np.ndarray,
    c: np.ndarray,
    G: np.ndarray,
    h: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    z: np.ndarray,
    lam: np.ndarray,
    mu: np.ndarray,
    nu: np.ndarray,
    info: np.ndarray,
    iterations: np.ndarray,
    active: np.ndarray | None,
    factor: np.ndarray | None,
    tol: float,
    max_iter: int,
    nthreads: int,
    check_finite: bool = False,
) -> int: ...
def qp_factor_size(n: int, m: int, p: int) -> int: ...
def qp_adjoint(
    Q: np.ndarray,
    A: np.ndarray | None,
    G: np.ndarray | None,
    z: np.ndarray,
    lam: np.ndarray,
    mu: np.ndarray,
    info: np.ndarray,
    active: np.ndarray,
    factor: np.ndarray,
    gz: np.ndarray | None,
    glam: np.ndarray | None,
    gmu: np.ndarray | None,
    gnu: np.ndarray | None,
    gQ: np.ndarray | None,
    gq: np.ndarray | None,
    gA: np.ndarray | None,
    gc: np.ndarray | None,
    gG: np.ndarray | None,
    gh: np.ndarray | None,
    glb: np.ndarray | None,
    gub: np.ndarray | None,
    nthreads: int,
) -> None: ...
