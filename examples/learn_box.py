"""An OptNet-style projection layer that learns its constraints from data.

Hidden constraints: a box lb⋆ ≤ z ≤ ub⋆ and a half-space aᵀz ≤ h⋆ (a known, h⋆ hidden) in
R^d. We see raw points x and their projections y onto the hidden feasible set, and learn
(lb, ub, h) so that the layer

    z(x) = argmin_z ½‖z − x‖²  s.t.  aᵀz ≤ h,  lb ≤ z ≤ ub      (Q = I, q = −x)

reproduces y: Adam on the mean squared error, gradients through fastkkt.torch.solve_qp
(implicit differentiation of the KKT conditions). The learned constraints recover the
hidden ones. Run:  python examples/learn_box.py [--steps 400] [--dim 4] [--samples 256]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import fastkkt
import fastkkt.torch as ft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--dim", type=int, default=4)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    d = args.dim
    lb_star = -rng.uniform(0.5, 1.5, d)
    ub_star = rng.uniform(0.5, 1.5, d)
    a = np.ones(d) / np.sqrt(d)
    h_star = 0.5
    x = 2.0 * rng.standard_normal((args.samples, d))
    # targets: the projections onto the hidden set, by the NumPy solver
    y = fastkkt.solve_qp(np.eye(d), -x, G=a[None], h=[h_star], lb=lb_star, ub=ub_star)

    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    Q, G = torch.eye(d, dtype=torch.float64), torch.from_numpy(a[None])
    lb = torch.full((d,), -0.2, dtype=torch.float64, requires_grad=True)
    ub = torch.full((d,), 0.2, dtype=torch.float64, requires_grad=True)
    h = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([lb, ub, h], lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    for step in range(args.steps):
        opt.zero_grad()
        z = ft.solve_qp(Q, -X, G=G, h=h, lb=lb, ub=ub)  # one batched call, (samples, d)
        loss = (z - Y).square().sum(dim=1).mean()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():  # keep the box non-empty
            ub.copy_(torch.maximum(ub, lb + 1e-3))
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.3e}")

    err_lb = float(np.abs(lb.detach().numpy() - lb_star).max())
    err_ub = float(np.abs(ub.detach().numpy() - ub_star).max())
    err_h = abs(float(h.detach()) - h_star)
    print("hidden  lb", np.round(lb_star, 4), " ub", np.round(ub_star, 4), f" h {h_star:.4f}")
    print("learned lb", np.round(lb.detach().numpy(), 4), " ub", np.round(ub.detach().numpy(), 4),
          f" h {float(h.detach()):.4f}")  # fmt: skip
    print(f"max |lb - lb*| = {err_lb:.2e}")
    print(f"max |ub - ub*| = {err_ub:.2e}")
    print(f"|h - h*| = {err_h:.2e}")
    print(f"final loss = {loss.item():.3e}")


if __name__ == "__main__":
    main()
