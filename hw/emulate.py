"""An emulated accelerator board: the RTL simulation of :class:`hw.top.Top` behind a pseudo-terminal.

Bytes a host writes to the pty's path go onto the top's ``rx`` pin bit by bit (8N1, ``divisor`` clock
cycles a bit); what the top sends on ``tx`` is sampled mid-bit and written back to the pty. So the host
client (host/accel.py) drives it exactly as a board behind a USB serial port, without an FPGA.

    with EmulatedBoard(CoreParams(2, 32)) as board:
        port = open_port(board.path)           # /dev/pts/5
        ...
    # the simulation has stopped and the pty is closed here

:meth:`stop` ends the simulation but keeps the pty open: a board that stopped answering.
"""
from __future__ import annotations

import os
import select
import threading
import time
import tty
from typing import Self

from amaranth.sim import Simulator

from .core import CoreParams
from .top import Top

DEFAULT_DIVISOR = 3  # clock cycles per UART bit: the fewest that work (2 does not), the fastest to simulate
BAUD = 115200  # nominal: only the divisor (clk_freq / baud) matters in simulation
PERIOD = 1e-6  # the simulated clock's period, s
#: The line must be quiet this long (no input, tx idle) before the simulation sleeps waiting for the host: longer
#: than any frame's way through the top and the core's pipeline to its first result bit.
QUIET_CYCLES = 512
#: The line rate a host should assume (``tinysyn hw run --baud``): the board simulates about 2,000 to 4,800 baud
#: (10 bits a byte at DEFAULT_DIVISOR, 2 x 32 lanes, alone or beside a synthesis), and a pty delivers the host's bytes
#: at once, so the host must not start its timeout before the frames could have crossed a line this slow.
LINE_BAUD = 1200
POLL_SECONDS = 0.05  # how often a sleeping board checks for stop()
READ_BYTES = 64  # taken from the pty at a time; the rest waits there (about 19 KB, then the host's writes block)


class EmulatedBoard:
    """The top for ``params`` simulated in a thread, its UART at ``.path`` once started."""

    def __init__(self, params: CoreParams, divisor: int = DEFAULT_DIVISOR):
        if divisor < 3:  # UartRx accepts 2, but a frame through the top at 2 never arrives (measured)
            raise ValueError(f"UART divisor {divisor} < 3")
        self.params, self.divisor = params, divisor
        self.top = Top(params, clk_freq=divisor * BAUD, baud=BAUD)
        self.path: str | None = None
        self.cycles = self.bytes_in = self.bytes_out = 0
        self._began: float | None = None  # when the simulation began, and the time since spent waiting for the host
        self._waited = 0.0
        self.error: BaseException | None = None  # what ended the simulation early, if anything
        self._master = self._slave = None
        self._stopping = threading.Event()
        self._running = threading.Event()  # elaborated: the board takes bytes from now on
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatedBoard:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo or line editing; the slave stays open so the host may come and go
        os.set_blocking(self._master, False)  # a host that reads nothing must not hang the simulation (or stop())
        self.path = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._simulate, name="hw-board", daemon=True)
        self._thread.start()
        self._running.wait()
        if self.error:
            self.close()
            raise self.error
        return self

    def stop(self) -> None:
        """End the simulation; the pty stays open (nothing answers) until :meth:`close`."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        self.stop()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def speed(self) -> tuple[float, float]:
        """(UART bytes, clock cycles) per second spent simulating (not waiting for the host) so far."""
        t = time.monotonic() - self._began - self._waited if self._began else float("inf")
        return (self.bytes_in + self.bytes_out) / t, self.cycles / t

    def _receive(self, wait: float) -> bytes:
        """Up to READ_BYTES of the host's bytes, waiting up to ``wait`` s for the first."""
        if not select.select([self._master], [], [], wait)[0]:
            return b""
        return os.read(self._master, READ_BYTES)

    def _simulate(self) -> None:
        # Both sides wait with delays, not clock ticks (15-30% faster): the host's bits change rx between clock
        # edges, as a real line's do, and tx is sampled half a period off the edges where it changes.
        dut, bit = self.top, self.divisor
        sending = [False]  # a byte is on tx

        async def drive(ctx):
            pending, quiet = b"", 0
            self._began = time.monotonic()
            self._running.set()
            while not self._stopping.is_set():
                if not pending and quiet >= QUIET_CYCLES and not sending[0]:  # nothing to do: wait for the host
                    t = time.monotonic()
                    pending = self._receive(POLL_SECONDS)
                    self._waited += time.monotonic() - t
                elif not pending:
                    pending = self._receive(0)
                if not pending:  # idle line: let the core and tx run a byte's time
                    out = self.bytes_out
                    await ctx.delay(10 * bit * PERIOD)
                    self.cycles += 10 * bit
                    quiet = 0 if sending[0] or self.bytes_out != out else quiet + 10 * bit
                    continue
                byte, pending = pending[0], pending[1:]
                for level in (0, *((byte >> k) & 1 for k in range(8)), 1):  # start, LSB first, stop
                    ctx.set(dut.rx, level)
                    await ctx.delay(bit * PERIOD)
                self.cycles += 10 * bit
                self.bytes_in += 1
                quiet = 0

        async def listen(ctx):
            while True:
                await ctx.negedge(dut.tx)  # a start bit: no work per cycle while tx idles
                sending[0] = True
                await ctx.delay((bit + 1) / 2 * PERIOD)  # mid start bit, between two clock edges
                byte = 0
                for k in range(8):
                    await ctx.delay(bit * PERIOD)
                    byte |= ctx.get(dut.tx) << k
                await ctx.delay(bit * PERIOD)  # the stop bit's middle
                self.bytes_out += 1  # before the host can have it
                try:
                    os.write(self._master, bytes([byte]))
                except BlockingIOError:  # the host's buffer is full: the byte is lost, as on a real line
                    pass
                sending[0] = False

        sim = Simulator(dut)
        sim.add_clock(PERIOD)
        sim.add_testbench(drive)
        sim.add_testbench(listen, background=True)
        try:
            sim.run()
        except BaseException as e:  # noqa: BLE001 - raised by start(), else a host sees a board that stopped answering
            self.error = e
            self._running.set()
