"""Learn the right-hand side of a constraint through the differentiable KKT layer.

Forty targets t lie near a hidden line z₁ + z₂ = 2. We only see raw points r: the targets
with a bias and noise. The layer projects each raw point onto the line z₁ + z₂ = c,

    z(r, c) = argmin_z ‖z − r‖²  s.t.  z₁ + z₂ = c     (Q = 2I, q = −2r, A = [[1, 1]]),

and c is learned from c = 0 by gradient descent on the mean squared distance of the
projections to the targets. Run:  python examples/learn_constraint.py [--out FILE.png]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import fastkkt.torch as ft


def make_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets t near z₁ + z₂ = 2 and biased, noisy raw points r, both (40, 2)."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(-1.0, 3.0, 40)
    t = np.stack([s, 2.0 - s], axis=1) + 0.05 * rng.standard_normal((40, 2))
    r = t + np.array([0.4, -1.1]) + 0.3 * rng.standard_normal((40, 2))
    return torch.from_numpy(t), torch.from_numpy(r)


def optimal_c(t: torch.Tensor) -> float:
    """The loss-minimizing c in closed form.

    The projection is z = r + (c − 1ᵀr)/2 · 1, so with e = r − t,
    L(c) = mean ‖e + (c − 1ᵀr)/2 · 1‖² and L'(c) = mean (1ᵀe + c − 1ᵀr) = c − mean(1ᵀt).
    Hence c* = mean(t₁ + t₂), whatever the raw points are; and L''(c) = 1.
    """
    return float(t.sum(dim=1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="learn_constraint.png", help="where to save the plot")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()

    t, r = make_data()
    Q = 2 * torch.eye(2, dtype=torch.float64)  # shared by all 40 problems (broadcast)
    A = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    c = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # one c for the whole batch
    # L''(c) = 1, so a step of 0.5 halves the distance to c* each iteration.
    opt = torch.optim.SGD([c], lr=0.5)
    for step in range(args.steps):
        opt.zero_grad()
        z = ft.solve(Q, -2 * r, A, c)  # (40, 2): every raw point projected onto z₁ + z₂ = c
        loss = (z - t).square().sum(dim=1).mean()
        loss.backward()
        opt.step()
        if step % 10 == 0:
            print(f"step {step:3d}  loss {loss.item():.6f}  c {c.item():.6f}")

    print(f"learned c = {c.item():.6f}")
    print(f"optimal c = {optimal_c(t):.6f}  (closed form: mean of t₁ + t₂)")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    with torch.no_grad():
        z = ft.solve(Q, -2 * r, A, c)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(*r.T, s=14, color="tab:gray", label="raw points r")
    ax.scatter(*t.T, s=14, color="tab:blue", label="targets t")
    ax.scatter(*z.T, s=14, color="tab:orange", marker="x", label="projections z")
    xs = np.array([-2.0, 4.0])
    ax.plot(xs, c.item() - xs, color="tab:orange", label=f"learned z₁ + z₂ = {c.item():.3f}")
    ax.set(xlabel="z₁", ylabel="z₂", aspect="equal", title="Learning a constraint")
    ax.legend(loc="upper right", fontsize="small")
    fig.savefig(args.out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
