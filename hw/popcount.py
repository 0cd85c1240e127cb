"""A pipelined popcount: Amaranth has no popcount operator, so this is a binary adder tree."""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def register_levels(width: int, regs_every: int, regs_first: int = 0) -> list[int]:
    """The tree levels followed by a register: ``regs_first`` (``regs_every`` if 0), then every ``regs_every``
    levels, and the root (level ceil(log2 width))."""
    levels = (width - 1).bit_length()
    return [*range(regs_first or regs_every, levels, regs_every), levels]


def latency(width: int, regs_every: int, regs_first: int = 0) -> int:
    """Cycles through the tree: one per register level."""
    return len(register_levels(width, regs_every, regs_first))


class PopCount(wiring.Component):
    """Ones in a ``width``-bit word after ``latency`` cycles.

    Level k of the tree adds pairs of level k-1's sums (the bits are level 0). A register follows
    the levels of :func:`register_levels`; they hold while ``en`` is low (the core's pipeline stall).
    The first levels add few bits, so a longer first stage (``regs_first``) costs little time, and
    Yosys packs the stage's adders into fewer LUTs than with a register every two levels.
    """

    def __init__(self, width: int, regs_every: int = 2, regs_first: int = 0):
        if width < 2 or regs_every < 1 or regs_first < 0:
            raise ValueError(f"popcount width {width} < 2, regs_every {regs_every} < 1 or regs_first {regs_first} < 0")
        self.width = width
        self.levels = (width - 1).bit_length()
        self.registered = register_levels(width, regs_every, regs_first)
        self.latency = len(self.registered)
        super().__init__({"en": In(1), "i": In(width), "o": Out(range(width + 1))})

    def elaborate(self, platform):
        m = Module()
        sums = list(self.i)
        for level in range(1, self.levels + 1):
            # An odd sum out passes up a level unchanged.
            sums = [sums[k] + sums[k + 1] if k + 1 < len(sums) else sums[k] for k in range(0, len(sums), 2)]
            if level in self.registered:
                # No reset: data only, and the root's register may become a DSP block's input register.
                regs = [Signal(range((1 << level) + 1), name=f"sum{level}_{k}", reset_less=True)
                        for k in range(len(sums))]
                with m.If(self.en):
                    m.d.sync += [r.eq(s) for r, s in zip(regs, sums)]
                sums = regs
        m.d.comb += self.o.eq(sums[0])
        return m
