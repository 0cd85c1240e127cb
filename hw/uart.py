"""A small 8N1 UART (amaranth 0.5 and amaranth-boards ship none): ``divisor`` clock cycles per bit."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


class UartTx(wiring.Component):
    """Sends each byte of ``data``: a start bit 0, eight data bits LSB first, a stop bit 1."""

    def __init__(self, divisor: int):
        if divisor < 2:
            raise ValueError(f"UART divisor {divisor} < 2")
        self.divisor = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        frame = Signal(10)  # the bits still to send, LSB first
        left = Signal(range(11))
        timer = Signal(range(self.divisor))
        m.d.comb += self.data.ready.eq(left == 0)
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))), left.eq(10),
                         timer.eq(self.divisor - 1)]
        with m.Elif(left != 0):
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [frame.eq(frame >> 1), left.eq(left - 1), timer.eq(self.divisor - 1)]
        m.d.comb += self.tx.eq(Mux(left != 0, frame[0], 1))  # idle high
        return m


class UartRx(wiring.Component):
    """Receives bytes on ``data`` (one-cycle pulses; a byte nobody takes is lost; the payload holds until the next
    byte's stop bit), sampling mid-bit."""

    def __init__(self, divisor: int):
        if divisor < 2:
            raise ValueError(f"UART divisor {divisor} < 2")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)  # the pin is asynchronous to the clock
        samples = Signal(10)  # start bit, 8 data bits, stop bit, shifted in at the top
        left = Signal(range(11))
        timer = Signal(range(self.divisor))
        m.d.sync += self.data.valid.eq(0)
        with m.If(left == 0):  # idle until a start bit; then sample its middle and every bit's
            m.d.sync += [left.eq(Mux(rx, 0, 10)), timer.eq(self.divisor // 2)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [samples.eq(Cat(samples[1:], rx)), left.eq(left - 1), timer.eq(self.divisor - 1)]
            with m.If(left == 1):  # rx is the stop bit; samples[1] the start bit
                m.d.sync += [self.data.payload.eq(samples[2:]), self.data.valid.eq(~samples[1] & rx)]
        return m
