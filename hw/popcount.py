"""A pipelined popcount: Amaranth has no popcount operator, so this is a binary adder tree."""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def latency(width: int, regs_every: int) -> int:
    """Cycles through the tree: one register per ``regs_every`` levels of ceil(log2 width), and the root's."""
    return -(-(width - 1).bit_length() // regs_every)


class PopCount(wiring.Component):
    """Ones in a ``width``-bit word after ``latency`` cycles.

    Level k of the tree adds pairs of level k-1's sums (the bits are level 0). A register follows
    every ``regs_every`` levels and the root, so ``latency = ceil(levels / regs_every)``; the
    registers hold while ``en`` is low (the core's pipeline stall).
    """

    def __init__(self, width: int, regs_every: int = 2):
        if width < 2 or regs_every < 1:
            raise ValueError(f"popcount width {width} < 2 or regs_every {regs_every} < 1")
        self.width, self.regs_every = width, regs_every
        self.levels = (width - 1).bit_length()
        self.latency = latency(width, regs_every)
        super().__init__({"en": In(1), "i": In(width), "o": Out(range(width + 1))})

    def elaborate(self, platform):
        m = Module()
        sums = list(self.i)
        for level in range(1, self.levels + 1):
            # An odd sum out passes up a level unchanged.
            sums = [sums[k] + sums[k + 1] if k + 1 < len(sums) else sums[k] for k in range(0, len(sums), 2)]
            if level % self.regs_every == 0 or level == self.levels:
                regs = [Signal(range((1 << level) + 1), name=f"sum{level}_{k}", reset_less=True) for k in range(len(sums))]
                with m.If(self.en):
                    m.d.sync += [r.eq(s) for r, s in zip(regs, sums)]
                sums = regs
        m.d.comb += self.o.eq(sums[0])
        return m
