"""``make bench``: memory and instruction counts of the generated Cortex-M4 code on QEMU.

Per shared model: the planned peak arena bytes, the weight bytes, and the
instructions of one inference of the bench firmware on QEMU mps2-an386 under
``-icount`` (see host/icount.py), for the DSP-extension kernels and, in the
same run, the portable kernels as the baseline. Every layer's output CRC-32
from the board is checked against the NumPy reference; a mismatch fails the
bench. Results go to JSON and a Markdown table for the README.
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
from host.firmware_build import build_firmware
from host.icount import BenchError, BenchReport, bench_input, measure

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"
MODELS = ("kws_ref_model", "pretrainedResnet_quant")
BOARD = "qemu-mps2-an386"
#: kernel variants measured in one run: the DSP path and the portable baseline
VARIANTS = {"dsp": (), "portable": ("-DTSN_NN_PORTABLE",)}
#: CMSIS-NN's instructions per inference on the same emulator (DESIGN.md section 7), quoted, not measured here
CMSIS_NN_INSTRUCTIONS = {"kws_ref_model": 7_695_496, "pretrainedResnet_quant": 29_858_486}


def run_on_board(program: Program, work: Path, variant: str) -> BenchReport:
    """Generate, build and run the bench firmware; raise BenchError unless every layer is bit-exact."""
    gen_dir = work / "gen"
    emit_c.write(program, gen_dir, target="cortex-m4")  # always fresh: stale code would be measured
    elf = build_firmware(gen_dir, BOARD, "bench", work / variant, extra_cflags=VARIANTS[variant])
    report = measure(elf)
    g = program.graph
    x = bench_input(g.tensor(g.inputs[0]).size).reshape(g.tensor(g.inputs[0]).shape)
    problems = compare(reference_runs(program, x)[0], [layer.crc32 for layer in report.layers])
    if problems:
        raise BenchError(f"{program.prefix} ({variant}) on {BOARD}: {problems[0]} (NumPy reference)")
    return report


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


def markdown(results: list[dict]) -> str:
    rows = ["| model | MACs | arena bytes | weight bytes | instructions (DSP) | instructions (portable) "
            "| DSP / portable | instr / MAC | CMSIS-NN (quoted) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rows.append(f"| {r['model']} | {r['macs']:,} | {r['arena_bytes']:,} | {r['weight_bytes']:,} "
                    f"| {r['instructions']['dsp']:,} | {r['instructions']['portable']:,} | {r['dsp_over_portable']} "
                    f"| {r['instructions_per_mac']} | {r.get('cmsis_nn_instructions_quoted', 0):,} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench.json")
    parser.add_argument("--models", type=Path, default=SHARED_MODELS, help="directory of the shared models")
    args = parser.parse_args(argv)
    try:
        results = []
        for name in MODELS:
            print(f"bench: {name} on {BOARD} ({', '.join(VARIANTS)})", flush=True)
            results.append(bench_model(args.models / f"{name}.tflite", args.out.parent / "bench" / name))
    except TinysynError as err:
        print(f"tinysyn: error: {err}", file=sys.stderr)
        return err.exit_code
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"models": results}, indent=2) + "\n")
    print(markdown(results))
    print(f"bench: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
