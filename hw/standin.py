"""A stand-in accelerator top for the synthesis flow: P lanes x W bits of xnor-popcount-accumulate.

Until hw/'s real top level lands, this is what ``tinysyn hw synth`` builds. Weights
stay in registers (one W-bit word per lane), the activation word is broadcast to
every lane, and each lane adds popcount(xnor(weight, activation)) to its
accumulator every cycle: P * W binary MACs per cycle.

Every register is reachable from ``din`` and observable on ``dout``, so Yosys
cannot optimize any lane away: weights and activations shift in 8 bits a cycle
(weights only while ``load``), and ``dout`` is the XOR of all accumulators.
"""
from __future__ import annotations

from functools import reduce
from operator import xor

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

IO_BITS = 8
LEVELS_PER_STAGE = 2  # adder levels between pipeline registers: 2 closes 40 MHz on the UP5K, 3 did not (39.9 MHz)


def popcount(m: Module, bits: Value, name: str) -> Value:
    """The number of ones in ``bits``: a balanced adder tree (Amaranth has no popcount operator), pipelined."""
    terms = [bits[i] for i in range(len(bits))]
    level = 0
    while len(terms) > 1:
        pairs = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        terms = pairs + terms[len(pairs) * 2:]
        level += 1
        if level % LEVELS_PER_STAGE == 0 and len(terms) > 1:
            staged = [Signal.like(t, name=f"{name}_s{level}_{i}") for i, t in enumerate(terms)]
            m.d.sync += [s.eq(t) for s, t in zip(staged, terms)]
            terms = staged
    return terms[0]


class XnorPopcountLanes(wiring.Component):
    """``lanes`` lanes of ``width``-bit xnor-popcount, each with a pipelined popcount and an accumulator."""

    def __init__(self, lanes: int, width: int):
        if width % IO_BITS:
            raise ValueError(f"width {width} is not a multiple of {IO_BITS}")
        self.lanes, self.width = lanes, width
        self.acc_bits = width.bit_length() + 8  # 256 full counts before wrapping, like a real dot product
        super().__init__({"din": In(IO_BITS), "load": In(1), "dout": Out(IO_BITS)})

    def elaborate(self, platform):
        m = Module()
        din, load = Signal(IO_BITS), Signal()
        weights = Signal(self.lanes * self.width)
        x = Signal(self.width)
        m.d.sync += [din.eq(self.din), load.eq(self.load), x.eq(Cat(din, x[:-IO_BITS]))]
        with m.If(load):
            m.d.sync += weights.eq(Cat(din, weights[:-IO_BITS]))

        accs = []
        for k in range(self.lanes):
            count = Signal(range(self.width + 1), name=f"count{k}")  # a pipeline stage between tree and accumulator
            acc = Signal(self.acc_bits, name=f"acc{k}")
            m.d.sync += count.eq(popcount(m, ~(weights.word_select(k, self.width) ^ x), f"lane{k}"))
            m.d.sync += acc.eq(Mux(load, 0, acc + count))  # a new weight set starts a new sum
            accs.append(acc)

        folded = reduce(xor, accs)
        m.d.sync += self.dout.eq(reduce(xor, [folded[i:i + IO_BITS] for i in range(0, self.acc_bits, IO_BITS)]))
        return m


def build_top(lanes: int, width: int) -> tuple[wiring.Component, int]:
    """The top and its binary MACs per cycle, as hw's ``build_top`` returns them."""
    return XnorPopcountLanes(lanes, width), lanes * width
