"""Pruning in the alpha domain (thesis Algorithm 2.2, Eq. 2.15/2.16).

Each coordinate's loss increment if it were set to 0, under the AMSGrad quadratic model, is
``f_i = -g_i alpha_i + H_ii alpha_i^2 / 2``. g and H come from the weight-domain moments (the
ones Algorithm 2.4 keeps) through w = B alpha: g_alpha = B^T g (Eq. 2.16) and H_ii = sum_j H_jj.
Moments of dl/dalpha itself (AMSGrad run in the alpha domain) would give H_ii = |beta_i^T g|-ish,
which cancels within a group and made whole groups look free to remove: on digits at 1 bit
that lost 15 points of accuracy. Candidates are each layer's top-k% smallest
(so one layer cannot take every cut), then sorted together. Removing alpha_gi drops its
basis too: the group's remaining bases move down one slot and I_g shrinks.

Deviation: the thesis counts coordinates because its layers' groups are about the same
size; here they are not (9 to 128 weights), so the budget is in weight bits (sum I_g n_g)
and the global order is by loss increment per bit freed, f_i / n_g.
"""
from __future__ import annotations

import numpy as np

from .state import QLayer

# Each layer's candidates: this fraction of its live coordinates. The thesis' 0.5-1% of a layer is
# 10-100x what one of its iterations cuts (30% of the coordinates over an epoch of hundreds to
# thousands of iterations), so the global order by f decides; here a Pruning Step has about 25
# cutting iterations of about 1% of the bits each, and a 5% pool (about 4x a cut) bounded what
# each layer could give per iteration: at 1 bit it lost 5.7 points (3-seed mean, ALQ.md). 25%
# keeps the pool about 20x a cut, as the thesis'; 0.5 and 1 gave the same accuracies on digits.
TOP_K = 0.25


def increments(q: QLayer, g: np.ndarray, h: np.ndarray) -> np.ndarray:
    """f_i per slot [O, G, I_max] (Eq. 2.15) from the weight-domain model (g, H: [O, G, n]) carried to
    alpha as Eq. 2.16 does: g_alpha = B^T g, H_alpha,ii = beta_i^T H beta_i = sum_j H_jj; +inf on unused slots."""
    mask = q.groups.mask
    g_alpha = np.einsum("ogin,ogn->ogi", q.bases, g * mask)
    h_alpha = (h * mask).sum(axis=-1)[..., None]
    return np.where(q.live, -g_alpha * q.alpha + 0.5 * h_alpha * q.alpha**2, np.inf)


def choose(layers: list[QLayer], scores: list[np.ndarray], bits: float, top_k: float = TOP_K) -> list[np.ndarray]:
    """Masks [O, G, I_max] of the coordinates to remove so that at least ``bits`` weight bits go
    (fewer if not enough are live): per layer the top-k% by f / n_g, then the cheapest of those;
    every live coordinate is a candidate when the top-k% hold too few bits."""
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
    if top_k < 1 and sum(float(s.sum()) for s in sizes) < bits:
        return choose(layers, scores, bits, 1.0)
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


def remove(q: QLayer, dead: np.ndarray) -> None:
    """Drop the slots ``dead`` [O, G, I_max] (live ones): later bases move down, I_g shrinks."""
    order = np.argsort(dead, axis=-1, kind="stable")  # kept slots first, in their order
    q.counts = q.counts - dead.sum(axis=-1)
    q.alpha = np.take_along_axis(np.where(dead, 0.0, q.alpha), order, axis=-1)
    q.bases = np.take_along_axis(q.bases, order[..., None], axis=2)
    q.canonical()
