"""``make bench``: memory and instruction counts of the generated Cortex-M4 code on QEMU,
and the serial path: flashing throughput, faults survived.

Per shared model: the planned peak arena bytes, the weight bytes, and the
instructions of one inference of the bench firmware on QEMU mps2-an386 under
``-icount`` (see host/icount.py), for the DSP-extension kernels and, in the
same run, the portable kernels as the baseline. Every layer's output CRC-32
from the board is checked against the NumPy reference; a mismatch fails the
bench. Then each model is flashed over the serial link through the bootloader and
run with the DUT protocol (instructions per inference, payload bytes over bytes on
the wire), and the KWS image is flashed through a fault-injecting proxy. Results go
to JSON and Markdown tables for the README.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codegen.emit import c as emit_c
from codegen.errors import TinysynError
from codegen.frontends.tflite import load
from codegen.pipeline import Program, compile_graph
from host.checker import compare, reference_runs
from host.faultproxy import run_fault_campaign
from host.firmware_build import build_firmware
from host.icount import BenchError, BenchReport, bench_input, measure
from host.profiler import prepare, profile

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"
MODELS = ("kws_ref_model", "pretrainedResnet_quant")
BOARD = "qemu-mps2-an386"
#: kernel variants measured in one run: the DSP path and the portable baseline
VARIANTS = {"dsp": (), "portable": ("-DTSN_NN_PORTABLE",)}
#: CMSIS-NN's instructions per inference on the same emulator (DESIGN.md section 7), quoted, not measured here
#: flashes through the fault-injecting proxy
FAULT_TRIALS = 6
CMSIS_NN_INSTRUCTIONS = {"kws_ref_model": 7_695_496, "pretrainedResnet_quant": 29_858_486}


def measure_bit_exact(gen_dir: Path, out_dir: Path, cflags: tuple[str, ...], expected: Program,
                      label: str) -> BenchReport:
    """Build the bench firmware of the C in ``gen_dir`` with ``cflags``, run it on QEMU and raise BenchError
    unless every layer's output CRC equals the NumPy reference of ``expected`` (its graph, its layers)."""
    elf = build_firmware(gen_dir, BOARD, "bench", out_dir, extra_cflags=cflags)
    report = measure(elf)
    g = expected.graph
    x = bench_input(g.tensor(g.inputs[0]).size).reshape(g.tensor(g.inputs[0]).shape)
    problems = compare(reference_runs(expected, x)[0], [layer.crc32 for layer in report.layers])
    if problems:
        raise BenchError(f"{label} on {BOARD}: {problems[0]} (NumPy reference)")
    return report


def run_on_board(program: Program, work: Path, variant: str) -> BenchReport:
    """Generate, build and run the bench firmware; raise BenchError unless every layer is bit-exact."""
    gen_dir = work / "gen"
    emit_c.write(program, gen_dir, target="cortex-m4")  # always fresh: stale code would be measured
    return measure_bit_exact(gen_dir, work / variant, VARIANTS[variant], program, f"{program.prefix} ({variant})")


def bench_model(path: Path, work: Path) -> dict:
    program = compile_graph(load(path))
    reports = {variant: run_on_board(program, work, variant) for variant in VARIANTS}
    dsp = reports["dsp"]
    result = {
        "model": path.name,
        "board": BOARD,
        "macs": program.macs,
        "arena_bytes": program.plan.peak_bytes,
        "weight_bytes": program.weight_bytes,
        "bit_exact": True,
        "instructions": {v: round(r.total_instructions) for v, r in reports.items()},
        "instructions_per_mac": round(dsp.total_instructions / program.macs, 3),
        "dsp_over_portable": round(dsp.total_instructions / reports["portable"].total_instructions, 3),
        "stack_high_water_bytes": dsp.stack_bytes,
        "layers": [
            {"index": layer.index, "op": timing.op, "macs": layer.macs,
             **{f"instructions_{v}": round(r.layers[layer.index].instructions) for v, r in reports.items()}}
            for layer, timing in zip(program.layers, dsp.layers)
        ],
    }
    cmsis = CMSIS_NN_INSTRUCTIONS.get(path.stem)
    if cmsis:
        result["cmsis_nn_instructions_quoted"] = cmsis
        result["dsp_over_cmsis_nn"] = round(dsp.total_instructions / cmsis, 3)
    return result


def bench_board(path: Path, work: Path) -> dict:
    """The serial path: flash the DUT app through the bootloader, run one verified inference."""
    report = profile(path, BOARD, runs=1, seed=0, work=work, progress=False)
    return {"total_instructions": report["total_instructions"], "flash_bytes": report["flash_bytes"],
            "static_ram_bytes": report["static_ram_bytes"], "flash": report["flash"]}


def bench_faults(path: Path, work: Path) -> dict:
    """Flash the model's DUT app through a fault-injecting proxy: faults injected and survived."""
    _, boot, app, _ = prepare(path, BOARD, work)
    campaign = run_fault_campaign(boot, app, trials=FAULT_TRIALS, cut_trials=1, seed=1)
    return {key: campaign[key] for key in ("trials", "succeeded", "failed", "wrong_image", "recovered",
                                           "faults_injected", "faults_survived", "retries", "faults")}


def markdown(results: list[dict]) -> str:
    rows = [("| model | MACs | arena bytes | weight bytes | instructions (DSP) | instructions (portable) "
            "| DSP / portable | instr / MAC | CMSIS-NN (quoted) |"),
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rows.append(f"| {r['model']} | {r['macs']:,} | {r['arena_bytes']:,} | {r['weight_bytes']:,} "
                    f"| {r['instructions']['dsp']:,} | {r['instructions']['portable']:,} | {r['dsp_over_portable']} "
                    f"| {r['instructions_per_mac']} | {r.get('cmsis_nn_instructions_quoted', 0):,} |")
    rows += ["", ("| model | instructions per inference (flashed over serial, DUT protocol) | image bytes "
             "| bytes on the wire | payload / wire | flash time (s) |"), "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        b = r["board_serial"]
        rows.append(f"| {r['model']} | {b['total_instructions']:,} | {b['flash']['payload_bytes']:,} "
                    f"| {b['flash']['wire_bytes']:,} | {b['flash']['wire_efficiency']} | {b['flash']['seconds']} |")
    return "\n".join(rows)


def markdown_faults(f: dict) -> str:
    return (f"fault injection ({f['trials']} flashes of {MODELS[0]} through a proxy, one cut mid-transfer): "
            f"{f['faults_injected']} faults injected, {f['faults_survived']} survived by verified flashes, "
            f"{f['succeeded']} verified, {f['failed']} failed cleanly and recovered {f['recovered']}, "
            f"wrong images reported as success: {f['wrong_image']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench.json")
    parser.add_argument("--models", type=Path, default=SHARED_MODELS, help="directory of the shared models")
    args = parser.parse_args(argv)
    try:
        results = []
        for name in MODELS:
            print(f"bench: {name} on {BOARD} ({', '.join(VARIANTS)})", flush=True)
            path = args.models / f"{name}.tflite"
            result = bench_model(path, args.out.parent / "bench" / name)
            print(f"bench: {name} flashed over serial through the bootloader", flush=True)
            result["board_serial"] = bench_board(path, args.out.parent / "bench" / name / "serial")
            results.append(result)
        print(f"bench: fault injection while flashing {MODELS[0]}", flush=True)
        faults = bench_faults(args.models / f"{MODELS[0]}.tflite", args.out.parent / "bench" / "faults")
    except TinysynError as err:
        print(f"tinysyn: error: {err}", file=sys.stderr)
        return err.exit_code
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"models": results, "fault_injection": faults}, indent=2) + "\n")
    print(markdown(results))
    print(markdown_faults(faults))
    print(f"bench: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
