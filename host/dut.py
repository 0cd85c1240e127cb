"""Client of the DUT application protocol (firmware/PROTOCOL.md section 4).

The firmware speaks MLPerf Tiny's device-under-test commands (so the official
runner can drive it) plus tinysyn's ``tsn-`` commands for what that set lacks:

    with open_port(url) as port:
        dut = DutClient(port, where=url)
        dut.info()                     # {"board": ..., "layers": 13, ...}
        dut.load_input(x.tobytes())    # db load N% + db <hex>% chunks
        dut.infer(runs=1)              # laps in microseconds, dequantized results
        dut.trace()                    # per-layer ticks, stack, CRC-32
        dut.output()                   # raw int8 output bytes

Every command waits for the reply's ``m-ready`` line within a timeout; an
``e-[...]`` line raises ProtocolError, silence raises BoardTimeoutError.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

import serial

from codegen.errors import BoardTimeoutError, ProtocolError
from host.transport import read_some, write_all

#: Longest command the firmware accepts, '%' excluded (EEMBC's limit).
MAX_COMMAND_CHARS = 80
#: Input bytes per `db <hex>%` command: 2 hex digits each, within MAX_COMMAND_CHARS.
DB_CHUNK_BYTES = 32
#: Seconds a command may take before the board counts as not answering.
DEFAULT_TIMEOUT = 10.0
#: Seconds an inference command may take (a large model on the emulator).
DEFAULT_INFER_TIMEOUT = 120.0

_READY = "m-ready"
_BRACKET_RE = re.compile(r"^m-([a-z-]+?)-?\[(.*)\]$")


@dataclass(frozen=True)
class LayerTrace:
    """One layer of the last traced inference, as the board reports it."""

    index: int
    op: str
    ticks: int
    stack_bytes: int
    crc32: int


@dataclass(frozen=True)
class InferResult:
    runs: int
    lap_us: tuple[int, int]          #: board timer at the start and end of the timed runs, in microseconds
    results: tuple[float, ...]       #: the output dequantized, as the board prints it


def _bracketed(lines: list[str], key: str, where: str, command: str) -> str:
    """The text inside ``m-<key>-[...]`` (or ``m-<key>[...]``) among the reply lines."""
    for line in lines:
        m = _BRACKET_RE.match(line)
        if m and m.group(1) == key:
            return m.group(2)
    raise ProtocolError(f"{where}: reply to {command!r} has no m-{key}-[...] line: {lines[:4]}")


class DutClient:
    """Commands of the DUT app over an open serial port."""

    def __init__(self, port: serial.SerialBase, where: str = "board", timeout: float = DEFAULT_TIMEOUT):
        self.port = port
        self.where = where
        self.timeout = timeout
        self._pending = b""
        self._sync_count = 0

    # -- transport ---------------------------------------------------------------

    def _readline(self, deadline: float, command: str) -> str:
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BoardTimeoutError(f"{self.where}: no reply to {command!r} within the time limit "
                                        f"(got {self._pending[-60:]!r})")
            self._pending += read_some(self.port, min(remaining, 0.5))
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode("ascii", "replace").strip()

    def command(self, text: str, timeout: float | None = None) -> list[str]:
        """Send ``text%`` and return the reply lines before ``m-ready``.

        Raises ProtocolError with the board's message on an ``e-[...]`` line.
        """
        if len(text) > MAX_COMMAND_CHARS or "%" in text:
            raise ValueError(f"not a DUT command: {text!r}")
        write_all(self.port, text.encode("ascii") + b"%")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        lines: list[str] = []
        errors: list[str] = []
        while True:
            line = self._readline(deadline, text)
            if not line:
                continue
            if line == _READY:
                break
            if line.startswith("e-["):
                errors.append(line[3:].rstrip("]"))
            lines.append(line)
        if errors:
            raise ProtocolError(f"{self.where}: {text!r} failed on the board: {errors[0]}")
        return lines

    def resync(self) -> None:
        """Skip whatever stale replies are in flight (after a timeout, a boot or a reconnect):
        send ``tsn-sync <token>`` with a fresh token and drop every line before its echo."""
        self._sync_count += 1
        token = f"{self._sync_count}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        echo = f"m-tsn-sync-[{token}]"
        write_all(self.port, f"tsn-sync {token}%".encode("ascii"))
        deadline = time.monotonic() + self.timeout
        while self._readline(deadline, "tsn-sync") != echo:
            pass
        while self._readline(deadline, "tsn-sync") != _READY:
            pass

    # -- MLPerf Tiny commands -----------------------------------------------------

    def name(self) -> str:
        return _bracketed(self.command("name"), "name-dut", self.where, "name")

    def load_input(self, data: bytes) -> None:
        """Load the input tensor: ``db load N%`` then ``db <hex>%`` chunks until ``m-load-done``."""
        self.command(f"db load {len(data)}")
        done = False
        for offset in range(0, len(data), DB_CHUNK_BYTES):
            lines = self.command("db " + data[offset:offset + DB_CHUNK_BYTES].hex())
            done = "m-load-done" in lines
        if not done:
            raise ProtocolError(f"{self.where}: board did not confirm the input load (no m-load-done)")

    def infer(self, runs: int = 1, warmups: int = 0, timeout: float = DEFAULT_INFER_TIMEOUT) -> InferResult:
        lines = self.command(f"infer {runs} {warmups}", timeout=timeout)
        laps = [int(line[len("m-lap-us-"):]) for line in lines if line.startswith("m-lap-us-")]
        if len(laps) != 2 or "m-infer-done" not in lines:
            raise ProtocolError(f"{self.where}: incomplete reply to 'infer {runs} {warmups}': {lines}")
        results = _bracketed(lines, "results", self.where, "infer")
        values = tuple(float(v) for v in results.split(",")) if results else ()
        return InferResult(runs, (laps[0], laps[1]), values)

    # -- tinysyn commands ---------------------------------------------------------

    def info(self) -> dict[str, str | int]:
        """``tsn-info``: board, model, hash, sizes and the timer, numbers as int."""
        return self._fields("tsn-info")

    def memory(self) -> dict[str, str | int]:
        """``tsn-mem``: static RAM, board RAM, arena, stack size and the last high-water mark."""
        return self._fields("tsn-mem")

    def _fields(self, command: str) -> dict[str, str | int]:
        """A ``m-<command>-[key=value,...]`` reply as a dict, numbers as int."""
        body = _bracketed(self.command(command), command, self.where, command)
        info: dict[str, str | int] = {}
        for field in body.split(","):
            key, sep, value = field.partition("=")
            if not sep:
                raise ProtocolError(f"{self.where}: malformed {command} field {field!r}")
            info[key] = int(value) if value.isdigit() else value
        return info

    def trace(self) -> list[LayerTrace]:
        """``tsn-trace``: every layer of the last traced inference."""
        layers = []
        for line in self.command("tsn-trace"):
            m = _BRACKET_RE.match(line)
            if not m or m.group(1) != "tsn-layer":
                continue
            try:
                index, op, ticks, stack, crc = m.group(2).split(",")
                layers.append(LayerTrace(int(index), op, int(ticks), int(stack), int(crc, 16)))
            except ValueError:
                raise ProtocolError(f"{self.where}: malformed trace line {line!r}") from None
        if [layer.index for layer in layers] != list(range(len(layers))):
            raise ProtocolError(f"{self.where}: trace layers out of order or missing")
        return layers

    def output(self, layer: int | None = None) -> bytes:
        """``tsn-out [L]``: the raw model output, or layer L's output tensor."""
        command = "tsn-out" if layer is None else f"tsn-out {layer}"
        lines = self.command(command)
        header = _bracketed(lines, "tsn-out", self.where, command)
        expected = int(header.split(",")[1])
        data = b"".join(bytes.fromhex(_BRACKET_RE.match(line).group(2))
                        for line in lines if line.startswith("m-tsn-hex-["))
        if len(data) != expected:
            raise ProtocolError(f"{self.where}: {command!r} sent {len(data)} of {expected} bytes")
        return data

    def enter_bootloader(self) -> None:
        """``tsn-boot``: the app answers, then resets into the bootloader."""
        self.command("tsn-boot")
