"""``make bench-dress-train``: DRESS sub-nets against pruning and fine-tuning, on digits.

For each seed (the seed draws the initial weights and the sample order), one
dense pre-training of ``builtin:digits-cnn`` feeds both methods:

- DRESS (codegen/dress/train.py): one backbone, K sub-nets trained in parallel,
  then each sub-net's biases, then int8 export to one DRESS model;
- the baseline: for every sparsity a separate network, pruned once with the same
  rows and allocation rule, fine-tuned for as many steps as DRESS training, then
  its biases the same way, then int8 export.

Accuracy is the int8 model's (the NumPy reference) on the 359 held-out digits;
each seed is noisy (0.28 points per digit), so seeds run in a process pool and
the table gives the mean and range. Results: JSON and a Markdown table, written
atomically.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from codegen.dress import train as dress_train
from codegen.dress.sampling import parse_sparsities
from codegen.errors import TinysynError
from codegen.files import write_atomically
from codegen.frontends.tflite_writer import write as write_tflite
from host.bench_train import pool_map, seed_list

MODEL = "builtin:digits-cnn"
DATASET = "digits"
SPARSITIES = (0.5, 0.75, 0.9)
DEFAULT_SEEDS = (1, 2, 3, 4, 5)
JOBS = 2


def run_seed(job: tuple) -> dict:
    seed, sparsities, row, budget = job
    start = time.monotonic()
    trainer = dress_train.trainer_for(MODEL, DATASET, row, seed)
    dense, _ = dress_train.pretrain(trainer, budget)
    trained = dress_train.dress(trainer, dense, sparsities, budget)
    model, graph = dress_train.to_int8(trainer, trained, sparsities, row, write_tflite)
    result = {"seed": seed, "dense_float_accuracy": trainer.accuracy(dense, trainer.data.x_test, trainer.data.y_test),
              "dress": dress_train.report(trainer, trained, model, graph), "baseline": []}
    for s in sparsities:
        pruned = dress_train.prune_and_fine_tune(trainer, dense, s, budget)
        single, single_graph = dress_train.to_int8(trainer, pruned, [s], row, write_tflite)
        result["baseline"] += dress_train.report(trainer, pruned, single, single_graph)
    result["seconds"] = round(time.monotonic() - start, 1)
    return result


def summarize(runs: list[dict], sparsities) -> list[dict]:
    rows = []
    for k, s in enumerate(sparsities):
        dress = np.array([r["dress"][k]["int8_accuracy"] for r in runs])
        base = np.array([r["baseline"][k]["int8_accuracy"] for r in runs])
        rows.append({"sparsity": s, "real_sparsity": float(np.mean([r["dress"][k]["real_sparsity"] for r in runs])),
                     "nnz_per_row": runs[0]["dress"][k]["nnz_per_row"],
                     "dress_mean": float(dress.mean()), "dress_min": float(dress.min()), "dress_max": float(dress.max()),
                     "baseline_mean": float(base.mean()), "baseline_min": float(base.min()),
                     "baseline_max": float(base.max()), "dress_at_least_baseline": bool(dress.mean() >= base.mean())})
    return rows


def markdown(rows: list[dict], runs: list[dict]) -> str:
    dense = np.mean([r["dense_float_accuracy"] for r in runs])
    lines = [f"digits, int8 test accuracy, mean (range) over {len(runs)} seeds; dense fp32 backbone {100 * dense:.1f}%",
             "", "| sparsity | real | nnz per row (conv0, dw1, pw2, fc5) | DRESS sub-net | prune + fine-tune | DRESS - baseline |",
             "|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['sparsity']:g} | {r['real_sparsity']:.3f} | {', '.join(map(str, r['nnz_per_row']))} "
                     f"| {100 * r['dress_mean']:.1f}% ({100 * r['dress_min']:.1f}–{100 * r['dress_max']:.1f}) "
                     f"| {100 * r['baseline_mean']:.1f}% ({100 * r['baseline_min']:.1f}–{100 * r['baseline_max']:.1f}) "
                     f"| {100 * (r['dress_mean'] - r['baseline_mean']):+.1f} pp |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = dress_train.Budget()
    parser.add_argument("--seeds", type=seed_list, default=list(DEFAULT_SEEDS))
    parser.add_argument("--sparsity", default=",".join(f"{s:g}" for s in SPARSITIES))
    parser.add_argument("--row", default="filter")
    parser.add_argument("--pretrain-steps", type=int, default=defaults.pretrain)
    parser.add_argument("--steps", type=int, default=defaults.sparse, help="DRESS training = fine-tuning steps")
    parser.add_argument("--bias-steps", type=int, default=defaults.bias)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--gamma", type=float, default=defaults.gamma)
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    try:
        sparsities = parse_sparsities(args.sparsity)  # bad requests fail before any process starts
        budget = dress_train.Budget(args.pretrain_steps, args.steps, args.bias_steps, args.lr, defaults.bias_lr,
                                    args.gamma)
        dress_train.loss_weights(sparsities, args.gamma)
        runs = pool_map(run_seed, [(seed, sparsities, args.row, budget) for seed in args.seeds], args.jobs,
                        lambda r: print(f"seed {r['seed']}: {r['seconds']} s", file=sys.stderr, flush=True))
    except TinysynError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    runs.sort(key=lambda r: r["seed"])
    rows = summarize(runs, sparsities)
    table = markdown(rows, runs)
    print(table, end="")
    if args.json:
        write_atomically(args.json, json.dumps({"model": MODEL, "dataset": DATASET, "budget": asdict(budget),
                                                "row": args.row, "summary": rows, "runs": runs}, indent=1).encode())
    if args.markdown:
        write_atomically(args.markdown, table.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
