"""The popcount tree against Python's bit count, with its stated latency and a held enable."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.popcount import PopCount


@pytest.mark.parametrize("width, regs_every, regs_first", [(32, 1, 0), (64, 2, 0), (96, 3, 0), (128, 7, 0), (256, 2, 4)])
def test_popcount_counts_after_its_latency(width, regs_every, regs_first):
    dut = PopCount(width, regs_every, regs_first)
    rng = np.random.default_rng(width)
    words = [int(v) for v in rng.integers(0, 1 << 62, size=60)] + [0, (1 << width) - 1]
    words = [(v * 0x9E3779B97F4A7C15) & ((1 << width) - 1) for v in words]
    enables = [bool(v) for v in rng.integers(0, 4, size=len(words) + 20) > 0]  # a stall one cycle in four
    seen = []

    async def testbench(ctx):
        inflight = [None] * dut.latency  # the words in the tree's registers, root last
        fed = 0
        for en in enables:
            word = words[fed] if fed < len(words) else 0
            ctx.set(dut.i, word)
            ctx.set(dut.en, en)
            if inflight[-1] is not None:
                seen.append((ctx.get(dut.o), inflight[-1]))
            await ctx.tick()
            if en:
                inflight = [word if fed < len(words) else None, *inflight[:-1]]
                fed += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert len(seen) >= len(words) - dut.latency
    assert all(got == word.bit_count() for got, word in seen)
