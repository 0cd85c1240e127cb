"""The xnor-popcount core: P lanes x W bits of binary MACs per cycle for ALQ layers (hw/README.md).

Every lane computes one dot product; all lanes share one schedule. For one output the sequencer
walks the live-group table, and per live group e: bases i < I_e, words w < words_e, activation
bases j < I_x (j innermost), one beat a cycle. A weight beat (W bits per lane) is used for I_x
beats and taken (handshake) on the last of them: the source holds it, so the core keeps no copy.
An activation beat (W bits, for every lane or one word per lane, and each lane's coefficient
``c = A_i * G_j``) is taken every beat. Per lane and beat: ``acc += 2 * popcount(w XNOR a) * c``,
one unsigned multiply-accumulate (an SB_MAC16 or MULT18X18D); the accumulator starts from the
host's start value (the bias, the x_ref term, less what the XNOR of all W bits adds: the driver's
``core_bias``), and after an output's last beat it holds the result, sent as ``relu(y)`` (or y) for
every lane on ``results`` (the accumulator counts halves: see below).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import popcount
from .popcount import PopCount

MAX_BASES = 8  # I_g and I_x
FIFO_LATENCY = 2  # a result's cycles through the result FIFO: written, then on SyncFIFOBuffered's output register
CONFIG_LAYOUT = data.StructLayout({"addr": unsigned(12), "data": unsigned(32)})

class Reg(IntEnum):
    """Configuration addresses; written only while the core is idle (between unit sets)."""

    LIVE = 0x000  # live table entries - 1
    IX = 0x001  # I_x - 1
    RELU = 0x002  # 1: results are max(y, 0)
    BIAS = 0x100  # + lane: the folded bias, signed 32-bit
    TABLE = 0x400  # + entry: a live group (entry_layout)


@dataclass(frozen=True)
class CoreParams:
    """``lanes`` dot products of ``width`` (a multiple of 32) bits per cycle.

    ``acc_width``: the signed accumulator and result width; ``coef_bits``: the unsigned coefficient
    A_i * G_j (16: one SB_MAC16 or MULT18X18D a lane); ``per_lane_acts``: an activation word per lane
    (else one word for all lanes, see the driver for depthwise); ``max_groups``: live-table depth;
    ``max_words``: the most W-bit words in one group; ``regs_every``, ``regs_first``: popcount levels per
    register, and before the first (0: regs_every; :func:`popcount.register_levels`); ``mul_reg``: a register
    between the product and the accumulator (for fmax on ECP5, where Yosys leaves the MULT18X18D's
    registers unused; on iCE40 it keeps the accumulator out of the SB_MAC16); ``bias_reg``: a register after the
    biases' block RAM (an ECP5 DP16KD's output takes 5.6 ns; it costs no cycle: the first beat after a
    write reaches the accumulators no sooner than the register holds the new biases); ``result_fifo``: the
    depth of a result FIFO (0: none; else at least ``latency`` + 2). With one the pipeline never stalls: a beat is taken
    only while the FIFO has room for every output in flight, so no enable fans out to the pipeline registers
    (for fmax on ECP5, where the stall's fanout was the critical path); without, a result leaves from the
    accumulators and stalls the pipeline until taken.
    """

    lanes: int
    width: int
    acc_width: int = 32
    coef_bits: int = 16
    per_lane_acts: bool = False
    max_groups: int = 64
    max_words: int = 16
    regs_every: int = 2
    regs_first: int = 0
    mul_reg: bool = False
    bias_reg: bool = False
    result_fifo: int = 0

    def __post_init__(self):
        if not 1 <= self.lanes <= 256:
            raise ValueError(f"lanes {self.lanes} outside 1..256")
        if self.width < 32 or self.width % 32:
            raise ValueError(f"width {self.width} is not a positive multiple of 32")
        if not 2 <= self.acc_width <= 32:  # the bias is one configuration word
            raise ValueError(f"accumulator width {self.acc_width} outside 2..32")
        if not 1 <= self.coef_bits <= 32:
            raise ValueError(f"coefficient width {self.coef_bits} outside 1..32")
        if not 1 <= self.max_groups <= 1024 or self.max_words < 1 or self.regs_every < 1 or self.regs_first < 0:
            raise ValueError(f"max_groups {self.max_groups} outside 1..1024, or max_words {self.max_words} "
                             f"or regs_every {self.regs_every} < 1, or regs_first {self.regs_first} < 0")
        if self.result_fifo and self.result_fifo < self.latency + 2:
            raise ValueError(f"result FIFO of {self.result_fifo} < {self.latency + 2}, the outputs a stream of "
                             f"one-beat outputs keeps counted: the core would wait for room")

    @property
    def entry_layout(self) -> data.StructLayout:
        return data.StructLayout({
            "bases_m1": range(MAX_BASES),  # I_e - 1: the most bases of any lane in this group
            "words_m1": range(self.max_words),  # W-bit words in the group - 1
        })

    @property
    def weight_layout(self) -> data.StructLayout:
        return data.StructLayout({"bits": data.ArrayLayout(unsigned(self.width), self.lanes)})

    @property
    def act_layout(self) -> data.StructLayout:
        return data.StructLayout({"bits": data.ArrayLayout(unsigned(self.width), self.act_words),
                                  "coef": data.ArrayLayout(unsigned(self.coef_bits), self.lanes)})

    @property
    def act_words(self) -> int:
        return self.lanes if self.per_lane_acts else 1

    @property
    def result_layout(self) -> data.StructLayout:
        return data.StructLayout({"y": data.ArrayLayout(signed(self.acc_width), self.lanes)})

    @property
    def popcount_latency(self) -> int:
        return popcount.latency(self.width, self.regs_every, self.regs_first)

    @property
    def latency(self) -> int:
        """An output's last activation beat to its result: the popcount, the product (``mul_reg``), the sum,
        and the result FIFO's write and read."""
        return self.popcount_latency + 1 + self.mul_reg + (FIFO_LATENCY if self.result_fifo else 0)

    @property
    def binary_macs_per_cycle(self) -> int:
        return self.lanes * self.width


class XnorCore(wiring.Component):
    """The core for :class:`CoreParams` ``params``."""

    def __init__(self, params: CoreParams):
        self.params = params
        super().__init__({
            "config": In(stream.Signature(CONFIG_LAYOUT)),
            "weights": In(stream.Signature(params.weight_layout)),
            "acts": In(stream.Signature(params.act_layout)),
            "results": Out(stream.Signature(params.result_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        lanes = p.lanes

        # ---- configuration
        live_m1 = Signal(range(p.max_groups))
        ix_m1 = Signal(range(MAX_BASES))
        relu = Signal()
        # The biases are read all at once on an output's first beat: one block RAM word, not P x acc_width flip-flops.
        m.submodules.biases = biases = Memory(shape=data.ArrayLayout(signed(p.acc_width), lanes), depth=1, init=[],
                                              attrs={"ram_style": "block"})
        bias_w = biases.write_port(granularity=1)
        bias = biases.read_port().data
        if p.bias_reg:
            bias_reg = Signal.like(bias, reset_less=True)
            m.d.sync += bias_reg.eq(bias)
            bias = bias_reg
        m.submodules.table = table = Memory(shape=p.entry_layout, depth=p.max_groups, init=[])
        table_w = table.write_port()
        # Synthesis makes these read ports don't-care on a read/write collision (hw/synth.py, NO_RW_CHECK: no bypass
        # logic, 203 iCE40 cells for the biases): the core takes no beat in the cycle after a configuration write
        # (``wrote``), so the block RAMs' outputs are read again before anything uses them.
        # Two read ports, both addressed from registers: entry e and the one after it (0 after the last). In the
        # cycle after e advanced the second holds the entry in use, else the first: so taking a beat does not reach
        # the table's address in the same cycle (an ECP5 critical path).
        table_now = table.read_port(transparent_for=(table_w,))
        table_after = table.read_port(transparent_for=(table_w,))

        # ---- the sequencer: entry e, base i, word w, activation base j
        e = Signal(range(p.max_groups))
        i = Signal(range(MAX_BASES))
        w = Signal(range(p.max_words))
        j = Signal(range(MAX_BASES))
        advanced = Signal()
        entry = Signal(p.entry_layout)
        m.d.comb += entry.eq(Mux(advanced, table_after.data.as_value(), table_now.data.as_value()))
        j_last, w_last = j == ix_m1, w == entry.words_m1
        i_last, e_last = i == entry.bases_m1, e == live_m1
        m.d.comb += [table_now.addr.eq(e), table_after.addr.eq(Mux(e_last, 0, e + 1))]

        wrote = Signal()  # a configuration write in the last cycle: the read ports' data are stale for a cycle
        busy = Signal()  # a beat in flight or a result not taken: no configuration write
        # ``config.ready`` is a register, set a cycle after the core is idle with no beat taken (it stays idle until
        # a beat is taken), so the pipeline's state does not reach the block RAMs' write ports in the same cycle.
        config_ready = Signal()
        if p.result_fifo:
            # Credits: ``pending`` counts the outputs whose last beat is past the first stage and whose result is not
            # taken (known a cycle late: ``taken``). Beats are taken while ``room``, a register, says the FIFO has room
            # for every output that may be in flight, the one not yet counted too: the FIFO never overflows and the
            # stages never wait, so no enable fans out to the pipeline registers.
            m.submodules.fifo = fifo = SyncFIFOBuffered(width=p.result_layout.size, depth=p.result_fifo)
            pending = Signal(range(p.result_fifo + 1))
            room, taken = Signal(init=1), Signal()
            go, takes = 1, room
        else:
            go = ~(self.results.valid & ~self.results.ready)  # a result waits: every stage holds
            takes = go
        accept = self.acts.valid & self.weights.valid & takes & ~wrote
        accept_last = accept & e_last & i_last & w_last & j_last  # an output's last beat
        m.d.comb += [
            self.acts.ready.eq(accept),
            self.weights.ready.eq(accept & j_last),  # the source holds a weight beat over its I_x beats
            self.config.ready.eq(config_ready),
        ]
        m.d.sync += config_ready.eq(~busy & ~accept & (e == 0) & (i == 0) & (w == 0) & (j == 0))

        m.d.sync += advanced.eq(accept & j_last & w_last & i_last)
        with m.If(accept):
            m.d.sync += j.eq(Mux(j_last, 0, j + 1))
            with m.If(j_last):
                m.d.sync += w.eq(Mux(w_last, 0, w + 1))
                with m.If(w_last):
                    m.d.sync += i.eq(Mux(i_last, 0, i + 1))
                    with m.If(i_last):
                        m.d.sync += e.eq(Mux(e_last, 0, e + 1))

        # ---- the popcount of weight XNOR activation; the coefficients and flags ride alongside. A beat not taken
        # gets coefficient 0, so the accumulators may add every cycle: their only enable is the stall, as the DSPs'.
        # Data registers have no reset, so Yosys may move them into the DSP blocks' input registers.
        flags = data.StructLayout({"valid": 1, "first": 1, "last": 1})
        delayed = [Signal(flags, name=f"flags{k}") for k in range(p.popcount_latency + p.mul_reg)]
        coefs = [Signal(data.ArrayLayout(unsigned(p.coef_bits), lanes), name=f"coef{k}", reset_less=True)
                 for k in range(p.popcount_latency)]
        late, late_coef = delayed[-1], coefs[-1]
        # The zero goes in at the second coefficient stage, from the registered ``valid`` (from ``accept`` it
        # reached the resets of 256 ECP5 flip-flops in the cycle a beat is taken), or at the first with one stage.
        zero_at, was_taken = (1, delayed[0].valid) if len(coefs) > 1 else (0, accept)
        with m.If(go):
            m.d.sync += [
                delayed[0].valid.eq(accept),
                delayed[0].first.eq(accept & (e == 0) & (i == 0) & (w == 0) & (j == 0)),
                delayed[0].last.eq(accept_last),
            ]
            m.d.sync += [b.eq(a) for a, b in pairwise(delayed)]
            for k, (a, b) in enumerate(pairwise([self.acts.payload.coef, *coefs])):
                m.d.sync += b.eq(Mux(was_taken, a, 0) if k == zero_at else a)
        acts = self.acts.payload.bits
        counts = []
        for lane in range(lanes):
            pc = m.submodules[f"popcount{lane}"] = PopCount(p.width, p.regs_every, p.regs_first)
            m.d.comb += [pc.en.eq(go), pc.i.eq(~(self.weights.payload.bits[lane] ^ acts[lane if p.per_lane_acts else 0]))]
            counts.append(pc.o)

        # ---- multiply-accumulate: an unsigned product added to the register or, on an output's first beat, to the
        # start value; unsigned, reset-less, and the product straight into the adder is the shape Yosys maps into
        # one SB_MAC16 (multiplier, adder and accumulator register). The sums wrap at acc_width bits, which is
        # exact: the output fits (the driver checks the layer's bound) and two's complement sums are modular.
        # The factor 2 of ``2 * popcount * c`` stays out (a shifted product is not the adder's input Yosys
        # matches): the accumulator counts halves from start >> 1, and the result is 2 * acc + (start & 1).
        ys = Signal(p.result_layout)  # the results: the accumulators' after an output's last product
        for lane in range(lanes):
            product = counts[lane] * late_coef[lane]
            if p.mul_reg:
                product_reg = Signal.like(product, name=f"product{lane}", reset_less=True)
                with m.If(go):
                    m.d.sync += product_reg.eq(product)
                product = product_reg
            acc = Signal(p.acc_width, name=f"acc{lane}", reset_less=True)  # after an output's last beat, y // 2
            with m.If(go):
                m.d.sync += acc.eq(Mux(late.first, (bias[lane] >> 1).as_unsigned(), acc) + product)
            y = Cat(bias[lane][0], acc[:-1]).as_signed()
            m.d.comb += ys.y[lane].eq(Mux(relu & y[-1], 0, y))
        if p.result_fifo:
            # The accumulators hold an output's result for the one cycle after its last product (``done``).
            done = Signal()
            m.d.sync += done.eq(late.last)
            m.d.comb += [fifo.w_en.eq(done), fifo.w_data.eq(ys),
                         self.results.valid.eq(fifo.r_rdy), self.results.payload.eq(fifo.r_data),
                         fifo.r_en.eq(self.results.ready)]
            m.d.sync += taken.eq(fifo.r_rdy & self.results.ready)
            counted = delayed[0].last
            m.d.sync += pending.eq(pending + counted - taken)
            # room = pending's next value < depth - 1, as comparisons of pending with constants (a LUT each, where
            # the sum's carry chain into a comparison was an ECP5 critical path)
            m.d.sync += room.eq(Mux(counted == taken, pending < p.result_fifo - 1,
                                    Mux(counted, pending < p.result_fifo - 2, pending < p.result_fifo)))
            m.d.comb += busy.eq((pending != 0) | counted | taken)
        else:
            m.d.comb += self.results.payload.eq(ys)
            with m.If(self.results.ready):
                m.d.sync += self.results.valid.eq(0)
            with m.If(go & late.last):
                m.d.sync += self.results.valid.eq(1)
            m.d.comb += busy.eq(Cat(d.valid for d in delayed).any() | self.results.valid)

        # ---- configuration writes
        cfg = self.config.payload
        write = self.config.valid & self.config.ready
        m.d.sync += wrote.eq(write)
        m.d.comb += [table_w.addr.eq(cfg.addr), table_w.data.eq(cfg.data),
                     table_w.en.eq(write & (cfg.addr[10:] == Reg.TABLE >> 10))]
        m.d.comb += [bias_w.data[lane].eq(cfg.data.as_signed()) for lane in range(lanes)]
        m.d.comb += [bias_w.en[lane].eq(write & (cfg.addr == Reg.BIAS + lane)) for lane in range(lanes)]
        with m.If(write):
            with m.If(cfg.addr == Reg.LIVE):
                m.d.sync += live_m1.eq(cfg.data)
            with m.If(cfg.addr == Reg.IX):
                m.d.sync += ix_m1.eq(cfg.data)
            with m.If(cfg.addr == Reg.RELU):
                m.d.sync += relu.eq(cfg.data[0])
        return m
