"""Learn an input-dependent constraint: a network predicts the right-hand side c = f_θ(x).

For each input x the target t lies on the plane set {z ∈ R³ : A z = g(x)} of a hidden
function g: R → R². The model sees only x and a noisy observation r = t + noise, and outputs

    z(x, r) = argmin_z ‖z − r‖²  s.t.  A z = f_θ(x)      (Q = 2I, q = −2r),

trained on ‖z − t‖² alone: it is never told g. Since z − t = (I − P)(r − t) + Aᵀ(AAᵀ)⁻¹(f_θ(x) −
g(x)) with P the projector onto range(Aᵀ), the loss is smallest exactly when f_θ = g, so the
constraint error ‖A z − g(x)‖ on held-out inputs goes to zero. Run:
    python examples/input_dependent_constraint.py
"""

from __future__ import annotations

import math

import torch

import fastkkt.torch as ft

A = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, 0.5]])  # known structure of the constraints


def g(x: torch.Tensor) -> torch.Tensor:
    """The hidden right-hand side, (N, 1) -> (N, 2)."""
    return torch.cat([torch.sin(math.pi * x), x.square() - 0.5], dim=1)


def sample(N: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs x (N, 1), targets t on A t = g(x) (N, 3), observations r = t + noise (N, 3)."""
    x = 2 * torch.rand(N, 1, generator=gen) - 1
    t0 = torch.linalg.lstsq(A, g(x).T).solution.T  # a particular solution, (N, 3)
    null = torch.linalg.svd(A).Vh[-1]  # the null space of A is one line
    t = t0 + torch.randn(N, 1, generator=gen) * null
    r = t + 0.3 * torch.randn(N, 3, generator=gen)
    return x, t, r


def constraint_error(model: torch.nn.Module, x: torch.Tensor, r: torch.Tensor) -> float:
    """Mean ‖A z − g(x)‖ of the layer's outputs on held-out data."""
    with torch.no_grad():
        z = ft.solve(2 * torch.eye(3), -2 * r, A, model(x))
        return float((z @ A.T - g(x)).norm(dim=1).mean())


def main() -> None:
    torch.manual_seed(0)  # the network's initialization
    gen = torch.Generator().manual_seed(1)
    x, t, r = sample(256, gen)
    x_test, _, r_test = sample(256, gen)

    f = torch.nn.Sequential(
        torch.nn.Linear(1, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 2),
    )
    opt = torch.optim.Adam(f.parameters(), lr=1e-2)
    Q = 2 * torch.eye(3)  # shared by the whole batch
    start = constraint_error(f, x_test, r_test)
    print(f"constraint error before training: {start:.4f}")
    for step in range(250):
        opt.zero_grad()
        z = ft.solve(Q, -2 * r, A, f(x))  # a batch of 256 QPs, each with its own c = f_θ(x)
        loss = (z - t).square().sum(dim=1).mean()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"step {step:3d}  loss {loss.item():.4f}")
    final = constraint_error(f, x_test, r_test)
    print(f"constraint error after training: {final:.4f}")


if __name__ == "__main__":
    main()
