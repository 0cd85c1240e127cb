"""A training run end to end: model and data in, per-step losses, accuracy and files out.

The NumPy reference runs every step; other backends (added per issue 4's
slices) run the same steps and are compared with it step by step.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np

from codegen.errors import InputError
from codegen.files import write_atomically
from codegen.train import builtin
from codegen.train import data as datasets
from codegen.train.finetune import head_lr, reset_head
from codegen.train.graph import build
from codegen.train.hostrun import HostTrainer, compare_params, step_difference
from codegen.train.intmath import TrainingOverflow
from codegen.train.model import TrainModel
from codegen.train.trainer import accuracy, loss_value, train

from .board_training import BoardTrainer
from .firmware_build import BOARDS

BACKENDS = ("numpy", "host-c", *BOARDS)
DEFAULT_LR = 0.1
HEADS = ("auto", "reset", "keep")  # auto: reset an imported model's head, keep a builtin's


def run(model: str, dataset: str = "digits", mode: str = "int8", lac: bool = True, prc: bool = True,
        update: str = "all", backend: str = "numpy", steps: int = 100, lr: float | None = None,
        schedule: str = "step", seed: int = 1, eval_every: int = 0, progress=None, port: str | None = None,
        work: Path | None = None, full_every: int = 0, head: str = "auto",
        step_memory: str = "small") -> tuple[dict, TrainModel]:
    """Train; returns the JSON report and the model holding the last good weights.

    backend: numpy (the reference alone), host-c (the generated step compiled
    here) or a board name (the training app on that board: the emulator, or
    the board at ``port``; built under ``work``). Other backends than numpy run
    beside the reference and are compared with it after every step
    (``full_every``: also read the board's whole state back every N steps).
    ``head="reset"`` replaces the model's classifier by a fresh one for the dataset's classes.
    ``lr=None``: DEFAULT_LR for a builtin, the feature-scaled :func:`head_lr` for an imported model.
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    graph = build(builtin.load_graph(model, seed), update)
    imported = not builtin.is_builtin(model)
    # a builtin's input scale is nominal; an imported model gets the data in the range it was trained on
    data = datasets.load(dataset, graph.input_shape, graph.classes, graph.input_range if imported else None)
    head = ("reset" if imported else "keep") if head == "auto" else head
    if head == "reset":
        reset_head(graph, datasets.LABELS[dataset])
    if lr is None:
        lr = head_lr(graph, data) if imported else DEFAULT_LR
    tm = TrainModel(graph, mode, lr=lr, lac=lac, prc=prc, seed=seed)
    start_accuracy = accuracy(tm, data)
    with contextlib.ExitStack() as stack:
        if backend == "host-c":
            check = _HostCheck(graph, mode, lr, lac, prc, seed, tm, step_memory)
        elif backend in BOARDS:
            scratch = work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tinysyn-train-")))
            check = stack.enter_context(BoardTrainer(tm, backend, seed, Path(scratch), port, full_every,
                                                     memory=step_memory))
        else:
            check = None
        start = time.monotonic()
        result = train(tm, data, steps, seed, eval_every, backend=check, progress=progress, schedule=schedule)
        seconds = time.monotonic() - start
        board = None
        if isinstance(check, BoardTrainer):
            board = check.report()
            if not result.diverged:  # evaluate what the board learned: its weights, read back
                tm.restore(check.read_back())
    report = {
        "model": model,
        "dataset": dataset,
        "mode": mode,
        "backend": backend,
        "update": update,
        "updated_layers": [layer.index for layer in graph.trainable],
        "head": head,
        "lac": lac if mode == "int8" else None,
        "prc": prc if mode == "int8" else None,
        "lr": lr,
        "lr_q16": tm.base_lr_q,
        "schedule": schedule,
        "step_memory": step_memory if backend != "numpy" else None,
        "seed": seed,
        "steps": steps,
        "steps_done": result.steps_done,
        "loss": [loss_value(tm, v) for v in result.losses[: result.steps_done]],
        "start_accuracy": start_accuracy,
        "test_accuracy": accuracy(tm, data),
        "accuracy_checkpoints": [{"step": s, "test_accuracy": a} for s, a in result.checkpoints],
        "bit_exact": None if check is None else check.mismatch is None,
        "first_mismatch": None if check is None else check.mismatch,
        # planned arena + parameters; on a board plus the stack high-water it measured
        "peak_ram_bytes": board["peak_ram_bytes"] if board else None if check is None else check.ram_bytes,
        "instructions_per_step": board["instructions_per_step"] if board else None,  # emulated board
        "board": board["board"] if board else None,
        "diverged": result.diverged,
        "train_seconds": round(seconds, 3),
        "train_samples": len(data.y_train),
        "test_samples": len(data.y_test),
    }
    if mode == "int8":
        report["loss_q16"] = [int(v) for v in result.losses[: result.steps_done]]
    return report, tm


def write_weights(tm: TrainModel, path: Path) -> None:
    """The trained parameters as .npz: real values, plus the raw integers in int8 mode."""
    arrays = {}
    for layer in tm.graph.layers:
        p = tm.params.get(layer.index)
        if p is None:
            continue
        key = f"layer{layer.index}"
        arrays[f"{key}_weights"] = tm.ar.real_weights(p)
        if tm.mode == "int8":
            arrays[f"{key}_q"] = p.w
            arrays[f"{key}_exp"] = np.array(p.w_exp)
            arrays[f"{key}_bias_q"] = p.b
            if p.mu is not None:
                arrays[f"{key}_lac_mu_q16"] = p.mu
                arrays[f"{key}_lac_offset_q"] = p.off
        else:
            arrays[f"{key}_bias"] = p.b
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomically(path, buffer.getvalue())


def write_plot(report: dict, path: Path, window: int = 50) -> None:
    """Loss per step with its running mean, and test accuracy at the checkpoints."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = np.array(report["loss"], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = np.arange(1, len(loss) + 1)
    ax.plot(steps, loss, color="tab:blue", alpha=0.25, linewidth=0.6, label="loss per step")
    if len(loss) >= window:
        mean = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], mean, color="tab:blue", label=f"running mean ({window})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    acc = [(c["step"], c["test_accuracy"]) for c in report["accuracy_checkpoints"]]
    acc.append((report["steps_done"], report["test_accuracy"]))
    right = ax.twinx()
    right.plot([s for s, _ in acc], [a for _, a in acc], "o-", color="tab:green", label="test accuracy")
    right.set_ylabel("test accuracy")
    right.set_ylim(0, 1)
    flags = "" if report["mode"] == "fp32" else f" lac={report['lac']} prc={report['prc']}"
    ax.set_title(f"{report['model']} on {report['dataset']}: {report['mode']}{flags}, {report['backend']}, "
                 f"update {report['update']}\ntest accuracy {report['test_accuracy']:.3f}", fontsize=10)
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomically(path, buffer.getvalue())


class _HostCheck:
    """A backend that runs the generated C beside the reference and compares them after every step."""

    def __init__(self, graph, mode, lr, lac, prc, seed, reference: TrainModel, memory: str = "small"):
        self.reference = reference
        self.work = tempfile.TemporaryDirectory(prefix="tinysyn-train-")
        self.c = HostTrainer(TrainModel(graph, mode, lr=lr, lac=lac, prc=prc, seed=seed), Path(self.work.name), seed,
                             memory=memory)
        self.ram_bytes = self.c.plan.arena_bytes + self.c.static_bytes
        self.mismatch: str | None = None
        self.steps = 0

    def set_lr(self, lr_q: int) -> None:
        self.reference.set_lr(lr_q)
        self.c.set_lr(lr_q)

    def step(self, q, exp, label):
        t = self.steps
        self.steps += 1
        try:
            loss = self.reference.step(q, exp, label)
        except TrainingOverflow:
            status, _, _ = self.c.step(q, exp, label)
            if status == 0 and self.mismatch is None:
                self.mismatch = f"step {t}: the reference diverged, the C did not"
            raise
        status, c_loss, layer = self.c.step(q, exp, label)
        if self.mismatch is None:
            self.mismatch = step_difference(f"step {t}", "C", status, layer, c_loss, loss) or compare_params(
                self.reference.params, self.c.params(), f"step {t}")
        return loss

