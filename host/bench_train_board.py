"""``make bench-train-board``: the cost of one training step on the emulated board.

Trains on digits on QEMU ``mps2-an386`` (the training app, flashed over serial,
every step checked against the NumPy reference) in int8 and fp32, updating all
layers and only the last ones: ``builtin:digits-cnn`` from scratch, and the
MLPerf Tiny KWS model (fine-tuning, its input 49x10 instead of 8x8: a model
whose tensors, not its int32 scratch, dominate memory). Per step it reports
instructions (QEMU ``-icount``, the median over the steps), the planned arena,
the parameters and LAC sums outside it, and the stack high-water measured on the
board. Ratios are taken within this run: int8 over fp32 for the same model and
update, last-N over all for the same model and arithmetic.

    .venv/bin/python -m host.bench_train_board --steps 30 --json build/bench_train_board.json
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from codegen.errors import TinysynError
from codegen.files import write_atomically
from host.training import run

REPO = Path(__file__).resolve().parents[1]
BOARD = "qemu-mps2-an386"
KWS = REPO.parent / "shared" / "models" / "kws_ref_model.tflite"
#: (mode, step memory): the int8 step planned small (the default) and fast, and the fp32 baseline
MODES = (("int8", "small"), ("int8", "fast"), ("fp32", "small"))
#: (model, its name in the table, updates, steps as a fraction of --steps: a KWS step is ~100x dearer)
MODELS = (
    ("builtin:digits-cnn", "digits-cnn", ("all", "last:2", "last:1"), 1.0),
    (str(KWS), "KWS", ("all", "last:2"), 0.1),
)
DEFAULT_STEPS = 30  # the step's cost barely varies: its median over 30 is stable to a few instructions


def measure(model: str, name: str, mode: str, memory: str, update: str, steps: int, work: Path) -> dict:
    report, _ = run(model, mode=mode, update=update, backend=BOARD, steps=steps, step_memory=memory,
                    work=work / f"{name}-{mode}-{memory}-{update}")
    board = report["board"]
    return {
        "model": name,
        "mode": mode,
        "step_memory": memory if mode == "int8" else None,
        "update": update,
        "updated_layers": report["updated_layers"],
        "steps": report["steps_done"],
        "bit_exact": report["bit_exact"],
        "instructions_per_step": report["instructions_per_step"],
        "arena_bytes": board["arena_bytes"],
        "model_static_bytes": board["model_static_bytes"],
        "stack_high_water_bytes": board["stack_high_water_bytes"],
        "arena_plus_stack_bytes": board["arena_bytes"] + board["stack_high_water_bytes"],
        "peak_ram_bytes": report["peak_ram_bytes"],
        "flash_bytes": board["flash_bytes"],
    }


def add_ratios(rows: list[dict]) -> None:
    """int8 / fp32 for the same update, and update / all for the same mode, on every row."""
    by = {(r["model"], r["mode"], r["step_memory"], r["update"]): r for r in rows}
    for r in rows:
        fp32 = by.get((r["model"], "fp32", None, r["update"]))
        full = by.get((r["model"], r["mode"], r["step_memory"], "all"))
        for key in ("instructions_per_step", "arena_plus_stack_bytes", "peak_ram_bytes"):
            r[f"{key}_vs_fp32"] = round(r[key] / fp32[key], 3) if fp32 else None
            r[f"{key}_vs_all"] = round(r[key] / full[key], 3) if full else None


def markdown(rows: list[dict]) -> str:
    lines = [("| model | mode | update | instructions / step | vs fp32 | vs all | arena + stack (B) | vs fp32 | "
              "peak RAM incl. parameters (B) | vs fp32 | vs all |"),
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def ratio(v):
        return "-" if v is None else f"{v:.2f}"

    for r in rows:
        mode = r["mode"] if r["step_memory"] is None else f"{r['mode']} {r['step_memory']}"
        lines.append(f"| {r['model']} | {mode} | {r['update']} | {r['instructions_per_step']:,} | "
                     f"{ratio(r['instructions_per_step_vs_fp32'])} | {ratio(r['instructions_per_step_vs_all'])} | "
                     f"{r['arena_plus_stack_bytes']:,} | {ratio(r['arena_plus_stack_bytes_vs_fp32'])} | "
                     f"{r['peak_ram_bytes']:,} | {ratio(r['peak_ram_bytes_vs_fp32'])} | "
                     f"{ratio(r['peak_ram_bytes_vs_all'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"steps per configuration ({DEFAULT_STEPS})")
    parser.add_argument("--json", type=Path, default=REPO / "build" / "bench_train_board.json")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    start = time.monotonic()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="tinysyn-bench-train-") as work:
            for model, name, updates, share in MODELS:
                for mode, memory in MODES:
                    for update in updates:
                        steps = max(2, round(args.steps * share))
                        rows.append(measure(model, name, mode, memory, update, steps, Path(work)))
                        r = rows[-1]
                        print(f"bench-train-board: {name} {mode} {r['step_memory'] or ''} {update}: "
                              f"{r['instructions_per_step']:,} "
                              f"instructions/step, peak RAM {r['peak_ram_bytes']:,} B, bit-exact {r['bit_exact']}",
                              flush=True)
    except TinysynError as err:
        print(f"tinysyn: error: {err}", file=sys.stderr)
        return err.exit_code
    add_ratios(rows)
    wall = round(time.monotonic() - start, 1)
    report = {"board": BOARD, "steps": args.steps, "wall_seconds": wall, "configurations": rows}
    write_atomically(args.json, (json.dumps(report, indent=2) + "\n").encode())
    print(markdown(rows))
    print(f"bench-train-board: {wall} s wall-clock; wrote {args.json}")
    return 0 if all(r["bit_exact"] for r in rows) else 8


if __name__ == "__main__":
    raise SystemExit(main())
