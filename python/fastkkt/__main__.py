"""``python -m fastkkt``: the worked example, then a batch timed against numpy.linalg.solve."""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np

import fastkkt
from fastkkt.testing import kkt_matrix, random_qp


def worked_example() -> None:
    # Project r = (3.4, 0.2) onto the line z₁ + z₂ = 2:  minimize ‖z − r‖² s.t. z₁ + z₂ = 2,
    # i.e. ½zᵀ(2I)z + (−2r)ᵀz. Stationarity 2(z − r) + λ(1, 1) = 0 and feasibility give
    # λ = (r₁ + r₂ − 2) = 1.6 and z = r − λ/2 = (2.6, −0.6).
    r = np.array([3.4, 0.2])
    z, lam = fastkkt.solve(
        2 * np.eye(2), -2 * r, np.array([[1.0, 1.0]]), np.array([2.0]), return_multipliers=True
    )
    print("worked example: minimize ‖z − r‖² s.t. z₁ + z₂ = 2, r = (3.4, 0.2)")
    print(f"  z = {np.array2string(z, precision=6)}   (expected [2.6, -0.6])")
    print(f"  λ = {np.array2string(lam, precision=6)}   (expected [1.6])")


def best_of(f: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def batch_demo(B: int, n: int, m: int, repeat: int) -> None:
    Q, q, A, c = random_qp(B, n, m, seed=0)
    print(
        f"\nbatch of {B} random problems, n = {n}, m = {m}, float64, "
        f"{fastkkt.get_num_threads()} threads, core: {fastkkt.cpu_variant}"
    )
    t_fk, (z, lam) = best_of(lambda: fastkkt.solve(Q, q, A, c, return_multipliers=True), repeat)

    def numpy_solve():
        K = kkt_matrix(Q, A)
        rhs = np.concatenate([-q, c], axis=-1)[..., None]
        return np.linalg.solve(K, rhs)[..., 0]

    t_np, x = best_of(numpy_solve, repeat)
    diff = max(np.abs(z - x[:, :n]).max(), np.abs(lam - x[:, n:]).max())
    print(f"  fastkkt.solve                          {t_fk * 1e3:9.2f} ms")
    print(
        f"  numpy.linalg.solve (assembled KKT)     {t_np * 1e3:9.2f} ms   "
        f"({t_np / t_fk:.1f}× fastkkt's time)"
    )
    print(f"  largest difference |fastkkt − numpy|   {diff:9.2e}")


def main() -> None:
    p = argparse.ArgumentParser(
        prog="python -m fastkkt",
        description="Solve a worked example, then time a batch of random problems against "
        "numpy.linalg.solve on the assembled KKT systems.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--batch", type=int, default=10_000, help="number of problems in the batch")
    p.add_argument("-n", type=int, default=32, help="variables per problem")
    p.add_argument("-m", type=int, default=8, help="equality constraints per problem")
    p.add_argument("--repeat", type=int, default=3, help="timing runs (the best is shown)")
    args = p.parse_args()
    worked_example()
    batch_demo(args.batch, args.n, args.m, args.repeat)


if __name__ == "__main__":
    main()
