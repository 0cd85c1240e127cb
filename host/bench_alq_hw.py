"""``make bench-alq-hw``: the accelerator's cycles against the Cortex-M4 kernel's instructions, per layer of
the ALQ digits model (issue 6).

One held-out digit runs through the model three ways, each compared with codegen/alq/reference.py:

- the Cortex-M4 kernel (codegen/alq/emit.py, DSP path) on QEMU mps2-an386 under ``-icount``: instructions
  per layer, every layer's output CRC-32 checked (host/bench_alq_mcu.py);
- the RTL of each device's default configuration (hw/devices.py) in the Amaranth simulator: core clock
  cycles per layer, from a unit set's first weight beat to its last result with the streams fed every
  cycle (hw/README.md), every output element == the reference (hw/driver.py).

The ratio is instructions / cycles. Both count the layer's arithmetic only where it runs: the M4 figure
includes quantizing and packing the layer's input, the accelerator's excludes them (the host packs the
streams), and an average pool runs on the host (0 cycles). JSON and a Markdown table, written atomically.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codegen.alq import format as alq_format
from codegen.alq import reference
from codegen.errors import TinysynError
from codegen.files import write_atomically
from codegen.train import data
from host.bench_alq_mcu import measure_alq_model
from hw.devices import DEVICES
from hw.driver import params_for, schedule, simulate_layer

SAMPLE = 0  # the first held-out digit


def layer_label(layer: alq_format.AlqLayer) -> str:
    h, w, c = layer.in_shape
    if layer.kind == "fc":
        return f"fc {h * w * c}->{layer.units}"
    kernel = "x".join(map(str, layer.kernel))
    stride = f" /{layer.stride[0]}" if layer.stride[0] > 1 else ""
    return f"{layer.kind} {kernel}{stride} {c}->{layer.out_shape[2]}"


def bench(model: alq_format.AlqModel, work: Path) -> dict:
    x = data.load("digits", model.input_shape, 10).x_test[SAMPLE].astype("int64")
    m4 = measure_alq_model(model, x, work / "m4")
    inputs = [x, *reference.forward(model, x)[:-1]]
    fracs = model.input_fracs()
    rows = [{"layer": i, "op": layer_label(layer), "m4_instructions": int(m4[i])} for i, layer in enumerate(model.layers)]
    configs = {}
    for name, dev in DEVICES.items():
        configs[name] = {"lanes": dev.lanes, "width": dev.width, "binary_macs_per_cycle": dev.lanes * dev.width}
        for i, layer in enumerate(model.layers):
            _, cycles = simulate_layer(layer, inputs[i], fracs[i], **dev.core_params())
            rows[i][f"{name}_cycles"] = cycles
            if layer.alq:  # the lane mapping the driver picked (hw/README.md, Driver)
                core = params_for(layer, **dev.core_params())
                codes = reference.layer_codes(layer, inputs[i], fracs[i])
                rows[i][f"{name}_mapping"] = schedule(layer, codes, core)[0].mapping
            rows[i][f"{name}_ratio"] = round(m4[i] / cycles, 1) if cycles else None
            print(f"{name}: layer {i} ({rows[i]['op']}): {cycles} cycles, {m4[i]} M4 instructions",
                  file=sys.stderr, flush=True)
    alq = [r for r, layer in zip(rows, model.layers) if layer.alq]
    totals = {"m4_instructions": sum(r["m4_instructions"] for r in alq)}
    for name in DEVICES:
        totals[f"{name}_cycles"] = sum(r[f"{name}_cycles"] for r in alq)
        totals[f"{name}_ratio"] = round(totals["m4_instructions"] / totals[f"{name}_cycles"], 1)
    return {"sample": SAMPLE, "configs": configs, "layers": rows, "alq_layers_total": totals}


def markdown(result: dict) -> str:
    names = list(result["configs"])
    head = " | ".join(f"{n} ({c['lanes']}x{c['width']}) cycles (lane mapping) | ratio" for n, c in result["configs"].items())
    lines = [f"| layer | M4 instructions | {head} |", "|---|---:|" + "---:|---:|" * len(names)]
    for r in result["layers"]:
        cells = " | ".join(f"{r[f'{n}_cycles']:,}" + (f" ({r[f'{n}_mapping']})" if f"{n}_mapping" in r else "")
                           + " | " + (f"{r[f'{n}_ratio']:,}x" if r[f"{n}_ratio"] else "host") for n in names)
        lines.append(f"| {r['layer']} {r['op']} | {r['m4_instructions']:,} | {cells} |")
    t = result["alq_layers_total"]
    cells = " | ".join(f"{t[f'{n}_cycles']:,} | {t[f'{n}_ratio']:,}x" for n in names)
    lines.append(f"| all ALQ layers | {t['m4_instructions']:,} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="an ALQ digits model (tinysyn alq builtin:digits-cnn ...)")
    parser.add_argument("--work", type=Path, default=Path("build/bench/alq_hw"))
    parser.add_argument("--out", "--json", dest="json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    try:
        result = {"model": str(args.model), **bench(alq_format.read(args.model), args.work)}
    except TinysynError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    table = markdown(result)
    print(table, end="")
    if args.json:
        write_atomically(args.json, json.dumps(result, indent=1).encode())
    if args.markdown:
        write_atomically(args.markdown, table.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
