"""A soft-margin support vector machine trained by solving its dual QP with fastkkt.

For samples xᵢ with labels yᵢ = ±1 and a kernel K, the dual problem is

    minimize_α  ½ αᵀ (yyᵀ ∘ K) α − 1ᵀα   subject to  yᵀα = 0,  0 ≤ α ≤ C,

i.e. Q = yyᵀ∘K, q = −1, A = yᵀ, c = 0, lb = 0, ub = C. The support vectors are the samples
with α > 0; the classifier is f(x) = Σⱼ αⱼ yⱼ K(xⱼ, x) + b, and the bias b is the multiplier
λ of the equality constraint: on a margin support vector (0 < α < C, so ν = 0) the KKT row
(Qα − 1 + λy)ᵢ = 0 reads yᵢ f(xᵢ) = 1 with b = λ. For the linear kernel K = XXᵀ,
w = Σⱼ αⱼ yⱼ xⱼ, and Q has rank ≤ 30 for 569 samples: singular, which qpth cannot take.

Data: scikit-learn's breast_cancer (569 samples, 30 features, standardized). The result is
compared with sklearn.svm.SVC (libsvm, an SMO solver) at a tight tolerance: the same
support vectors, dual objective and b (and w for the linear kernel; α itself is not unique
there since Q is singular). Run:

    python examples/svm_dual.py [--C 1.0] [--kernels linear rbf] [--samples N]
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.svm import SVC

import fastkkt


def load() -> tuple[np.ndarray, np.ndarray]:
    data = load_breast_cancer()
    X = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    y = np.where(data.target == 1, 1.0, -1.0)
    return X, y


def kernel_matrix(X: np.ndarray, Z: np.ndarray, kernel: str, gamma: float) -> np.ndarray:
    if kernel == "linear":
        return X @ Z.T
    sq = (X * X).sum(1)[:, None] + (Z * Z).sum(1)[None, :] - 2 * X @ Z.T
    return np.exp(-gamma * np.maximum(sq, 0.0))


def train(X: np.ndarray, y: np.ndarray, kernel: str, C: float, gamma: float):
    """α and b of the soft-margin SVM, from one fastkkt.solve_qp call."""
    n = len(y)
    Q = np.outer(y, y) * kernel_matrix(X, X, kernel, gamma)
    alpha, lam, _, nu = fastkkt.solve_qp(
        Q, -np.ones(n), A=y[None, :], c=np.zeros(1), lb=0.0, ub=C, return_multipliers=True
    )
    return alpha, float(lam[0]), nu


def dual_objective(alpha: np.ndarray, X: np.ndarray, y: np.ndarray, kernel, gamma) -> float:
    Q = np.outer(y, y) * kernel_matrix(X, X, kernel, gamma)
    return 0.5 * alpha @ Q @ alpha - alpha.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--C", type=float, default=1.0, help="box constraint (default 1)")
    parser.add_argument("--kernels", nargs="+", default=["linear", "rbf"])
    parser.add_argument("--samples", type=int, default=None, help="use the first N samples")
    args = parser.parse_args()

    X, y = load()
    X, y = X[: args.samples], y[: args.samples]
    gamma = 1.0 / (X.shape[1] * X.var())  # sklearn's gamma="scale"
    C = args.C
    for kernel in args.kernels:
        alpha, b, nu = train(X, y, kernel, C, gamma)
        threshold = 1e-6 * C
        support = np.flatnonzero(alpha > threshold)
        at_bound = np.flatnonzero(alpha > C - threshold)
        f = (alpha * y) @ kernel_matrix(X, X, kernel, gamma) + b
        print(f"--- {kernel} kernel, C = {C:g}")
        print(f"support vectors: {len(support)} ({len(at_bound)} at α = C)")
        if len(at_bound):
            print(f"bound multipliers ν at α = C: min {nu[at_bound].min():.4g} (≥ 0: upper bound)")
        print(f"bias b = λ = {b:.8f}")
        if kernel == "linear":
            w = (alpha * y) @ X
            print(f"w = Σ αᵢyᵢxᵢ: ‖w‖ = {np.linalg.norm(w):.6f}, first three {w[:3].round(4)}")
        print(f"training accuracy: {(np.sign(f) == y).mean():.4f}")

        svc = SVC(C=C, kernel=kernel, gamma=gamma, tol=1e-10, shrinking=False, max_iter=-1)
        svc.fit(X, y)
        alpha_svc = np.zeros(len(y))
        alpha_svc[svc.support_] = np.abs(svc.dual_coef_[0])
        same = np.array_equal(np.sort(svc.support_), support)
        obj, obj_svc = (dual_objective(a, X, y, kernel, gamma) for a in (alpha, alpha_svc))
        print(f"sklearn SVC (libsvm): {len(svc.support_)} support vectors, same set: {same}")
        if kernel == "linear":
            print(f"max |w - w_svc| = {np.abs(w - svc.coef_[0]).max():.3e}")
        print(f"max |alpha - alpha_svc| = {np.abs(alpha - alpha_svc).max():.3e}")
        print(f"|b - b_svc| = {abs(b - svc.intercept_[0]):.3e}")
        print(f"dual objective {obj:.10f}, libsvm {obj_svc:.10f}")
        print(f"relative dual objective difference = {abs(obj - obj_svc) / abs(obj_svc):.3e}")
        agree = (np.sign(f) == svc.predict(X)).mean()
        print(f"predictions agree with SVC: {agree:.4f}")


if __name__ == "__main__":
    main()
