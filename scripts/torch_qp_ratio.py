"""fastkkt.torch.solve_qp: forward + backward over the no_grad forward, per BENCH_QP.md case,
with the calls alternated one by one (this machine is shared and its speed drifts by tens of
percent within seconds: a ratio of two sequential benchmark runs is mostly that drift).

Per case, four calls take turns, `--rounds` times each:

- ``forward``: the no_grad forward (the denominator of the goal, fwd+bwd ≤ 1.3× fwd);
- ``forward_backward``: fresh leaf clones of every input, the forward, sum(w·z).backward();
- ``floor``: the same clones, one autograd.Function of the same inputs handing a precomputed z
  through with a zero gradient back, the same loss and backward pass, no solve: torch's own
  cost per call (benchmarks/test_bench_torch_qp.py::test_torch_autograd_floor);
- ``forward_floor``: the no_grad forward followed by the floor: what forward + backward would
  cost if the backward pass did nothing of fastkkt's, with the caches as the solve leaves them
  (test_torch_forward_plus_autograd_floor). Its ratio to ``forward`` is the least any layer on
  this forward can reach.

Prints the 20th percentile of each (robust to the machine's bursts) and the ratios.

    FASTKKT_NUM_THREADS=1 python scripts/torch_qp_ratio.py [case ...] [--rounds R]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fastkkt.testing import QP_CASES

# the benchmark's case (its tensors, loss weights, forward and forward + backward) and its
# passthrough autograd.Function, so that both measure the same calls
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from test_bench_torch_qp import Case, _Passthrough

BATCHED = ("scqpth_small", "mpc", "optnet", "scqpth_medium", "mixed")


def measure(name: str, rounds: int) -> dict[str, float]:
    case = Case(name)
    z0 = case.forward()

    def forward() -> None:
        case.forward()

    def forward_backward() -> None:
        case.forward_backward()

    def floor() -> None:
        ts = {k: v.clone().requires_grad_() for k, v in case.t.items()}
        (case.w * _Passthrough.apply(z0, *ts.values())).sum().backward()

    def forward_floor() -> None:
        ts = {k: v.clone().requires_grad_() for k, v in case.t.items()}
        z = case.forward()
        (case.w * _Passthrough.apply(z, *ts.values())).sum().backward()

    calls = (forward, forward_backward, floor, forward_floor)
    times: dict[str, list[float]] = {f.__name__: [] for f in calls}
    for f in calls:
        f()
    for _ in range(rounds):
        for f in calls:
            t0 = time.perf_counter()
            f()
            times[f.__name__].append(time.perf_counter() - t0)
    return {k: float(np.percentile(v, 20)) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help=f"of {', '.join(QP_CASES)} (default: the batched)")
    ap.add_argument("--rounds", type=int, default=0, help="calls of each (default: by size)")
    args = ap.parse_args()
    for name in args.cases:
        if name not in QP_CASES:
            ap.error(f"unknown case {name!r}")
    torch.set_num_threads(1)
    print(f"{'case':14s} {'forward':>11s} {'fwd+bwd':>11s} {'floor':>11s} {'fwd+floor':>11s}"
          f" {'fwd+bwd/fwd':>12s} {'fwd+floor/fwd':>14s}")  # fmt: skip
    for name in args.cases or BATCHED:
        rounds = args.rounds or (15 if name in ("mpc", "optnet", "mixed", "large", "svm") else 400)
        r = measure(name, rounds)
        f = r["forward"]
        print(
            f"{name:14s} {f * 1e3:9.3f}ms {r['forward_backward'] * 1e3:9.3f}ms "
            f"{r['floor'] * 1e3:9.3f}ms {r['forward_floor'] * 1e3:9.3f}ms "
            f"{r['forward_backward'] / f:12.3f} {r['forward_floor'] / f:14.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
