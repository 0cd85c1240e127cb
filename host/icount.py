"""Per-layer instruction counts from the bench app's UART report.

The bench firmware (firmware/apps/bench) times each layer with SysTick. Under
QEMU ``-icount shift=N`` every instruction takes 2^N ns of virtual time and
SysTick counts the 25 MHz core clock (40 ns per tick), so

    instructions = ticks * 40 / 2^N          (shift 6: ticks / 1.6)

Checked on a calibration model whose layers run a 4-instruction loop (nop, nop,
subs, bne) 1,000,000 and 10,000,000 times: 6,400,064 and 64,000,096 ticks at
shift 6, i.e. 4,000,040 and 40,000,060 instructions, exactly the instruction
count read off the disassembly (loop + 40 around it, + 4 SysTick wraps x the
5-instruction wrap handler in the long one). Shifts 0, 3 and 8 agree. One reading
is exact to a tick (0.625 instructions at shift 6); the timer's own overhead (an
empty timed region, 38 ticks = 24 instructions) is reported by the firmware and
subtracted per layer.

    report = measure(Path("build/fw/bench.elf"))
    report.layers[0].instructions, report.total_instructions
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from codegen.errors import TinysynError
from host.qemu import DEFAULT_ICOUNT_SHIFT, run_semihosted

#: Seed of the bench app's input (firmware/apps/bench/main.c, INPUT_SEED).
BENCH_INPUT_SEED = 0x2545F491
#: SysTick clock of the QEMU mps2 boards (their 25 MHz core clock).
SYSTICK_HZ = 25_000_000


class BenchError(TinysynError):
    """The bench firmware failed or its report could not be read."""


def bench_input(length: int, seed: int = BENCH_INPUT_SEED) -> np.ndarray:
    """The bench app's input: the low byte of successive xorshift32 (13/17/5) states."""
    out = np.empty(length, dtype=np.uint8)
    x = seed
    for i in range(length):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 0xFF
    return out.view(np.int8)


def instructions_per_tick(icount_shift: int = DEFAULT_ICOUNT_SHIFT, clock_hz: int = SYSTICK_HZ) -> Fraction:
    """Exact instructions per SysTick tick: tick period / (2^shift ns per instruction)."""
    return Fraction(10**9, clock_hz) / 2**icount_shift


def ticks_to_instructions(ticks: int, icount_shift: int = DEFAULT_ICOUNT_SHIFT, clock_hz: int = SYSTICK_HZ) -> float:
    """Instructions executed in `ticks` SysTick ticks under -icount shift=`icount_shift`."""
    return float(ticks * instructions_per_tick(icount_shift, clock_hz))


def timer_cost(info: dict, icount_shift: int | None) -> tuple[str, Callable[[int], int]]:
    """How a serial app's timed ticks (its info reply: timer, timer_hz, timer_overhead) become a cost:
    ("instructions", f) on the emulator's SysTick under -icount, else ("cycles", f); f subtracts the
    timer's own overhead."""
    overhead = int(info["timer_overhead"])
    if icount_shift is not None and info["timer"] == "systick":
        hz = int(info["timer_hz"])
        return "instructions", lambda ticks: round(ticks_to_instructions(max(ticks - overhead, 0), icount_shift, hz))
    return "cycles", lambda ticks: max(ticks - overhead, 0)


@dataclass(frozen=True)
class LayerTiming:
    index: int
    op: str
    ticks: int                 #: raw ticks of the timed region
    instructions: float        #: ticks less the timer overhead, in instructions
    stack_bytes: int | None    #: deepest stack use while the layer ran
    crc32: int | None = None   #: zlib CRC-32 of the layer's output


@dataclass(frozen=True)
class BenchReport:
    model: str
    icount_shift: int
    overhead_ticks: int        #: an empty timed region, subtracted from every layer
    layers: list[LayerTiming]
    total_ticks: int
    stack_bytes: int
    errors: list[str] = field(default_factory=list)

    @property
    def total_instructions(self) -> float:
        return sum(layer.instructions for layer in self.layers)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["total_instructions"] = self.total_instructions
        return data


_MODEL_RE = re.compile(r"^bench model (\S+) layers (\d+)$")
_OVERHEAD_RE = re.compile(r"^timer overhead ticks (\d+)$")
_LAYER_RE = re.compile(r"^layer (\d+) (\S+) ticks (\d+)(?: stack (\d+))?(?: crc (\d+))?$")
_TOTAL_RE = re.compile(r"^total ticks (\d+) stack (\d+)$")


def parse_bench_output(text: str, icount_shift: int = DEFAULT_ICOUNT_SHIFT) -> BenchReport:
    """Parse the bench app's UART text; unknown lines are ignored."""
    model = None
    overhead = None
    total = None
    raw_layers: list[tuple[int, str, int, int | None, int | None]] = []
    errors: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if m := _MODEL_RE.match(line):
            model = m.group(1)
        elif m := _OVERHEAD_RE.match(line):
            overhead = int(m.group(1))
        elif m := _LAYER_RE.match(line):
            stack = int(m.group(4)) if m.group(4) is not None else None
            crc = int(m.group(5)) if m.group(5) is not None else None
            raw_layers.append((int(m.group(1)), m.group(2), int(m.group(3)), stack, crc))
        elif m := _TOTAL_RE.match(line):
            total = (int(m.group(1)), int(m.group(2)))
        elif line.startswith("error ") or line.startswith("fault "):
            errors.append(line)
    if model is None or overhead is None or total is None:
        missing = [name for name, value in (("'bench model'", model), ("'timer overhead'", overhead),
                                            ("'total'", total)) if value is None]
        raise BenchError(f"bench report incomplete (no {', '.join(missing)} line); errors: {errors or 'none'}")
    layers = [
        LayerTiming(index, op, ticks, ticks_to_instructions(ticks - overhead, icount_shift), stack, crc)
        for index, op, ticks, stack, crc in raw_layers
    ]
    return BenchReport(model, icount_shift, overhead, layers, total[0], total[1], errors)


def measure(elf: Path, icount_shift: int = DEFAULT_ICOUNT_SHIFT, timeout: float = 120) -> BenchReport:
    """Run a bench firmware under QEMU and return its per-layer instruction counts.

    Raises BenchError if the firmware exits non-zero or its report is unreadable.
    """
    exit_code, uart_text = run_semihosted(elf, icount_shift=icount_shift, timeout=timeout)
    if exit_code != 0:
        detail = [line for line in uart_text.splitlines() if line.startswith(("error ", "fault "))]
        raise BenchError(f"{Path(elf).name} exited with status {exit_code}: {'; '.join(detail) or uart_text[-300:]}")
    return parse_bench_output(uart_text, icount_shift)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Per-layer instruction counts of a bench firmware under QEMU.")
    parser.add_argument("elf", type=Path)
    parser.add_argument("--shift", type=int, default=DEFAULT_ICOUNT_SHIFT, help="QEMU -icount shift (default 6)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = measure(args.elf, args.shift)
    except Exception as exc:  # noqa: BLE001 - a CLI reports any failure in one line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(f"model {report.model}  (-icount shift={report.icount_shift}, timer overhead "
          f"{report.overhead_ticks} ticks subtracted)")
    for layer in report.layers:
        print(f"{layer.index:4d} {layer.op:24s} {layer.instructions:14,.1f} instr  stack {layer.stack_bytes}")
    print(f"total {report.total_instructions:,.1f} instructions, stack {report.stack_bytes} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
