"""Pruning in the alpha domain (thesis Algorithm 2.2, Eq. 2.15/2.16).

Each coordinate's loss increment if it were set to 0, under the AMSGrad quadratic model, is
``f_i = -g_i alpha_i + H_ii alpha_i^2 / 2``. Candidates are each layer's top-k% smallest
(so one layer cannot take every cut), then sorted together. Removing alpha_gi drops its
basis too: the group's remaining bases move down one slot and I_g shrinks.

Deviation: the thesis counts coordinates because its layers' groups are about the same
size; here they are not (9 to 128 weights), so the budget is in weight bits (sum I_g n_g)
and the global order is by loss increment per bit freed, f_i / n_g.
"""
from __future__ import annotations

import numpy as np

from .state import QLayer

TOP_K = 0.05  # each layer's candidates: this fraction of its live coordinates (the thesis uses 0.5-1% of far more)


def increments(q: QLayer, g: np.ndarray, h: np.ndarray) -> np.ndarray:
    """f_i per slot [O, G, I_max] (Eq. 2.15); +inf on unused slots."""
    f = -g * q.alpha + 0.5 * h * q.alpha**2
    return np.where(q.live, f, np.inf)


def choose(layers: list[QLayer], scores: list[np.ndarray], bits: float, top_k: float = TOP_K) -> list[np.ndarray]:
    """Masks [O, G, I_max] of the coordinates to remove so that at least ``bits`` weight bits go
    (fewer if not enough are live): per layer the top-k% by f / n_g, then the cheapest of those."""
    per_bit, sizes, picks = [], [], []
    for q, f in zip(layers, scores):
        n_g = np.broadcast_to(q.groups.lengths()[None, :, None], f.shape)
        ratio = (f / n_g).ravel()
        live = int(np.isfinite(ratio).sum())
        k = min(live, max(1, int(np.ceil(top_k * live))))
        pick = np.argpartition(ratio, k - 1)[:k] if k else np.zeros(0, np.int64)
        per_bit.append(ratio[pick])
        sizes.append(n_g.ravel()[pick])
        picks.append(pick)
    order = np.argsort(np.concatenate(per_bit), kind="stable")
    freed = np.cumsum(np.concatenate(sizes)[order])
    take = order[: int(np.searchsorted(freed, bits)) + 1] if bits > 0 else order[:0]
    bounds = np.cumsum([0] + [len(p) for p in picks])
    masks = []
    for q, pick, lo, hi in zip(layers, picks, bounds[:-1], bounds[1:]):
        mask = np.zeros(q.alpha.size, bool)
        mask[pick[take[(take >= lo) & (take < hi)] - lo]] = True
        masks.append(mask.reshape(q.alpha.shape))
    return masks


def remove(q: QLayer, dead: np.ndarray) -> np.ndarray:
    """Drop the slots ``dead`` [O, G, I_max] (live ones): later bases move down, I_g shrinks.
    Returns the slot order applied, for moments kept per slot."""
    order = np.argsort(dead, axis=-1, kind="stable")  # kept slots first, in their order
    q.counts = q.counts - dead.sum(axis=-1)
    q.alpha = np.take_along_axis(np.where(dead, 0.0, q.alpha), order, axis=-1)
    q.bases = np.take_along_axis(q.bases, order[..., None], axis=2)
    q.canonical()
    return order
