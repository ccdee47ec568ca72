"""Euclidean projection onto the probability simplex as a batched QP, and projected gradient
descent on the simplex.

The projection of v ∈ ℝⁿ onto Δ = {z : Σz = 1, z ≥ 0} is

    minimize_z  ½‖z − v‖²  subject to  1ᵀz = 1,  z ≥ 0      (Q = I, q = −v, A = 1ᵀ, c = 1, lb = 0)

with the well-known closed form z = max(v − θ, 0), θ from the sorted entries of v (Held,
Wolfe & Crowder 1974; Duchi, Shalev-Shwartz, Singer & Chandra 2008, Fig. 1). One fastkkt
call projects a whole batch, with Q, A and c shared (broadcast) and only q batched.

The multipliers explain the closed form. The KKT conditions read z − v + λ·1 + ν = 0 with
ν ≤ 0 (lower bounds): where zᵢ > 0, νᵢ = 0 and zᵢ = vᵢ − λ, so θ = λ; where zᵢ = 0, the
lower-bound multiplier μᵢ = −νᵢ = θ − vᵢ > 0: the component is zero *because* vᵢ lies below
the threshold θ, by exactly μᵢ (complementary slackness: zᵢ·μᵢ = 0).

Then projected gradient descent minimizes ½‖Mx − b‖² over the simplex for a batch of
least-squares problems (x ← P_Δ(x − ∇f(x)/L), each step one batched projection) and is checked
against solving the same problems directly as QPs (Q = MᵀM, q = −Mᵀb). Run:

    python examples/simplex_projection.py [--batch 1000] [--n 20] [--steps 500]
"""

from __future__ import annotations

import argparse

import numpy as np

import fastkkt


def project(v: np.ndarray, return_multipliers: bool = False):
    """Project each row of v (B, n) onto the probability simplex with one fastkkt call."""
    n = v.shape[-1]
    return fastkkt.solve_qp(
        np.eye(n),
        -v,
        A=np.ones((1, n)),
        c=np.ones(1),
        lb=0.0,
        return_multipliers=return_multipliers,
    )


def project_sort(v: np.ndarray) -> np.ndarray:
    """The sort-based closed form (Duchi et al. 2008, Fig. 1), batched over rows."""
    n = v.shape[-1]
    u = -np.sort(-v, axis=-1)
    css = np.cumsum(u, axis=-1) - 1.0
    j = np.arange(1, n + 1)
    rho = (u - css / j > 0).sum(axis=-1)  # the condition holds exactly for j ≤ ρ
    theta = np.take_along_axis(css, rho[..., None] - 1, axis=-1) / rho[..., None]
    return np.maximum(v - theta, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    B, n = args.batch, args.n

    # 1. projection of a batch, against the closed form
    v = rng.standard_normal((B, n))
    z, lam, _, nu = project(v, return_multipliers=True)
    err = np.abs(z - project_sort(v)).max()
    print(f"projected {B} vectors of length {n}: max |z - closed form| = {err:.3e}")
    print(f"mean number of zero components: {(z < 1e-9).sum(-1).mean():.2f} of {n}")

    # 2. complementary slackness, shown on the first vector
    theta = lam[0, 0]
    print(f"\nfirst vector: threshold θ = λ = {theta:.6f}")
    print("   i      v_i      z_i   μ_i = −ν_i   θ − v_i")
    shown = np.where(np.abs(z[0]) < 1e-12, 0.0, z[0]), np.where(np.abs(nu[0]) < 1e-12, 0.0, -nu[0])
    for i in np.argsort(-v[0])[: min(n, 8)]:
        print(
            f"{i:4d} {v[0, i]:8.4f} {shown[0][i]:8.4f} {shown[1][i]:12.6f} {theta - v[0, i]:9.4f}"
        )
    zero = z < 1e-9
    slack = np.abs(np.where(zero, -nu - (lam - v), 0.0)).max()
    print(f"max |μ_i − (θ − v_i)| over zero components = {slack:.3e}")
    print(f"max |z_i μ_i| (complementary slackness) = {np.abs(z * nu).max():.3e}")
    print(f"min μ_i over zero components = {(-nu)[zero].min():.3e} (> 0: strictly below θ)")

    # 3. projected gradient descent for min ½‖Mx − b‖² over the simplex, batched
    m = 2 * n
    M = rng.standard_normal((B, m, n)) / np.sqrt(m)
    b = rng.standard_normal((B, m))
    L = np.linalg.eigvalsh(M.transpose(0, 2, 1) @ M)[:, -1:]  # Lipschitz constant per problem
    x = np.full((B, n), 1.0 / n)
    for _ in range(args.steps):
        grad = np.einsum("bmi,bm->bi", M, np.einsum("bmi,bi->bm", M, x) - b)
        x = project(x - grad / L)
    Q = M.transpose(0, 2, 1) @ M
    x_qp = fastkkt.solve_qp(
        Q, -np.einsum("bmi,bm->bi", M, b), A=np.ones((1, n)), c=np.ones(1), lb=0.0
    )

    def f(x):
        return 0.5 * (np.einsum("bmi,bi->bm", M, x) - b) ** 2

    gap = (f(x).sum(-1) - f(x_qp).sum(-1)).max()
    print(f"\nprojected gradient descent, {args.steps} steps on {B} least-squares problems:")
    print(f"max objective gap to the direct QP solution = {gap:.3e}")
    print(f"max |x_pgd - x_qp| = {np.abs(x - x_qp).max():.3e}")


if __name__ == "__main__":
    main()
