"""Sparsemax attention through the differentiable QP layer.

sparsemax(x) (Martins & Astudillo, ICML 2016) is the Euclidean projection onto the simplex,

    sparsemax(x) = argmin_z ½‖z − x‖²  s.t.  1ᵀz = 1,  z ≥ 0
                   (Q = I, q = −x, A = 1ᵀ, c = 1, lb = 0),

sparse where softmax is dense. Its Jacobian is diag(s) − s sᵀ/|S|, s the indicator of the
support S. This script (1) checks the layer against the sort-based closed form and its
Jacobian (torch.autograd.functional.jacobian through fastkkt.torch.solve_qp) against that
formula, then (2) trains a sparsemax attention layer on a small retrieval task: each sample has
T keys and a query; the value to return is that of the key with the largest hidden bilinear
score k_iᵀ W⋆ q; the layer learns W with attention p = sparsemax(K W q) and output Σ p_i v_i.
Run:  python examples/sparsemax.py [--steps 300] [--samples 512]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import fastkkt.torch as ft


def sparsemax_layer(x: torch.Tensor) -> torch.Tensor:
    """sparsemax over the last dimension of x (..., T), by the QP layer."""
    T = x.shape[-1]
    one = torch.ones((1, T), dtype=x.dtype)
    return ft.solve_qp(torch.eye(T, dtype=x.dtype), -x, A=one, c=one[0, :1], lb=0.0)


def sparsemax_closed_form(x: np.ndarray) -> np.ndarray:
    """The sort-based algorithm of Martins & Astudillo: τ from the sorted prefix sums."""
    s = -np.sort(-x, axis=-1)
    k = np.arange(1, x.shape[-1] + 1)
    cums = np.cumsum(s, axis=-1)
    support = 1 + k * s > cums
    kz = support.sum(axis=-1, keepdims=True)
    tau = (np.take_along_axis(cums, kz - 1, axis=-1) - 1) / kz
    return np.maximum(x - tau, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    # (1) the layer is sparsemax, and its Jacobian is the closed form
    x = rng.standard_normal((64, 7))
    p = sparsemax_layer(torch.from_numpy(x)).numpy()
    print(f"max |layer - closed form| = {np.abs(p - sparsemax_closed_form(x)).max():.2e}")
    worst = 0.0
    for xi in x[:8]:
        J = torch.autograd.functional.jacobian(sparsemax_layer, torch.from_numpy(xi)).numpy()
        s = (sparsemax_closed_form(xi) > 0).astype(float)
        J_closed = np.diag(s) - np.outer(s, s) / s.sum()
        worst = max(worst, float(np.abs(J - J_closed).max()))
    print(f"max |Jacobian - (diag(s) - s s^T/|S|)| = {worst:.2e}")

    # (2) a sparsemax attention layer trained on a retrieval task
    T, d, B = 6, 4, args.samples
    W_star = rng.standard_normal((d, d))
    keys = rng.standard_normal((B, T, d))
    query = rng.standard_normal((B, d))
    values = rng.standard_normal((B, T, 3))
    scores_star = np.einsum("btd,de,be->bt", keys, W_star, query)
    best = scores_star.argmax(axis=1)
    target = values[np.arange(B), best]

    Kt, qt, Vt, Yt = (torch.from_numpy(a) for a in (keys, query, values, target))
    W = torch.zeros((d, d), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([W], lr=0.1)
    for step in range(args.steps):
        opt.zero_grad()
        attn = sparsemax_layer(torch.einsum("btd,de,be->bt", Kt, W, qt))
        out = torch.einsum("bt,btk->bk", attn, Vt)
        loss = (out - Yt).square().sum(dim=1).mean()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    with torch.no_grad():
        attn = sparsemax_layer(torch.einsum("btd,de,be->bt", Kt, W, qt)).numpy()
    accuracy = float((attn.argmax(axis=1) == best).mean())
    support = float((attn > 0).sum(axis=1).mean())
    print(f"retrieval accuracy = {accuracy:.3f}")
    print(f"mean support size = {support:.2f}  (of T = {T})")
    print(f"final loss = {loss.item():.4f}")


if __name__ == "__main__":
    main()
