"""Multi-bit activations (thesis 2.5): a layer input x becomes x_ref + sum_j gamma_j d_j, d_j = +-1.

The quantizer is the integer reference's: the nearest of the 2^I_x levels, a tie to the
lower level, equal levels to the smaller code; taps outside the image take the lowest
level. gamma' = [x_ref, gamma] follows a running average of the least-squares fit of the
batch to its own codes (Eq. 2.30/2.31). The backward pass is a straight-through estimate,
zero outside the levels' range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MOMENTUM = 0.9  # Eq. 2.31
RANGE_QUANTILE = 99.5  # the initial levels span the inputs up to this percentile (outliers would waste levels)
MIN_GAMMA = 1e-3  # a coordinate never reaches 0 (the format needs gamma > 0), relative to the range


@dataclass
class ActQuant:
    x_ref: float
    gamma: np.ndarray  # [I_x] > 0

    @property
    def bits(self) -> int:
        return len(self.gamma)

    @classmethod
    def fit(cls, x: np.ndarray, bits: int) -> ActQuant:
        """Uniform levels over the observed range: gamma_j = step 2^j / 2, x_ref the range's middle."""
        lo, hi = float(np.min(x)), float(np.percentile(x, RANGE_QUANTILE))
        hi = max(hi, lo + 1e-6)
        step = (hi - lo) / ((1 << bits) - 1)
        return cls((lo + hi) / 2, step / 2 * 2.0 ** np.arange(bits))

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """Codes' signs [2^I_x, I_x] (+-1) and levels [2^I_x], sorted by level then code."""
        codes = (np.arange(1 << self.bits)[:, None] >> np.arange(self.bits)) & 1
        signs = 1.0 - 2.0 * codes
        levels = self.x_ref + signs @ self.gamma
        order = np.lexsort((np.arange(len(levels)), levels))
        return signs[order], levels[order]

    def lowest(self) -> float:
        return self.x_ref - float(self.gamma.sum())

    def quantize(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x -> (the nearest levels, their level indices into :meth:`table`)."""
        _, levels = self.table()
        mids = (levels[1:] + levels[:-1]) / 2
        index = np.searchsorted(mids, x, side="left")  # x on a midpoint goes to the lower level
        index = np.searchsorted(levels, levels, side="left")[index]  # equal levels: the first, the smaller code
        return levels[index], index

    def passes(self, x: np.ndarray) -> np.ndarray:
        """The straight-through gradient's mask: x within the levels' range."""
        return (x >= self.lowest()) & (x <= self.x_ref + self.gamma.sum())

    def least_squares(self, x: np.ndarray, index: np.ndarray) -> np.ndarray:
        """gamma'_new = (D'^T D')^-1 D'^T x (Eq. 2.30), D' = [1, D] the codes' signs; the minimum-norm
        solution when a code bit never changes over the batch."""
        signs, _ = self.table()
        design = np.concatenate([np.ones((x.size, 1)), signs[index.ravel()]], axis=1)
        return np.linalg.lstsq(design, x.ravel(), rcond=None)[0]

    def update(self, x: np.ndarray) -> None:
        """One running-average step (Eq. 2.31) on a batch of this layer's inputs."""
        _, index = self.quantize(x)
        new = self.least_squares(x, index)
        old = np.concatenate([[self.x_ref], self.gamma])
        mixed = MOMENTUM * old + (1 - MOMENTUM) * new
        floor = MIN_GAMMA * max(float(self.gamma.sum()), 1e-6)
        self.x_ref, self.gamma = float(mixed[0]), np.maximum(mixed[1:], floor)
