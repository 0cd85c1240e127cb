"""Profile reports: JSON, per-layer CSV and a PNG of per-layer latency and stack; for a DRESS
file profiled across its sub-nets, a PNG of accuracy and latency against sparsity.

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
    report = report["subnets"][0] if "subnets" in report else report
    return "cycles" if "total_cycles" in report else "instructions"


def write_json(report: dict, path: Path) -> None:
    write_atomically(path, (json.dumps(report, indent=2) + "\n").encode())


def write_csv(report: dict, path: Path) -> None:
    """One row per layer: index, op, MACs, stack bytes and instructions (or cycles); across sub-nets, one row
    per sub-net and layer, the sub-net first."""
    key = cost_key(report)
    subnets = report.get("subnets")
    rows = [{**layer, "subnet": s["subnet"]} for s in subnets for layer in s["layers"]] if subnets else report["layers"]
    text = io.StringIO()
    fields = [*(("subnet",) if subnets else ()), *CSV_FIELDS, key]
    writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, text.getvalue().encode())


def write_plot(report: dict, path: Path) -> None:
    """Two panels over the layers: latency (instructions or cycles), and memory (output tensor
    and stack high-water bytes)."""
    plt = _pyplot()
    key = cost_key(report)
    layers = report["layers"]
    labels = [f"{layer['index']} {layer['op']}" for layer in layers]
    positions = range(len(layers))
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(max(6.0, 0.45 * len(layers)), 6.5))
    top.bar(positions, [layer[key] for layer in layers], color="tab:blue")
    top.set_ylabel(key)
    which = f" sub-net {report['subnet']} (sparsity {report['sparsity']:g})" if "subnet" in report else ""
    top.set_title(f"{report['model']}{which} on {report['board']}\n{report[f'total_{key}']:,} {key} per inference, "
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
    _save(fig, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a build machine
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    _pyplot().close(fig)
    write_atomically(path, buffer.getvalue())


def write_subnet_plot(report: dict, path: Path) -> None:
    """A DRESS file across its sub-nets: accuracy (or agreement with the source model, as
    ``report["accuracy"]`` says) and instructions (or cycles) per inference against sparsity."""
    plt = _pyplot()
    key = cost_key(report)
    accuracy = report["accuracy"]
    sparsity = [100 * s["sparsity"] for s in report["subnets"]]
    fig, left = plt.subplots(figsize=(6.5, 4.2))
    label = ("top-1 accuracy, digits labels" if accuracy["metric"] == "top1_accuracy"
             else "top-1 agreement with the source model")
    left.plot(sparsity, [100 * a for a in accuracy["subnets"]], "o-", color="tab:blue", label=label)
    left.axhline(100 * accuracy["source"], color="tab:blue", linestyle=":", label="source dense model")
    left.set_xlabel("sub-net sparsity (%)")
    left.set_ylabel(f"{label} (%)", color="tab:blue")
    left.set_ylim(0, 105)
    right = left.twinx()
    right.plot(sparsity, [s[f"total_{key}"] for s in report["subnets"]], "s--", color="tab:red",
               label=f"{key} per inference (board)")
    right.set_ylabel(f"{key} per inference", color="tab:red")
    right.set_ylim(0, 1.15 * max(s[f"total_{key}"] for s in report["subnets"]))
    for s, x in zip(report["subnets"], sparsity):
        right.annotate(f"k={s['subnet']}", (x, s[f"total_{key}"]), textcoords="offset points", xytext=(4, 4),
                       fontsize=8)
    left.set_xlim(min(sparsity) - 5, max(sparsity) + 8)
    handles = [h for axis in (left, right) for h in axis.get_legend_handles_labels()[0]]
    left.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="lower left")
    left.set_title(f"{report['model']} on {report['board']}: DRESS sub-nets\n{accuracy['inputs']}, "
                   f"NumPy reference (bit-exact with the board)", fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def format_table(report: dict) -> str:
    """The per-layer trace as a text table for the terminal."""
    key = cost_key(report)
    lines = [f"{'layer':>5}  {'op':<20} {key:>14} {'MACs':>12} {'output B':>9} {'stack B':>8}"]
    for layer in report["layers"]:
        lines.append(f"{layer['index']:>5}  {layer['op']:<20} {layer[key]:>14,} {layer['macs']:>12,} "
                     f"{layer['output_bytes']:>9,} {layer['stack_bytes']:>8,}")
    lines.append(f"{'total':>5}  {'':<20} {report[f'total_{key}']:>14,}")
    return "\n".join(lines)


def format_subnet_table(report: dict) -> str:
    """Across sub-nets: each layer's instructions (or cycles) per sub-net, the totals and the accuracy."""
    key = cost_key(report)
    subnets = report["subnets"]
    head = "".join(" " + f"k={s['subnet']} s={s['sparsity']:g}".rjust(16) for s in subnets)
    lines = [f"{'layer':>5}  {'op':<20}{head}"]
    for index, layer in enumerate(subnets[0]["layers"]):
        lines.append(f"{index:>5}  {layer['op']:<20}" + "".join(f" {s['layers'][index][key]:>16,}" for s in subnets))
    lines.append(f"{'total':>5}  {key:<20}" + "".join(f" {s[f'total_{key}']:>16,}" for s in subnets))
    accuracy = report.get("accuracy")
    if accuracy:
        name = "accuracy" if accuracy["metric"] == "top1_accuracy" else "agreement"
        lines.append(f"{'':>5}  {name + ' %':<20}" + "".join(f" {100 * a:>16.1f}" for a in accuracy["subnets"]))
        lines.append(f"{name}: top-1 against {accuracy['against']} on the {accuracy['inputs']} (NumPy reference); "
                     f"source dense model {100 * accuracy['source']:.1f}%")
    return "\n".join(lines)
