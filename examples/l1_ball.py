"""L1-ball constrained least squares as a QP, and its equivalence with the lasso.

    minimize_β  ½‖Xβ − y‖²  subject to  ‖β‖₁ ≤ t

is a QP after splitting β = u − v with u, v ≥ 0 (at the optimum uᵢvᵢ = 0, so ‖β‖₁ = Σ(u + v)):

    z = [u; v],  Q = [[XᵀX, −XᵀX], [−XᵀX, XᵀX]],  q = [−Xᵀy; Xᵀy],  G = 1ᵀ, h = t,  lb = 0.

Q is singular (rank ≤ d of 2d), which fastkkt accepts. By Lagrangian duality the solution
also solves the penalized (lasso) problem min ½‖Xβ − y‖² + λ‖β‖₁ at λ = μ, the multiplier of
the ball constraint ‖β‖₁ ≤ t. That is checked in numbers against scikit-learn's Lasso
(coordinate descent; its objective is scaled by 1/n_samples, so alpha = μ/n_samples) at a
tight tolerance. Several radii t are solved in one call: Q, q, G and lb are shared and only
h is batched (a regularization path).

Data: scikit-learn's diabetes (442 samples, 10 features), y centered, no intercept. Run:

    python examples/l1_ball.py [--fractions 0.1 0.3 0.6 0.9]
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Lasso

import fastkkt


def l1_ball_least_squares(X: np.ndarray, y: np.ndarray, t: np.ndarray):
    """β (len(t), d) and the ball multipliers μ (len(t),) for each radius in t."""
    d = X.shape[1]
    XtX, Xty = X.T @ X, X.T @ y
    Q = np.block([[XtX, -XtX], [-XtX, XtX]])
    q = np.concatenate([-Xty, Xty])
    z, _, mu, _ = fastkkt.solve_qp(
        Q, q, G=np.ones((1, 2 * d)), h=t[:, None], lb=0.0, return_multipliers=True
    )
    return z[:, :d] - z[:, d:], mu[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fractions", type=float, nargs="+", default=[0.1, 0.3, 0.6, 0.9],
        help="radii t as fractions of ‖β_ols‖₁",
    )  # fmt: skip
    args = parser.parse_args()

    X, y = load_diabetes(return_X_y=True)
    y = y - y.mean()
    n_samples = len(y)
    beta_ols = np.linalg.lstsq(X, y, rcond=None)[0]
    t = np.array(args.fractions) * np.abs(beta_ols).sum()
    beta, mu = l1_ball_least_squares(X, y, t)

    print(f"‖β_ols‖₁ = {np.abs(beta_ols).sum():.4f}")
    print("   t/‖β_ols‖₁   ‖β‖₁       λ = μ      nonzeros  max |β − β_lasso|")
    worst = 0.0
    for k, frac in enumerate(args.fractions):
        lasso = Lasso(alpha=mu[k] / n_samples, fit_intercept=False, tol=1e-14, max_iter=10**6)
        lasso.fit(X, y)
        diff = np.abs(beta[k] - lasso.coef_).max()
        worst = max(worst, diff / max(1.0, np.abs(lasso.coef_).max()))
        nonzero = int((np.abs(beta[k]) > 1e-8 * np.abs(beta[k]).max()).sum())
        print(f"{frac:12.2f} {np.abs(beta[k]).sum():9.4f} {mu[k]:11.4f} {nonzero:9d} {diff:16.3e}")
    print(f"max relative |beta - beta_lasso| = {worst:.3e}")
    # the ball constraint is active (μ > 0) exactly when t < ‖β_ols‖₁
    print(f"constraint active (‖β‖₁ = t) in every case: {np.allclose(np.abs(beta).sum(1), t)}")


if __name__ == "__main__":
    main()
