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
        dut.set_subnet(2)              # a DRESS model: run sub-net 2 from now on

Every command waits for the reply's ``m-ready`` line within a timeout; an
``e-[...]`` line raises ProtocolError, silence raises BoardTimeoutError
(:class:`host.console.ConsoleClient`).
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen.errors import ProtocolError
from host.console import BRACKET_RE, ConsoleClient, bracketed

#: Input bytes per `db <hex>%` command: 2 hex digits each, within MAX_COMMAND_CHARS.
DB_CHUNK_BYTES = 32
#: Seconds an inference command may take (a large model on the emulator).
DEFAULT_INFER_TIMEOUT = 120.0


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


class DutClient(ConsoleClient):
    """Commands of the DUT app over an open serial port."""

    # -- MLPerf Tiny commands -----------------------------------------------------

    def name(self) -> str:
        return bracketed(self.command("name"), "name-dut", self.where, "name")

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
        results = bracketed(lines, "results", self.where, "infer")
        values = tuple(float(v) for v in results.split(",")) if results else ()
        return InferResult(runs, (laps[0], laps[1]), values)

    # -- tinysyn commands ---------------------------------------------------------

    def info(self) -> dict[str, str | int]:
        """``tsn-info``: board, model, hash, sizes and the timer, numbers as int."""
        return self.fields("tsn-info")

    def memory(self) -> dict[str, str | int]:
        """``tsn-mem``: static RAM, board RAM, arena, stack size and the last high-water mark."""
        return self.fields("tsn-mem")

    def trace(self) -> list[LayerTrace]:
        """``tsn-trace``: every layer of the last traced inference."""
        layers = []
        for line in self.command("tsn-trace"):
            m = BRACKET_RE.match(line)
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
        return self.hex_payload("tsn-out" if layer is None else f"tsn-out {layer}", "tsn-out")

    def set_subnet(self, k: int | None = None) -> tuple[int, int]:
        """``tsn-subnet [K]``: run DRESS sub-net k from now on (None: just ask which runs).

        Returns (the running sub-net, the model's sub-net count); a dense model or an
        index out of range is the board's one-line error, raised as ProtocolError.
        """
        command = "tsn-subnet" if k is None else f"tsn-subnet {k}"
        reply = bracketed(self.command(command), "tsn-subnet", self.where, command)
        try:
            running, count = (int(v) for v in reply.split(","))
        except ValueError:
            raise ProtocolError(f"{self.where}: malformed reply to {command!r}: {reply!r}") from None
        if k is not None and running != k:
            raise ProtocolError(f"{self.where}: asked for sub-net {k}, the board runs {running}")
        return running, count

    def enter_bootloader(self) -> None:
        """``tsn-boot``: the app answers, then resets into the bootloader."""
        self.command("tsn-boot")
