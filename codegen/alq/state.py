"""A layer's multi-bit weights in float: bases B [O, G, I_max, n] of +-1, coordinates alpha [O, G, I_max],
counts I_g [O, G] and the bias; ``w_g = sum_{i < I_g} alpha_gi beta_gi`` (thesis Eq. 2.1).

Canonical form (what the file format needs): alpha >= 0 (a negative coordinate flips its
basis, as the thesis keeps alpha non-negative), live bases first, and every unused basis
slot and padding element +1 with alpha 0, so their bit-planes are 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .structure import Groups


@dataclass
class QLayer:
    groups: Groups
    shape: tuple[int, ...]  # the training layout of the weights
    bases: np.ndarray  # [O, G, I_max, n] float +-1
    alpha: np.ndarray  # [O, G, I_max]
    counts: np.ndarray  # [O, G] int
    bias: np.ndarray  # [O]

    @property
    def i_max(self) -> int:
        return self.alpha.shape[-1]

    @property
    def group_shape(self) -> tuple[int, int, int]:
        """[O, G, n]: the weights as groups."""
        return self.alpha.shape[:2] + (self.groups.n,)

    @property
    def live(self) -> np.ndarray:
        """[O, G, I_max]: the slots below each group's count."""
        return np.arange(self.i_max) < self.counts[..., None]

    def grouped(self) -> np.ndarray:
        """The quantized weights as groups [O, G, n] (padding slots 0)."""
        return np.einsum("ogi,ogin->ogn", self.alpha * self.live, self.bases) * self.groups.mask

    def weights(self) -> np.ndarray:
        """The quantized weights in the training layout."""
        return self.groups.from_groups(self.grouped(), self.shape)

    def alpha_grad(self, grad_w: np.ndarray) -> np.ndarray:
        """dl/dalpha = B^T dl/dw per group (Eq. 2.16), 0 on unused slots."""
        g = self.groups.to_groups(grad_w)
        return np.einsum("ogin,ogn->ogi", self.bases, g) * self.live

    def canonical(self) -> None:
        flip = self.alpha < 0
        self.alpha = np.abs(self.alpha) * self.live
        self.bases = np.where(flip[..., None], -self.bases, self.bases)
        keep = self.live[..., None] & self.groups.mask[:, None, :]
        self.bases = np.where(keep, self.bases, 1.0)

    def bits(self) -> float:
        """sum_g I_g n_g: the weight bits (thesis Eq. 2.2 times the layer's weights)."""
        return float((self.counts * self.groups.lengths()).sum())

    def copy(self) -> QLayer:
        return QLayer(self.groups, self.shape, self.bases.copy(), self.alpha.copy(), self.counts.copy(),
                      self.bias.copy())


def average_bits(layers: list[QLayer]) -> float:
    """The model's average weight bit-width: sum of I_g n_g over all weights."""
    return sum(q.bits() for q in layers) / sum(q.groups.units * q.groups.length for q in layers)
