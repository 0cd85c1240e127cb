"""xorshift32, the pseudo-random stream behind stochastic rounding.

Marsaglia's xorshift32 with shifts (13, 17, 5): one 32-bit draw per step,
``x ^= x << 13; x ^= x >> 17; x ^= x << 5``. It is what the generated C uses, so
the NumPy reference and the board draw identical numbers in identical order.

Drawing element by element in Python is slow, so :meth:`XorShift32.draw`
exploits linearity over GF(2): the state after k steps is a fixed 32x32 bit
matrix times the start state. The images of the 32 unit vectors after
1..n steps are computed once; n consecutive draws are then an XOR of the
columns selected by the set bits of the current state.
"""
from __future__ import annotations

import numpy as np

DEFAULT_SEED = 2463534242  # Marsaglia's example seed; a zero state would stay zero
_MASK = 0xFFFFFFFF


def step(x):
    """One xorshift32 step on a uint32 scalar or array."""
    x = np.asarray(x, dtype=np.uint32)
    x = x ^ (x << np.uint32(13))
    x = x ^ (x >> np.uint32(17))
    return x ^ (x << np.uint32(5))


class _Columns:
    """Images of the 32 unit vectors after 1..n steps: ``cols[k - 1, b]``."""

    def __init__(self):
        self.cols = np.zeros((0, 32), dtype=np.uint32)

    def upto(self, n: int) -> np.ndarray:
        have = self.cols.shape[0]
        if n > have:
            grow = max(n, 2 * have, 1024)
            more = np.empty((grow - have, 32), dtype=np.uint32)
            v = self.cols[-1] if have else (np.uint32(1) << np.arange(32, dtype=np.uint32))
            for k in range(grow - have):
                v = step(v)
                more[k] = v
            self.cols = np.concatenate([self.cols, more])
        return self.cols[:n]


_COLUMNS = _Columns()
_BITS = np.arange(32, dtype=np.uint32)


class XorShift32:
    """A seeded xorshift32 stream; ``draw(n)`` returns the next n outputs as uint32."""

    def __init__(self, seed: int = DEFAULT_SEED):
        seed &= _MASK
        self.state = seed if seed else DEFAULT_SEED

    def draw(self, n: int) -> np.ndarray:
        if n <= 0:
            return np.zeros(0, dtype=np.uint32)
        cols = _COLUMNS.upto(n)
        selected = ((np.uint32(self.state) >> _BITS) & np.uint32(1)).astype(bool)
        out = np.bitwise_xor.reduce(cols[:, selected], axis=1) if selected.any() else np.zeros(n, np.uint32)
        out = out.astype(np.uint32)
        self.state = int(out[-1])
        return out
