"""Shared by the fastkkt.torch tests: an independent differentiable answer and test inputs.

`reference` solves the KKT system with ``torch.linalg.solve`` on the assembled matrix, so
autograd (to any order, forward or reverse mode) differentiates an answer that does not
involve fastkkt at all.
"""

from __future__ import annotations

import numpy as np
import torch

from fastkkt.testing import random_qp

F64 = torch.float64

# shapes (Q, q, A, c) for n = 4, m = 2
SHAPES = {
    "single": ((4, 4), (4,), (2, 4), (2,)),
    "batched": ((3, 4, 4), (3, 4), (3, 2, 4), (3, 2)),
    "shared_Q_A": ((4, 4), (2, 3, 4), (2, 4), (3, 2)),
    "broadcast_mixed": ((2, 1, 4, 4), (3, 4), (1, 3, 2, 4), (2, 1, 2)),
}


def reference(Q, q, A, c):
    """(z, λ) by torch.linalg.solve on K = [[sym(Q), Aᵀ], [A, 0]], b = [−q; c] in float64."""
    Q, q, A, c = (x.to(F64) for x in (Q, q, A, c))
    n, m = Q.shape[-1], A.shape[-2]
    batch = torch.broadcast_shapes(Q.shape[:-2], q.shape[:-1], A.shape[:-2], c.shape[:-1])
    S = ((Q + Q.mT) / 2).expand(*batch, n, n)
    A = A.expand(*batch, m, n)
    K = torch.cat([torch.cat([S, A.mT], -1), torch.cat([A, A.new_zeros(*batch, m, m)], -1)], -2)
    b = torch.cat([-q.expand(*batch, n), c.expand(*batch, m)], -1)
    x = torch.linalg.solve(K, b)
    return x[..., :n], x[..., n:]


def tensors(batch, n, m, *, seed=0, dtype=F64, grad=True):
    """random_qp as tensors (Q, q, A, c), leaves that require grad."""
    return tuple(
        torch.tensor(x, dtype=dtype).requires_grad_(grad) for x in random_qp(batch, n, m, seed=seed)
    )


def shaped(shapes, seed=0, dtype=F64, grad=True):
    """Inputs of the given shapes drawn from random_qp (a batch of 6, sliced/reshaped)."""
    full = random_qp(6, 4, 2, seed=seed)
    out = []
    for x, shape in zip(full, shapes):
        k = x.ndim - 1  # matrix/vector rank
        size = int(np.prod(shape[: len(shape) - k], dtype=int))
        out.append(torch.tensor(x[:size].reshape(shape), dtype=dtype).requires_grad_(grad))
    return tuple(out)
