"""The xnor-popcount core: P lanes x W bits of binary MACs per cycle for ALQ layers (hw/README.md).

Every lane computes one dot product; all lanes share one schedule. For one output the sequencer
walks the live-group table, and per live group e: bases i < I_e, words w < words_e, activation
bases j < I_x (j innermost), one beat a cycle. A weight beat (W bits + alpha per lane) is taken at
j = 0 and held for the I_x beats (it is taken a cycle ahead into a holding register, so weights and
activations need not arrive together); an activation beat (W bits per lane) is taken every beat.
Per lane and beat: ``term = (n_valid - 2 popcount(w XOR a)) * (alpha_i * gamma_j)``; the
accumulator starts from the host's folded bias (bias + the x_ref term), and the last beat of an
output sends ``relu(acc)`` (or acc) for every lane on ``results``.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import popcount
from .popcount import PopCount

COORD_BITS = 16  # alpha and gamma: unsigned 16-bit (FORMAT.md)
MAX_BASES = 8  # I_g and I_x
CONFIG_LAYOUT = data.StructLayout({"addr": unsigned(12), "data": unsigned(32)})

class Reg(IntEnum):
    """Configuration addresses; written only while the core is idle (between unit sets)."""

    LIVE = 0x000  # live table entries - 1
    IX = 0x001  # I_x - 1
    RELU = 0x002  # 1: results are max(y, 0)
    GAMMA = 0x010  # + j: G_j
    BIAS = 0x100  # + lane: the folded bias, signed 32-bit
    TABLE = 0x400  # + entry: a live group (entry_layout)


@dataclass(frozen=True)
class CoreParams:
    """``lanes`` dot products of ``width`` (a multiple of 32) bits per cycle.

    ``acc_width``: the signed accumulator and result width; ``max_groups``: live-table depth;
    ``max_words``: the most W-bit words in one group; ``regs_every``: popcount levels per register.
    """

    lanes: int
    width: int
    acc_width: int = 32
    max_groups: int = 64
    max_words: int = 16
    regs_every: int = 2

    def __post_init__(self):
        if not 1 <= self.lanes <= 256:
            raise ValueError(f"lanes {self.lanes} outside 1..256")
        if self.width < 32 or self.width % 32:
            raise ValueError(f"width {self.width} is not a positive multiple of 32")
        if not 2 <= self.acc_width <= 64:
            raise ValueError(f"accumulator width {self.acc_width} outside 2..64")
        if not 1 <= self.max_groups <= 1024 or self.max_words < 1 or self.regs_every < 1:
            raise ValueError(f"max_groups {self.max_groups} outside 1..1024, or max_words {self.max_words} "
                             f"or regs_every {self.regs_every} < 1")

    @property
    def entry_layout(self) -> data.StructLayout:
        return data.StructLayout({
            "bases_m1": range(MAX_BASES),  # I_e - 1: the most bases of any lane in this group
            "words_m1": range(self.max_words),  # W-bit words in the group - 1
            "last_valid": range(self.width + 1),  # elements in the group's last word
        })

    @property
    def weight_layout(self) -> data.StructLayout:
        return data.StructLayout({"bits": data.ArrayLayout(unsigned(self.width), self.lanes),
                                  "alpha": data.ArrayLayout(unsigned(COORD_BITS), self.lanes)})

    @property
    def act_layout(self) -> data.StructLayout:
        return data.StructLayout({"bits": data.ArrayLayout(unsigned(self.width), self.lanes)})

    @property
    def result_layout(self) -> data.StructLayout:
        return data.StructLayout({"y": data.ArrayLayout(signed(self.acc_width), self.lanes)})

    @property
    def popcount_latency(self) -> int:
        return popcount.latency(self.width, self.regs_every)

    @property
    def latency(self) -> int:
        """A set's first weight beat to its first activation beat (1), then an activation beat's handshake to its
        output's result handshake: stage 1, the popcount, the term, the accumulator."""
        return self.popcount_latency + 4

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
        lanes, width = p.lanes, p.width

        # ---- configuration
        live_m1 = Signal(range(p.max_groups))
        ix_m1 = Signal(range(MAX_BASES))
        relu = Signal()
        gamma = Array(Signal(COORD_BITS, name=f"gamma{j}") for j in range(MAX_BASES))
        bias = [Signal(signed(p.acc_width), name=f"bias{lane}") for lane in range(lanes)]
        m.submodules.table = table = Memory(shape=p.entry_layout, depth=p.max_groups, init=[])
        table_w = table.write_port()
        table_r = table.read_port(transparent_for=(table_w,))

        # ---- the sequencer: entry e, base i, word w, activation base j
        e = Signal(range(p.max_groups))
        i = Signal(range(MAX_BASES))
        w = Signal(range(p.max_words))
        j = Signal(range(MAX_BASES))
        entry = table_r.data
        j_last, w_last = j == ix_m1, w == entry.words_m1
        i_last, e_last = i == entry.bases_m1, e == live_m1

        stall = self.results.valid & ~self.results.ready
        busy = Signal()  # any beat in flight or a result waiting
        weight = Signal(p.weight_layout)  # the weight beat of the I_x beats in flight
        weight_full = Signal()
        accept = self.acts.valid & weight_full & ~stall
        m.d.comb += [
            self.acts.ready.eq(accept),
            self.weights.ready.eq(~weight_full | (accept & j_last)),  # the next weight follows with no bubble
            self.config.ready.eq(~busy & (e == 0) & (i == 0) & (w == 0) & (j == 0)),
        ]
        with m.If(accept & j_last):
            m.d.sync += weight_full.eq(0)
        with m.If(self.weights.valid & self.weights.ready):
            m.d.sync += [weight.eq(self.weights.payload), weight_full.eq(1)]

        e_next = Signal.like(e)
        m.d.comb += [e_next.eq(e), table_r.addr.eq(e_next)]  # the read port follows e with no bubble
        with m.If(accept):
            m.d.sync += j.eq(Mux(j_last, 0, j + 1))
            with m.If(j_last):
                m.d.sync += w.eq(Mux(w_last, 0, w + 1))
                with m.If(w_last):
                    m.d.sync += i.eq(Mux(i_last, 0, i + 1))
                    with m.If(i_last):
                        m.d.comb += e_next.eq(Mux(e_last, 0, e + 1))
        m.d.sync += e.eq(e_next)

        # ---- stage 1: XOR, then the popcount tree; n_valid, alpha_i * gamma_j and the flags ride alongside
        go = ~stall
        meta = data.StructLayout({"valid": 1, "first": 1, "last": 1, "n_valid": range(width + 1),
                                  "scale": data.ArrayLayout(unsigned(2 * COORD_BITS), lanes)})
        s1_bits = Signal(data.ArrayLayout(unsigned(width), lanes))
        delayed = [Signal(meta, name=f"meta{k}") for k in range(p.popcount_latency + 1)]
        s1, late = delayed[0], delayed[-1]
        with m.If(go):
            m.d.sync += [
                s1.valid.eq(accept),
                s1.first.eq((e == 0) & (i == 0) & (w == 0) & (j == 0)),
                s1.last.eq(e_last & i_last & w_last & j_last),
                s1.n_valid.eq(Mux(w_last, entry.last_valid, width)),
            ]
            m.d.sync += [s1_bits[lane].eq(weight.bits[lane] ^ self.acts.payload.bits[lane]) for lane in range(lanes)]
            m.d.sync += [s1.scale[lane].eq(weight.alpha[lane] * gamma[j]) for lane in range(lanes)]
            m.d.sync += [b.eq(a) for a, b in pairwise(delayed)]
        counts = []
        for lane in range(lanes):
            pc = m.submodules[f"popcount{lane}"] = PopCount(width, p.regs_every)
            m.d.comb += [pc.en.eq(go), pc.i.eq(s1_bits[lane])]
            counts.append(pc.o)

        # ---- stage 3: the term of each lane
        s3_valid, s3_first, s3_last = Signal(), Signal(), Signal()
        terms = [Signal(signed(p.acc_width), name=f"term{lane}") for lane in range(lanes)]
        with m.If(go):
            m.d.sync += [s3_valid.eq(late.valid), s3_first.eq(late.first), s3_last.eq(late.last)]
            # |term| <= the layer's accumulator bound, so truncating to acc_width keeps it exact.
            m.d.sync += [t.eq((late.n_valid - 2 * c) * s) for t, c, s in zip(terms, counts, late.scale)]

        # ---- stage 4: accumulate; the output's last beat sends the result
        with m.If(self.results.ready):
            m.d.sync += self.results.valid.eq(0)
        for lane in range(lanes):
            acc = Signal(signed(p.acc_width), name=f"acc{lane}")
            total = Signal(signed(p.acc_width), name=f"total{lane}")
            m.d.comb += total.eq(Mux(s3_first, bias[lane], acc) + terms[lane])
            with m.If(go & s3_valid):
                m.d.sync += acc.eq(total)
                with m.If(s3_last):
                    m.d.sync += self.results.payload.y[lane].eq(Mux(relu & total[-1], 0, total))
        with m.If(go & s3_valid & s3_last):
            m.d.sync += self.results.valid.eq(1)
        m.d.comb += busy.eq(Cat(d.valid for d in delayed).any() | s3_valid | self.results.valid)

        # ---- configuration writes
        cfg = self.config.payload
        write = self.config.valid & self.config.ready
        m.d.comb += [table_w.addr.eq(cfg.addr), table_w.data.eq(cfg.data),
                     table_w.en.eq(write & (cfg.addr[10:] == Reg.TABLE >> 10))]
        with m.If(write):
            with m.If(cfg.addr == Reg.LIVE):
                m.d.sync += live_m1.eq(cfg.data)
            with m.If(cfg.addr == Reg.IX):
                m.d.sync += ix_m1.eq(cfg.data)
            with m.If(cfg.addr == Reg.RELU):
                m.d.sync += relu.eq(cfg.data[0])
            for k in range(MAX_BASES):
                with m.If(cfg.addr == Reg.GAMMA + k):
                    m.d.sync += gamma[k].eq(cfg.data)
            for lane in range(lanes):
                with m.If(cfg.addr == Reg.BIAS + lane):
                    m.d.sync += bias[lane].eq(cfg.data.as_signed())
        return m
