"""Profile reports: JSON, per-layer CSV and a PNG of per-layer latency and stack.

Every writer goes through a temporary file in the target directory and a rename,
so a failed run never leaves a half-written report behind.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from codegen.files import write_atomically

#: Per-layer CSV columns (the cost column is instructions or cycles, whichever the board measures).
CSV_FIELDS = ("index", "op", "macs", "output_bytes", "stack_bytes")


def cost_key(report: dict) -> str:
    """'instructions' on the emulator, 'cycles' on a board with a cycle counter."""
    return "cycles" if "total_cycles" in report else "instructions"


def write_json(report: dict, path: Path) -> None:
    write_atomically(path, (json.dumps(report, indent=2) + "\n").encode())


def write_csv(report: dict, path: Path) -> None:
    """One row per layer: index, op, MACs, stack bytes and instructions (or cycles)."""
    key = cost_key(report)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=[*CSV_FIELDS, key], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(report["layers"])
    write_atomically(path, text.getvalue().encode())


def write_plot(report: dict, path: Path) -> None:
    """Two panels over the layers: latency (instructions or cycles), and memory (output tensor
    and stack high-water bytes)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a build machine
    import matplotlib.pyplot as plt

    key = cost_key(report)
    layers = report["layers"]
    labels = [f"{layer['index']} {layer['op']}" for layer in layers]
    positions = range(len(layers))
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(max(6.0, 0.45 * len(layers)), 6.5))
    top.bar(positions, [layer[key] for layer in layers], color="tab:blue")
    top.set_ylabel(key)
    top.set_title(f"{report['model']} on {report['board']}\n{report[f'total_{key}']:,} {key} per inference, "
                  f"arena {report['arena_bytes']:,} B, stack high-water {report['stack_high_water_bytes']:,} B",
                  fontsize=10)
    width = 0.4
    bottom.bar([p - width / 2 for p in positions], [layer["output_bytes"] for layer in layers], width,
               color="tab:green", label="output tensor")
    bottom.bar([p + width / 2 for p in positions], [layer["stack_bytes"] for layer in layers], width,
               color="tab:orange", label="stack high-water")
    bottom.set_ylabel("bytes")
    bottom.legend(fontsize=8)
    bottom.set_xticks(list(positions), labels, rotation=60, ha="right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomically(path, buffer.getvalue())


def format_table(report: dict) -> str:
    """The per-layer trace as a text table for the terminal."""
    key = cost_key(report)
    lines = [f"{'layer':>5}  {'op':<20} {key:>14} {'MACs':>12} {'output B':>9} {'stack B':>8}"]
    for layer in report["layers"]:
        lines.append(f"{layer['index']:>5}  {layer['op']:<20} {layer[key]:>14,} {layer['macs']:>12,} "
                     f"{layer['output_bytes']:>9,} {layer['stack_bytes']:>8,}")
    lines.append(f"{'total':>5}  {'':<20} {report[f'total_{key}']:>14,}")
    return "\n".join(lines)
