"""Structured sketching (thesis Algorithm 2.1): each weight group as a sum of up to I_max binary bases.

Greedy residual sketching with a least-squares refit: the next basis is the sign of the
residual, then the coordinates of all bases so far are the least-squares fit of the
group. A group stops when its squared residual is at most sigma (or I_max is reached).
Every group of a layer is sketched at once.
"""
from __future__ import annotations

import numpy as np

from .state import QLayer

I_MAX = 8  # the format's largest I_g
SIGMA = 0.0  # residual threshold: 0 gives every group I_max bases unless it is reproduced exactly
EXACT = 1e-12  # a residual this small (relative to the group) is zero: a further sign basis would be degenerate


def sketch(w: np.ndarray, mask: np.ndarray, i_max: int = I_MAX, sigma: float = SIGMA
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Groups w [M, n] (mask [M, n]: real slots) -> bases [M, i_max, n] of +-1 (padding and unused +1),
    coordinates [M, i_max] (0 past a group's count) and counts [M]."""
    w = np.where(mask, w, 0.0)
    m, n = w.shape
    bases = np.ones((m, i_max, n))
    alpha = np.zeros((m, i_max))
    counts = np.zeros(m, np.int64)
    residual = w.copy()
    floor = np.maximum(sigma, EXACT * (w**2).sum(axis=1))
    for i in range(i_max):
        live = (residual**2).sum(axis=1) > floor
        if not live.any():
            break
        bases[live, i] = np.where(mask[live] & (residual[live] < 0), -1.0, 1.0)
        counts[live] = i + 1
        b = bases[live, : i + 1] * mask[live, None]  # [m', i+1, n]
        gram = b @ b.transpose(0, 2, 1)
        alpha[live, : i + 1] = np.linalg.solve(gram, (b @ w[live, :, None]))[..., 0]
        residual[live] = w[live] - np.einsum("mi,min->mn", alpha[live, : i + 1], b)
    return bases, alpha, counts


def sketch_layer(groups, w: np.ndarray, bias: np.ndarray, i_max: int = I_MAX, sigma: float = SIGMA) -> QLayer:
    """A training layer's float weights (its layout) and bias -> its multi-bit form."""
    g = groups.to_groups(w)
    o, gg, n = g.shape
    mask = np.broadcast_to(groups.mask, g.shape).reshape(-1, n)
    bases, alpha, counts = sketch(g.reshape(-1, n), mask, i_max, sigma)
    q = QLayer(groups, w.shape, bases.reshape(o, gg, i_max, n), alpha.reshape(o, gg, i_max),
               counts.reshape(o, gg), np.asarray(bias, np.float64).copy())
    q.canonical()
    return q
