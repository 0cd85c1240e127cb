"""Weight groups of ALQ layers: a training layer's weights as [O, G, n] groups in the format's reduction order.

The structure is chosen once per model (``--group``): ``kernel`` groups a conv's weights
per input channel's window; a 1x1 conv has no window and takes ``channel`` groups (a
unit's whole input), and a fully connected layer takes runs of one 32-bit word (the
thesis' sub-channel grouping for fc layers and its smallest efficient group on a 32-bit
MCU): a whole-unit group there would let one pruned coordinate silence a class. A
depthwise unit's input is one window, so ``kernel`` and ``channel`` coincide there.
``subchannel:N`` slices every unit's input into N groups (the thesis' subchannelwise(N)).
The last group of a unit may be shorter; its padding elements are masked out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..train.graph import Layer
from .bits import WORD_BITS

KINDS = {"conv": "conv", "dwconv": "depthwise", "fc": "fc"}  # training kind -> format kind
DEFAULT_SLICES = 2


def parse_group(spec: str) -> tuple[str, int]:
    """``kernel``, ``channel`` or ``subchannel[:N]`` -> (structure, N slices; 0 unless sub-channel)."""
    name, _, count = spec.partition(":")
    if name in ("kernel", "channel") and not count:
        return name, 0
    if name == "subchannel":
        try:
            slices = int(count) if count else DEFAULT_SLICES
        except ValueError:
            slices = 0
        if slices >= 1:
            return name, slices
        raise InputError(f"--group {spec}: N in subchannel:N must be a positive integer")
    raise InputError(f"--group {spec!r}: expected kernel, channel or subchannel[:N]")


@dataclass(frozen=True)
class Groups:
    """How one training layer's weights map to [O, G, n] groups."""

    kind: str  # format kind: conv, depthwise, fc
    group: str  # format group: kernel, channel, subchannel
    units: int  # O
    length: int  # N, one unit's input
    n: int  # group size

    @property
    def groups(self) -> int:
        return -(-self.length // self.n)

    @property
    def mask(self) -> np.ndarray:
        """[G, n] bool: which group slots hold a weight (False: the last group's padding)."""
        return (np.arange(self.groups * self.n) < self.length).reshape(self.groups, self.n)

    def lengths(self) -> np.ndarray:
        return self.mask.sum(axis=1)

    @property
    def chw(self) -> bool:
        return self.kind == "conv" and self.group == "kernel"

    def rows(self, w: np.ndarray) -> np.ndarray:
        """Training-layout weights -> [O, N] in the format's reduction order."""
        if self.kind == "depthwise":  # [KH, KW, C]
            return w.reshape(-1, w.shape[-1]).T
        if self.chw:  # [O, KH, KW, C] -> c*KH*KW + ky*KW + kx
            return w.transpose(0, 3, 1, 2).reshape(self.units, -1)
        return w.reshape(self.units, -1)

    def unrows(self, rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Inverse of :meth:`rows`, back to the training layout ``shape``."""
        if self.kind == "depthwise":
            return rows.T.reshape(shape)
        if self.chw:
            o, kh, kw, c = shape
            return rows.reshape(o, c, kh, kw).transpose(0, 2, 3, 1)
        return rows.reshape(shape)

    def to_groups(self, w: np.ndarray) -> np.ndarray:
        """Training-layout weights -> [O, G, n], padding slots 0."""
        padded = np.zeros((self.units, self.groups * self.n), np.float64)
        padded[:, : self.length] = self.rows(w)
        return padded.reshape(self.units, self.groups, self.n)

    def from_groups(self, g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return self.unrows(g.reshape(self.units, -1)[:, : self.length], shape)


def groups_of(layer: Layer, structure: str, slices: int) -> Groups:
    """The groups of a weighted training layer under ``structure`` (see the module docstring)."""
    kind = KINDS[layer.kind]
    w = layer.weights
    if kind == "depthwise":
        units, length, window = w.shape[-1], w.shape[0] * w.shape[1], w.shape[0] * w.shape[1]
    elif kind == "conv":
        units, length, window = w.shape[0], int(np.prod(w.shape[1:])), w.shape[1] * w.shape[2]
    else:
        units, length, window = w.shape[0], w.shape[1], 1
    if structure == "subchannel":
        if slices > length:
            raise InputError(f"--group subchannel:{slices}: {layer.where} has only {length} inputs per unit")
        return Groups(kind, "subchannel", units, length, -(-length // slices))
    if structure == "kernel" and kind == "conv" and window > 1:
        return Groups(kind, "kernel", units, length, window)
    if structure == "kernel" and kind == "fc" and length > WORD_BITS:
        return Groups(kind, "subchannel", units, length, WORD_BITS)
    return Groups(kind, "channel", units, length, length)
