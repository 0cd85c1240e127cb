"""``make bench-train``: int8 training from scratch against fp32 on the same schedule.

Trains ``builtin:digits-cnn`` on scikit-learn's digits with the NumPy reference:
fp32, and the four int8 ablations of Octo's two tricks, LAC (loss-aware
compensation) and PRC (parameterized range clipping): both, no LAC, no PRC,
neither. Every variant runs the same steps, learning rate and training seeds
(the seed draws the initial weights, the sample order and, in int8, the
stochastic rounding), so the only difference is the arithmetic. One seed is
noisy (the test split is 359 samples, 0.28 points each), so each variant runs
several seeds and reports the mean and the range of test accuracy.

It then fine-tunes the two shared int8 models (KWS, ResNet-8) on digits:
their last 1, 2 and 3 weighted layers, int8 and fp32, with ``tinysyn
train``'s defaults for an imported model (a new head at zero for the 10
digits, the learning rate scaled to the head's feature energy), one seed.

Runs are independent and go to a process pool. Results: a JSON summary (no
per-step losses), a Markdown table and a PNG of the running-mean loss curves,
all written atomically.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

from codegen.errors import TinysynError
from codegen.files import write_atomically
from host.training import run

REPO = Path(__file__).resolve().parents[1]
MODEL = "builtin:digits-cnn"
DATASET = "digits"
#: (name, mode, lac, prc); fp32 first: it is the baseline of the delta column
VARIANTS = (
    ("fp32", "fp32", None, None),
    ("int8 LAC+PRC", "int8", True, True),
    ("int8 no LAC", "int8", False, True),
    ("int8 no PRC", "int8", True, False),
    ("int8 neither", "int8", False, False),
)
DEFAULT_STEPS = 8000  # 5.6 epochs of the 1438 training samples; about 4 minutes on 2 cores
#: tinysyn train's default: 0.1 with the step decay (1/4 at half, 1/16 at three quarters), which
#: settles batch-1 SGD; without decay fp32's accuracy moved by up to 25 points between checkpoints.
DEFAULT_LR = 0.1
DEFAULT_SEEDS = (1, 2, 3, 4, 5)
JOBS = 2
#: the final loss is the mean of this many last steps; the plot's running mean uses the same window
LOSS_WINDOW = 200
SHARED_MODELS = REPO / ".." / "shared" / "models"
FINETUNE_MODELS = (("KWS", "kws_ref_model.tflite"), ("ResNet-8", "pretrainedResnet_quant.tflite"))
FINETUNE_UPDATES = ("last:1", "last:2", "last:3")
FINETUNE_MODES = ("int8", "fp32")
FINETUNE_STEPS = 1000  # about 1.5 minutes on 2 cores for the 12 runs
FINETUNE_SEED = 1


def run_variant(job: tuple) -> dict:
    """One training run (a pool worker): its summary, and its loss curve for the plot only."""
    name, mode, lac, prc, steps, lr, seed = job
    report, _ = run(MODEL, DATASET, mode=mode, lac=bool(lac), prc=bool(prc), steps=steps, lr=lr, seed=seed)
    loss = report["loss"]
    tail = loss[-LOSS_WINDOW:]
    return {
        "variant": name,
        "mode": mode,
        "lac": report["lac"],
        "prc": report["prc"],
        "steps": steps,
        "steps_done": report["steps_done"],
        "lr": lr,
        "seed": seed,
        "test_accuracy": report["test_accuracy"],
        "final_loss": round(float(np.mean(tail)), 5) if tail else None,
        "diverged": report["diverged"],
        "train_seconds": report["train_seconds"],
        "_loss": loss,
    }


def run_finetune(job: tuple) -> dict:
    """One fine-tuning run (a pool worker): a shared model's last layers on digits, default head and lr."""
    label, file, update, mode, steps = job
    report, _ = run(str(SHARED_MODELS / file), DATASET, mode=mode, update=update, steps=steps, seed=FINETUNE_SEED)
    return {"variant": f"{label} {update} {mode}", "model": label, "update": update, "mode": mode, "steps": steps,
            "steps_done": report["steps_done"], "lr": report["lr"], "head": report["head"],
            "seed": FINETUNE_SEED, "start_accuracy": report["start_accuracy"],
            "test_accuracy": report["test_accuracy"], "diverged": report["diverged"],
            "train_seconds": report["train_seconds"]}


def pool_map(fn, work: list, jobs: int, progress=None) -> list[dict]:
    """fn over work in a pool of ``jobs`` processes (in this one for 1), results in finishing order."""
    results = []
    with contextlib.ExitStack() as stack:
        if jobs > 1:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(min(jobs, len(work))))
            outcomes = pool.imap_unordered(fn, work)
        else:
            outcomes = map(fn, work)
        for r in outcomes:
            results.append(r)
            if progress:
                progress(r)
    return results


def run_all(steps: int, lr: float, seeds: list[int], jobs: int = JOBS, progress=None) -> list[dict]:
    """Every variant on every seed, in a pool of ``jobs`` processes; results in variant, seed order."""
    # Slowest first (int8 is about 4x fp32), so the pool's two workers finish together.
    work = [(name, mode, lac, prc, steps, lr, seed) for name, mode, lac, prc in VARIANTS for seed in seeds]
    work.sort(key=lambda job: job[1] == "fp32")
    names = [name for name, *_ in VARIANTS]
    results = pool_map(run_variant, work, jobs, progress)
    return sorted(results, key=lambda r: (names.index(r["variant"]), seeds.index(r["seed"])))


def run_finetunes(steps: int, jobs: int = JOBS, progress=None) -> list[dict]:
    """Every shared model, update and mode; results in table order."""
    work = [(label, file, update, mode, steps) for label, file in FINETUNE_MODELS
            for update in FINETUNE_UPDATES for mode in FINETUNE_MODES]
    order = [job[0] + job[2] + job[3] for job in work]
    work.sort(key=lambda job: (job[3] == "fp32", job[0] != "ResNet-8"))  # slowest first
    results = pool_map(run_finetune, work, jobs, progress)
    return sorted(results, key=lambda r: order.index(r["model"] + r["update"] + r["mode"]))


def finetune_markdown(rows: list[dict]) -> str:
    lines = ["| model | update | mode | steps | lr | start accuracy | test accuracy |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        acc = f"{100 * r['test_accuracy']:.1f}%" + (f" (diverged at {r['steps_done']})" if r["diverged"] else "")
        lines.append(f"| {r['model']} | {r['update']} | {r['mode']} | {r['steps']} | {r['lr']:g} | "
                     f"{100 * r['start_accuracy']:.1f}% | {acc} |")
    return "\n".join(lines)


def summarize(runs: list[dict]) -> list[dict]:
    """Per variant across seeds: mean, min and max test accuracy, delta of the means vs fp32."""
    rows = []
    for name, mode, lac, prc in VARIANTS:
        mine = [r for r in runs if r["variant"] == name]
        acc = [r["test_accuracy"] for r in mine]
        losses = [r["final_loss"] for r in mine if r["final_loss"] is not None]
        rows.append({
            "variant": name, "mode": mode, "lac": lac, "prc": prc,
            "seeds": [r["seed"] for r in mine],
            "test_accuracy": acc,
            "accuracy_mean": round(float(np.mean(acc)), 5),
            "accuracy_min": round(min(acc), 5),
            "accuracy_max": round(max(acc), 5),
            "final_loss_mean": round(float(np.mean(losses)), 5) if losses else None,
            "diverged": sum(1 for r in mine if r["diverged"]),
        })
    base = rows[0]["accuracy_mean"]
    for row in rows:
        row["delta_vs_fp32_pp"] = round(100 * (row["accuracy_mean"] - base), 2)
    return rows


def markdown(rows: list[dict], window: int = LOSS_WINDOW) -> str:
    """The table for the README; ``window`` is the number of last steps in the loss column."""
    seeds = len(rows[0]["seeds"])
    head = "test accuracy" if seeds == 1 else f"test accuracy, mean (min-max) of {seeds} seeds"
    lines = [f"| variant | {head} | Δ vs fp32 (pp) | mean loss (last {window} steps) |",
             "|---|---:|---:|---:|"]
    for r in rows:
        acc = f"{100 * r['accuracy_mean']:.1f}%"
        if seeds > 1:
            acc += f" ({100 * r['accuracy_min']:.1f}-{100 * r['accuracy_max']:.1f})"
        if r["diverged"]:
            acc += f", {r['diverged']} diverged"
        delta = "-" if r["variant"] == "fp32" else f"{r['delta_vs_fp32_pp']:+.1f}"
        loss = "-" if r["final_loss_mean"] is None else f"{r['final_loss_mean']:.3f}"
        lines.append(f"| {r['variant']} | {acc} | {delta} | {loss} |")
    return "\n".join(lines)


def running_mean(loss: list[float], window: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, running mean of the last ``window`` losses); a run shorter than the window: the mean so far."""
    loss = np.asarray(loss, dtype=float)
    if len(loss) < window:
        return np.arange(1, len(loss) + 1), np.cumsum(loss) / np.arange(1, len(loss) + 1)
    return np.arange(window, len(loss) + 1), np.convolve(loss, np.ones(window) / window, mode="valid")


def write_plot(runs: list[dict], path: Path, window: int = LOSS_WINDOW) -> None:
    """Running-mean loss per variant: the mean over seeds, with the seeds' range shaded."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a build machine
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for (name, *_), color in zip(VARIANTS, ("black", "tab:blue", "tab:orange", "tab:green", "tab:red")):
        curves = [running_mean(r["_loss"], window) for r in runs if r["variant"] == name]
        curves = [(x, y) for x, y in curves if len(x)]
        if not curves:
            continue
        if len({len(x) for x, _ in curves}) > 1:  # a diverged seed stopped early: each seed on its own
            for i, (x, y) in enumerate(curves):
                ax.plot(x, y, color=color, linewidth=0.8, label=name if i == 0 else None)
            continue
        x = curves[0][0]
        stack = np.stack([y for _, y in curves])
        ax.plot(x, stack.mean(axis=0), color=color, linewidth=1.2, label=name)
        if len(curves) > 1:
            ax.fill_between(x, stack.min(axis=0), stack.max(axis=0), color=color, alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss, running mean of {window} steps")
    seeds = sorted({r["seed"] for r in runs})
    r0 = runs[0]
    ax.set_title(f"{MODEL} on {DATASET}: {r0['steps']} steps, lr {r0['lr']:g}, seeds {seeds}\n"
                 "mean over seeds, range shaded", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomically(path, buffer.getvalue())


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds wants integers separated by commas, not {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds wants distinct integers, not {text!r}")
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"SGD steps per run ({DEFAULT_STEPS})")
    parser.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"learning rate ({DEFAULT_LR})")
    parser.add_argument("--seeds", type=seed_list, default=list(DEFAULT_SEEDS),
                        help="training seeds, comma-separated (1,2,3)")
    parser.add_argument("--jobs", type=int, default=JOBS, help=f"worker processes ({JOBS})")
    parser.add_argument("--finetune-steps", type=int, default=FINETUNE_STEPS,
                        help=f"steps per fine-tuning run of the shared models ({FINETUNE_STEPS}; 0 skips them)")
    parser.add_argument("--json", type=Path, default=REPO / "build" / "bench_train.json")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the running-mean loss curves")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.lr <= 0 or args.jobs < 1 or args.finetune_steps < 0:
        parser.error("--steps and --jobs must be at least 1, --finetune-steps at least 0 and --lr positive")

    total = len(VARIANTS) * len(args.seeds)
    print(f"bench-train: {MODEL} on {DATASET}, {len(VARIANTS)} variants x {len(args.seeds)} seeds, "
          f"{args.steps} steps, lr {args.lr:g}, {args.jobs} processes", flush=True)
    done = []

    def progress(r: dict) -> None:
        done.append(r)
        note = f" (diverged: {r['diverged']})" if r["diverged"] else ""
        print(f"bench-train: [{len(done)}/{total}] {r['variant']} seed {r['seed']}: test accuracy "
              f"{r['test_accuracy']:.4f}, {r['train_seconds']:.0f} s{note}", flush=True)

    start = time.monotonic()
    def progress_finetune(r: dict) -> None:
        print(f"bench-train: fine-tune {r['variant']}: test accuracy {r['start_accuracy']:.4f} -> "
              f"{r['test_accuracy']:.4f}, {r['train_seconds']:.0f} s", flush=True)

    try:
        runs = run_all(args.steps, args.lr, args.seeds, args.jobs, progress)
        finetunes = run_finetunes(args.finetune_steps, args.jobs, progress_finetune) if args.finetune_steps else []
    except TinysynError as err:
        print(f"tinysyn: error: {err}", file=sys.stderr)
        return err.exit_code
    wall = round(time.monotonic() - start, 1)
    rows = summarize(runs)
    report = {
        "model": MODEL, "dataset": DATASET, "backend": "numpy",
        "steps": args.steps, "lr": args.lr, "seeds": args.seeds, "loss_window": LOSS_WINDOW,
        "wall_seconds": wall, "jobs": args.jobs,
        "variants": rows,
        "finetune": finetunes,
        "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
    }
    write_atomically(args.json, (json.dumps(report, indent=2) + "\n").encode())
    if args.plot:
        write_plot(runs, args.plot)
    print(markdown(rows, min(LOSS_WINDOW, args.steps)))
    if finetunes:
        print(finetune_markdown(finetunes))
    print(f"bench-train: {wall} s wall-clock; wrote {args.json}" + (f" and {args.plot}" if args.plot else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
