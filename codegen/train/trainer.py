"""The training loop: sample order, steps, evaluation and divergence detection.

Samples are visited in epochs, each a permutation of the training split drawn
from numpy's PCG64 with the run's seed, so every backend sees the same stream.
A step that overflows, or a loss that stays far above chance, stops the run
with a one-line reason; the parameters from before the failing step are kept.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import TinysynError
from .data import Dataset
from .intmath import LOSS_FRAC, TrainingOverflow
from .model import TrainModel

DIVERGE_WINDOW = 50  # steps in the running loss
DIVERGE_FACTOR = 4.0  # running loss above 4 x ln(classes) (chance is 1 x) means divergence


class TrainingDiverged(TrainingOverflow):
    """The loss ran away: reported in one line, last good weights kept."""


def sample_order(n: int, steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    epochs = -(-steps // n)
    return np.concatenate([rng.permutation(n) for _ in range(epochs)])[:steps]


def loss_value(model: TrainModel, loss) -> float:
    return loss / float(1 << LOSS_FRAC) if model.mode == "int8" else float(loss)


def accuracy(model: TrainModel, data: Dataset) -> float:
    hits = sum(model.predict(model.input(x, data.exp)) == int(y) for x, y in zip(data.x_test, data.y_test))
    return hits / len(data.y_test)


@dataclass
class TrainResult:
    losses: list = field(default_factory=list)  # raw per-step losses (Q16 ints in int8)
    steps_done: int = 0
    diverged: str | None = None
    checkpoints: list = field(default_factory=list)  # (step, test accuracy)


def check_loss(model: TrainModel, losses: list) -> None:
    if not losses:
        return
    last = loss_value(model, losses[-1])
    if not math.isfinite(last):
        raise TrainingDiverged(f"step {len(losses) - 1}: the loss is {last}; the run diverged")
    if len(losses) >= DIVERGE_WINDOW:
        mean = sum(loss_value(model, v) for v in losses[-DIVERGE_WINDOW:]) / DIVERGE_WINDOW
        limit = DIVERGE_FACTOR * math.log(model.graph.classes)
        if mean > limit:
            raise TrainingDiverged(
                f"step {len(losses) - 1}: mean loss of the last {DIVERGE_WINDOW} steps is {mean:.2f}, "
                f"above {limit:.2f} ({DIVERGE_FACTOR:g} x chance); the run diverged (learning rate too large?)")


def train(model: TrainModel, data: Dataset, steps: int, seed: int, eval_every: int = 0,
          step_fn=None, progress=None) -> TrainResult:
    """Run ``steps`` SGD steps; ``step_fn(x, label)`` replaces the NumPy step (a C backend)."""
    step_fn = step_fn or (lambda x, label: model.step(x, label))
    order = sample_order(len(data.y_train), steps, seed)
    result = TrainResult()
    good = model.snapshot()
    for t, i in enumerate(order):
        try:
            loss = step_fn(model.input(data.x_train[i], data.exp), int(data.y_train[i]))
            result.losses.append(loss)
            check_loss(model, result.losses)
        except TinysynError as err:
            if not isinstance(err, TrainingOverflow):
                raise
            model.restore(good)
            result.diverged = f"step {t}: {err}" if not str(err).startswith("step ") else str(err)
            break
        good = model.snapshot()
        result.steps_done = t + 1
        if eval_every and (t + 1) % eval_every == 0 and t + 1 < steps:
            result.checkpoints.append((t + 1, accuracy(model, data)))
        if progress is not None:
            progress(t, loss_value(model, loss))
    return result
