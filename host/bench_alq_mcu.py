"""ALQ models on the emulated Cortex-M4: the software baseline the FPGA accelerator must beat (issue 6).

The C of codegen/alq/emit.py, with the model's input staged in its entry file, is built into the bench
firmware (firmware/apps/bench, -DBENCH_INPUT_STAGED) for QEMU mps2-an386 and run under ``-icount``
(host/icount.py): per-layer instruction counts, and every layer's output CRC-32 checked against
codegen/alq/reference.py's int32 output (a mismatch raises BenchError).

    instructions = measure_alq_model(model, x, Path("build/bench/alq"))   # one int per layer

    python -m host.bench_alq_mcu digits.npz --out build/bench_alq_mcu.json
"""
from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np

from codegen.alq import format as alq_format
from codegen.alq import reference
from codegen.alq.emit import write_c
from codegen.alq.format import AlqModel
from codegen.errors import TinysynError
from host.bench import BOARD, VARIANTS
from host.firmware_build import build_firmware
from host.icount import BenchError, BenchReport, measure

#: the bench app's flag that makes it run the staged input
STAGED_INPUT = "-DBENCH_INPUT_STAGED"


def reference_crcs(model: AlqModel, x: np.ndarray) -> list[int]:
    """zlib CRC-32 of every layer's reference output as the board holds it: int32, little-endian."""
    return [zlib.crc32(np.asarray(out, "<i4").tobytes()) for out in reference.forward(model, x)]


def run_alq_on_board(model: AlqModel, x: np.ndarray, work_dir: Path, variant: str = "dsp") -> BenchReport:
    """Generate, build and run the bench firmware on input ``x`` (int8 [H, W, C]); raise BenchError unless every
    layer's output CRC equals the reference's."""
    work_dir = Path(work_dir)
    x = np.asarray(x).reshape(model.input_shape)
    gen_dir = work_dir / "gen"
    write_c(model, gen_dir, prefix="alq", target="cortex-m4", staged_input=x)  # always fresh
    elf = build_firmware(gen_dir, BOARD, "bench", work_dir / variant, extra_cflags=(STAGED_INPUT, *VARIANTS[variant]))
    report = measure(elf)
    board = [layer.crc32 for layer in report.layers]
    want = reference_crcs(model, x)
    if len(board) != len(want):
        raise BenchError(f"ALQ model on {BOARD} ({variant}): {len(board)} layers traced, the model has {len(want)}")
    for i, (got, ref) in enumerate(zip(board, want)):
        if got != ref:
            raise BenchError(f"ALQ model on {BOARD} ({variant}): layer {i} output CRC-32 {got:08x}, "
                             f"reference {ref:08x}")
    return report


def measure_alq_model(model: AlqModel, x: np.ndarray, work_dir: Path, variant: str = "dsp") -> list[int]:
    """Instructions of each layer of one bit-exact inference of ``x`` on the emulated Cortex-M4."""
    return [round(layer.instructions) for layer in run_alq_on_board(model, x, work_dir, variant).layers]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="ALQ model file (.npz, codegen/alq/FORMAT.md)")
    parser.add_argument("--out", type=Path, default=Path("build") / "bench_alq_mcu.json")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random int8 input")
    args = parser.parse_args(argv)
    try:
        model = alq_format.read(args.model)
        x = np.random.default_rng(args.seed).integers(-128, 128, size=model.input_shape, dtype=np.int8)
        work = args.out.parent / "bench_alq_mcu"
        counts = {v: measure_alq_model(model, x, work, v) for v in VARIANTS}
    except TinysynError as err:
        print(f"tinysyn: error: {err}", file=sys.stderr)
        return err.exit_code
    layers = [{"index": i, "kind": layer.kind, **{f"instructions_{v}": c[i] for v, c in counts.items()}}
              for i, layer in enumerate(model.layers)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model.name, "board": BOARD, "layers": layers}, indent=2) + "\n")
    for row in layers:
        counts = "  ".join(f"{v} {row[f'instructions_{v}']:>10,}" for v in VARIANTS)
        print(f"{row['index']:3d} {row['kind']:10s} {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
