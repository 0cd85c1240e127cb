"""``make bench-hw``: the accelerator's default configuration synthesized, placed and routed on every device.

One run per device (hw/devices.py), one after another: the tools are single
threaded and the machines are shared. Results: JSON and a Markdown table, written
atomically; a device whose flow fails gets a row with its error, and exit code 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codegen.errors import TinysynError
from codegen.files import write_atomically
from hw.devices import DEVICES
from hw.synth import synth


def markdown(results: list[dict]) -> str:
    header = "| device | lanes x width | binary MACs/cycle | LCs/LUTs | FFs | RAM | DSPs | fmax MHz | target | fits |"
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['device']} | error: {r['error']} |||||||||")
            continue
        lines.append(f"| {r['device']} ({r['part']}) | {r['lanes']} x {r['width']} | {r['binary_macs_per_cycle']} "
                     f"| {r['luts']} / {r['luts_available']} | {r['ffs']} | {r['ram_blocks']} | {r['dsps']} "
                     f"| {r['fmax_mhz']} | {r['target_mhz']:g} | {'yes' if r['fits'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--work", type=Path, default=Path("build/hw"), help="a work directory per device inside")
    args = parser.parse_args(argv)
    results = []
    for name in DEVICES:
        try:
            results.append(synth(name, work=args.work / name,
                                 progress=lambda phase, name=name: print(f"{name}: {phase}...", file=sys.stderr,
                                                                         flush=True)))
        except TinysynError as err:
            results.append({"device": name, "error": str(err)})
    table = markdown(results)
    print(table, end="")
    if args.json:
        write_atomically(args.json, (json.dumps({"results": results}, indent=1) + "\n").encode())
    if args.markdown:
        write_atomically(args.markdown, table.encode())
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
