"""``make bench-alq``: ALQ's adaptive bit-widths against a uniform bit-width (thesis Table 2.1), on digits.

For each seed (it draws the builtin's initial weights and the batches), one float
pre-training of ``builtin:digits-cnn`` feeds both methods at every average bit-width:

- ALQ (codegen/alq/train.py): sketching to I_max = 8 bases, rounds of pruning in the
  alpha domain and optimization, then a final optimization;
- the baseline: every group sketched straight to I bases, then the same number of steps
  of optimization (no pruning), the same rate schedule. It exists for whole I only.

Accuracy is the exported integer model's (codegen/alq/reference.py) on the 359 held-out
digits, with the float network's (quantized weights and activations) beside it. Results:
JSON and a Markdown table, written atomically.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from codegen.alq import train as alq_train
from codegen.errors import TinysynError
from codegen.files import write_atomically
from host.bench_train import seed_list

MODEL = "builtin:digits-cnn"
DATASET = "digits"
BITS = (1.0, 1.5, 2.0, 3.0)
DEFAULT_SEEDS = (0,)  # one seed keeps the bench near 3 minutes on a shared core; --seeds 0,1,2 for a mean


def run_seed(seed: int, bits, options: alq_train.Options) -> dict:
    start = time.monotonic()
    base = replace(options, seed=seed)
    dense = alq_train.pretrain(alq_train.load(MODEL, DATASET, base))
    rows = []
    for b in bits:
        row = {"avg_bits": b}
        for method, uniform in (("alq", False), ("uniform", True)):
            if uniform and b != int(b):
                continue
            o = replace(base, avg_bits=b, uniform=uniform)
            row[method] = alq_train.alq(MODEL, DATASET, o, lambda _: None, dense).summary()
        rows.append(row)
        print(f"seed {seed}, {b:g} bits: ALQ {100 * row['alq']['int_accuracy']:.1f}%"
              + (f", uniform {100 * row['uniform']['int_accuracy']:.1f}%" if "uniform" in row else ""),
              file=sys.stderr, flush=True)
    trainer = alq_train.load(MODEL, DATASET, base)
    return {"seed": seed, "dense_float_accuracy": trainer.accuracy(*dense), "rows": rows,
            "seconds": round(time.monotonic() - start, 1)}


def summarize(runs: list[dict], bits) -> list[dict]:
    out = []
    for k, b in enumerate(bits):
        row = {"avg_bits": b}
        for method in ("alq", "uniform"):
            if method not in runs[0]["rows"][k]:
                continue
            for key in ("int_accuracy", "float_accuracy", "agreement", "avg_bits"):
                row[f"{method}_{key}"] = float(np.mean([r["rows"][k][method][key] for r in runs]))
        out.append(row)
    return out


def markdown(rows: list[dict], runs: list[dict], act_bits: int) -> str:
    dense = np.mean([r["dense_float_accuracy"] for r in runs])
    lines = [(f"digits, integer-model test accuracy (float in brackets), mean over {len(runs)} seeds; "
              f"{act_bits}-bit activations; float backbone {100 * dense:.1f}%"), "",
             "| avg weight bits | ALQ | uniform | ALQ - uniform |", "|---:|---:|---:|---:|"]
    for r in rows:
        alq = f"{100 * r['alq_int_accuracy']:.1f}% ({100 * r['alq_float_accuracy']:.1f}%)"
        if "uniform_int_accuracy" in r:
            uni = f"{100 * r['uniform_int_accuracy']:.1f}% ({100 * r['uniform_float_accuracy']:.1f}%)"
            gap = f"{100 * (r['alq_int_accuracy'] - r['uniform_int_accuracy']):+.1f} pp"
        else:
            uni = gap = "n/a"
        lines.append(f"| {r['avg_bits']:g} (ALQ {r['alq_avg_bits']:.2f}) | {alq} | {uni} | {gap} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = alq_train.Options()
    parser.add_argument("--seeds", type=seed_list, default=list(DEFAULT_SEEDS))
    parser.add_argument("--bits", default=",".join(f"{b:g}" for b in BITS), help="average bit-widths, comma-separated")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--pretrain-steps", type=int, default=alq_train.PRETRAIN)
    parser.add_argument("--act-bits", type=int, default=defaults.act_bits)
    parser.add_argument("--out", "--json", dest="json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    try:
        bits = [float(b) for b in args.bits.split(",")]
        options = replace(defaults, steps=args.steps, pretrain=args.pretrain_steps, act_bits=args.act_bits)
        for b in bits:  # bad requests fail before any training
            replace(options, avg_bits=b).check()
        runs = [run_seed(seed, bits, options) for seed in args.seeds]
    except (TinysynError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    rows = summarize(runs, bits)
    table = markdown(rows, runs, args.act_bits)
    print(table, end="")
    if args.json:
        write_atomically(args.json, json.dumps({"model": MODEL, "dataset": DATASET, "options": asdict(options),
                                                "summary": rows, "runs": runs}, indent=1).encode())
    if args.markdown:
        write_atomically(args.markdown, table.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
