"""``tinysyn profile``: build a model's firmware, flash it over serial, run it, verify it.

The whole path a board goes through, on the emulated board or a real one:

1. compile the model and check it fits the board (RAM and flash, before building);
2. generate Cortex-M C, build the bootloader and the DUT app (linked at the
   bootloader's application area);
3. on the emulated board start QEMU with the bootloader; on a real one open --port;
4. flash the app through the bootloader (framed, CRC-checked, verified) and boot it;
5. per run: load a random input (seeded), infer, read the per-layer trace and the
   raw output, and compare both with the NumPy reference bit for bit;
6. report per-layer instructions (emulator, ``-icount``) or cycles (DWT), stack
   high-water, static RAM and flash from the ELF, the arena peak.

A DRESS file's sub-nets are profiled in one session: step 5 once per sub-net, switched
on the running board with ``tsn-subnet`` and checked against that sub-net's reference.

    report = profile(Path("kws.tflite"), "qemu-mps2-an386", runs=5)
    report["bit_exact"], report["total_instructions"]
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from codegen.dress.program import compile_file
from codegen.emit import c as emit_c
from codegen.errors import InputError, MismatchError, ProtocolError, ResourceError
from codegen.pipeline import Program
from codegen.ref import random_inputs
from host.checker import ReferenceRun, compare, reference_runs
from host.dut import DutClient, LayerTrace
from host.emulator import MACHINES, Emulator
from host.firmware_build import (
    BOARDS,
    board_memory,
    build_bootloader,
    build_firmware,
    elf_sizes,
)
from host.flasher import Flasher, FlashResult
from host.icount import timer_cost
from host.qemu import DEFAULT_ICOUNT_SHIFT
from host.transport import open_port

#: The DUT app's stack reservation (the linker scripts' default).
STACK_BYTES = 64 * 1024
#: The DUT app's code and runtime data besides the model: a safe upper bound for
#: the fit check before building (measured: about 10 KB of code, 2.5 KB of trace).
FIRMWARE_OVERHEAD_BYTES = 32 * 1024


def check_fits(program: Program, board: str, source: str) -> None:
    """ResourceError naming the sizes if the model cannot fit the board; runs before any build."""
    memory = board_memory(board)
    flash_needed = program.weight_bytes + FIRMWARE_OVERHEAD_BYTES
    if flash_needed > memory["app_max_bytes"]:
        raise ResourceError(
            f"{source}: needs about {flash_needed:,} bytes of flash ({program.weight_bytes:,} of weights), "
            f"{board} has {memory['app_max_bytes']:,} for the application")
    ram_needed = program.plan.peak_bytes + STACK_BYTES + FIRMWARE_OVERHEAD_BYTES
    if ram_needed > memory["ram_bytes"]:
        raise ResourceError(
            f"{source}: needs about {ram_needed:,} bytes of RAM (arena {program.plan.peak_bytes:,} + stack "
            f"{STACK_BYTES:,}), {board} has {memory['ram_bytes']:,}")


def check_image_fits(sizes: dict[str, int], board: str, elf: Path) -> None:
    """The exact check once the ELF exists."""
    memory = board_memory(board)
    if sizes["flash_bytes"] > memory["app_max_bytes"]:
        raise ResourceError(f"{elf}: {sizes['flash_bytes']:,} bytes of flash, {board} has "
                            f"{memory['app_max_bytes']:,} for the application")
    if sizes["static_ram_bytes"] > memory["ram_bytes"]:
        raise ResourceError(f"{elf}: {sizes['static_ram_bytes']:,} bytes of static RAM, {board} has "
                            f"{memory['ram_bytes']:,}")


def prepare(model: Path, board: str, work: Path) -> tuple[Program, Path, Path, dict[str, int]]:
    """Compile `model` (a .tflite or a DRESS file), check it fits `board`, generate its C and build the bootloader and the
    DUT app (linked at the application area) under work/<prefix>/.

    Returns (program, bootloader ELF, app ELF, the app's ELF sizes).
    """
    if board not in BOARDS:
        raise InputError(f"unknown board {board!r}; choose one of {', '.join(BOARDS)}")
    program, _ = compile_file(model)
    check_fits(program, board, str(model))
    work = work / program.prefix
    gen = work / "gen"
    emit_c.write(program, gen, target="cortex-m4")
    boot = build_bootloader(board, work / "boot")
    app = build_firmware(gen, board, "dut", work / "app", image="app")
    sizes = elf_sizes(app)
    check_image_fits(sizes, board, app)
    return program, boot, app, sizes


def flash_and_connect(serial_port, url: str, app_elf: Path, program: Program,
                      progress: bool) -> tuple[DutClient, dict, FlashResult]:
    """Flash the DUT app through the bootloader, boot it, and check it runs `program`."""
    flash = Flasher(serial_port, progress=progress).flash(app_elf, boot=True)
    dut = DutClient(serial_port, where=url)
    dut.resync()
    info = dut.info()
    if info.get("hash") != program.graph.sha256 or info.get("subnets") != len(program.sparsities):
        raise ProtocolError(f"{url}: the board runs model {info.get('model')} ({str(info.get('hash'))[:12]}..., "
                            f"{info.get('subnets')} sub-nets), not the one just flashed")
    return dut, info, flash


@contextlib.contextmanager
def board_url(board: str, boot_elf: Path, port: str | None,
              icount_shift: int = DEFAULT_ICOUNT_SHIFT) -> Iterator[str]:
    """The serial URL of the board: --port if given, else a fresh emulator running the bootloader."""
    if port is not None:
        yield port
        return
    if board not in MACHINES:
        raise InputError(f"board {board} is real hardware: give its serial port with --port")
    with Emulator(boot_elf, board=board, serial="tcp", icount_shift=icount_shift) as emulator:
        yield emulator.url


def profile(model: Path, board: str = "qemu-mps2-an386", port: str | None = None, runs: int = 1, seed: int = 0,
            work: Path = Path("build/profile"), progress: bool = True,
            icount_shift: int = DEFAULT_ICOUNT_SHIFT, subnets: Sequence[int] | str | None = None) -> dict:
    """Build, flash, run and verify `model` on `board`; return the report (see module doc).

    `subnets` (a DRESS file only): the sub-nets to profile ("all": 0 to K-1), in this order, in one board
    session, switched with ``tsn-subnet`` (no reflash); each is checked against its own
    NumPy reference (default: sub-net 0). One sub-net: the report gains ``subnet`` and ``sparsity``. More: the
    report keeps what they share and lists one such report per sub-net under ``subnets``.

    Raises MismatchError after the report is complete if any result differs from
    the reference (the caller may still write the report), ResourceError if the
    model does not fit, BoardError if the board fails to answer.
    """
    if runs < 1:
        raise InputError(f"--runs must be at least 1, got {runs}")
    model = Path(model)
    references = subnet_references(model, subnets)  # checked before building
    program, boot_elf, app_elf, sizes = prepare(model, board, Path(work))
    inputs = random_inputs(program.graph, runs, seed)
    reports = []
    with board_url(board, boot_elf, port, icount_shift) as url, contextlib.closing(open_port(url)) as serial_port:
        dut, info, flash = flash_and_connect(serial_port, url, app_elf, program, progress)
        for k, sparsity, graph in references:
            if k is not None:
                dut.set_subnet(k)
            traces, problems = run_and_check(dut, inputs, reference_runs(program, inputs, graph), progress)
            report = summarize(program, board, model, traces, info, sizes, icount_shift if port is None else None)
            if k is not None:
                report.update(subnet=k, sparsity=sparsity)
                problems = [f"sub-net {k}: {p}" for p in problems]
            report["board_memory"] = dut.memory()  # as the firmware itself reports it (tsn-mem)
            report["bit_exact"] = not problems
            report["mismatches"] = problems[:20]
            reports.append(report)

    problems = [p for report in reports for p in report["mismatches"]]
    if subnets != "all" and len(reports) == 1:
        report = reports[0]
    else:
        report = {key: reports[0][key] for key in SHARED_KEYS}
        report.update(bit_exact=not problems, mismatches=problems[:20], sparsities=list(program.sparsities),
                      subnets=reports)
    report["flash"] = flash_summary(flash)
    if problems:
        raise MismatchError(f"{model.name} on {board}: {problems[0]}"
                            f"{f' (and {len(problems) - 1} more)' if len(problems) > 1 else ''}", report)
    return report


#: What the sub-net reports of one session share, kept once at the top of a multi-sub-net report.
SHARED_KEYS = ("model", "board", "runs", "macs", "static_ram_bytes", "flash_bytes", "arena_bytes", "weight_bytes",
               "timer", "elf")


def subnet_references(model: Path, subnets: Sequence[int] | str | None) -> list[tuple]:
    """(sub-net, sparsity, reference graph) per profiled pass: [(None, None, None)] (the program's own graph)
    for a .tflite; a DRESS file profiles sub-net 0 unless told otherwise."""
    from codegen.dress import format as dress_format
    from codegen.dress.reference import check_subnet, subnet_graph

    if not dress_format.is_dress(model):
        if subnets is None:
            return [(None, None, None)]
        raise InputError(f"{model}: --subnet needs a DRESS file (made by tinysyn dress)")
    subnets = [0] if subnets is None else subnets  # the sub-net a board runs after start-up
    dress = dress_format.read(model)
    subnets = range(dress.subnets) if subnets == "all" else subnets
    for k in subnets:
        try:
            check_subnet(dress, k)
        except InputError as err:
            raise InputError(f"{model}: {err}") from None
    return [(k, dress.sparsities[k], subnet_graph(dress, k)) for k in subnets]


def run_and_check(dut: DutClient, inputs: np.ndarray, expected: list[ReferenceRun],
                  progress: bool) -> tuple[list[list[LayerTrace]], list[str]]:
    """Per input: load, infer, read the trace and the output, compare with the reference.
    Returns the traces and the differences ([] = bit-exact), each naming its run."""
    problems: list[str] = []
    traces = []
    for k in tqdm(range(len(inputs)), desc="inference", unit="run", disable=not progress, leave=False):
        dut.load_input(inputs[k].tobytes())
        dut.infer(runs=1)
        trace = dut.trace()
        output = dut.output()
        problems += [f"run {k}: {p}" for p in compare(expected[k], [t.crc32 for t in trace], output)]
        traces.append(trace)
    return traces, problems


def flash_summary(flash: FlashResult) -> dict:
    """The flash figures a report keeps: payload over everything on the wire, time, resends."""
    return {
        "payload_bytes": flash.payload_bytes,
        "wire_bytes": flash.wire_bytes,
        "wire_efficiency": round(flash.wire_efficiency, 4),
        "seconds": round(flash.elapsed_s, 3),
        "bytes_per_second": round(flash.bytes_per_second),
        "retries": flash.wire.retries,
        "image_crc32": f"{flash.image_crc32:08x}",
    }


def summarize(program: Program, board: str, model: Path, traces: list, info: dict, sizes: dict[str, int],
              icount_shift: int | None) -> dict:
    """The report dict: per-layer cost as the median over runs, stack as the maximum."""
    key, cost = timer_cost(info, icount_shift)
    emulated = key == "instructions"

    layers = []
    for index, layer in enumerate(program.layers):
        per_run = [cost(trace[index].ticks) for trace in traces]
        layers.append({
            "index": index,
            "op": traces[0][index].op,
            "macs": layer.macs,
            "output_bytes": program.graph.op_output(layer.op).nbytes,
            key: int(np.median(per_run)),
            "stack_bytes": max(trace[index].stack_bytes for trace in traces),
        })
    total = sum(layer[key] for layer in layers)
    return {
        "model": model.name,
        "board": board,
        "runs": len(traces),
        "bit_exact": None,
        f"total_{key}": total,
        "macs": program.macs,
        f"{key}_per_mac": round(total / program.macs, 3) if program.macs else None,
        "layers": layers,
        "stack_high_water_bytes": max(layer["stack_bytes"] for layer in layers),
        "static_ram_bytes": sizes["static_ram_bytes"],
        "flash_bytes": sizes["flash_bytes"],
        "arena_bytes": program.plan.peak_bytes,
        "weight_bytes": program.weight_bytes,
        "timer": {"kind": info["timer"], "hz": info["timer_hz"], "overhead_ticks": int(info["timer_overhead"]),
                  "icount_shift": icount_shift if emulated else None},
        "elf": sizes,
    }
