"""The training loop: sample order, learning-rate schedule, steps, evaluation and divergence detection.

Samples are visited in epochs, each a permutation of the training split drawn
from numpy's PCG64 with the run's seed, so every backend sees the same stream.
The learning rate follows a step decay in Q16 integers (TRAINING.md), handed
to every backend before the step that first uses it.
A step that overflows, or a loss that stays far above chance, stops the run
with a one-line reason; the parameters from before the failing step are kept.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, TinysynError, TrainingError
from .data import Dataset
from .intmath import LOSS_FRAC, TrainingOverflow
from .model import TrainModel

DIVERGE_WINDOW = 50  # steps in the running loss
DIVERGE_FACTOR = 4.0  # running loss above 4 x ln(classes) (chance is 1 x) means divergence


class TrainingDiverged(TrainingOverflow):
    """The loss ran away: reported in one line, last good weights kept."""


SCHEDULES = ("step", "constant")
LR_DECAY_SHIFT = 2  # each decay divides the rate by 4


def scheduled_lr(lr_q: int, t: int, steps: int, schedule: str = "step") -> int:
    """The Q16 learning rate of step t of ``steps``: full, /4 from half-way, /16 from three quarters."""
    if schedule == "constant":
        return lr_q
    phase = (4 * t >= 2 * steps) + (4 * t >= 3 * steps)
    return max(lr_q >> (LR_DECAY_SHIFT * phase), 1)


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
          backend=None, progress=None, schedule: str = "step") -> TrainResult:
    """Run ``steps`` SGD steps on ``backend`` (default: the NumPy model itself).

    A backend has ``step(q, exp, label) -> loss`` (an int8 sample with its
    exponent) and ``set_lr(lr_q)``; a C backend runs the reference beside
    itself and compares.
    """
    backend = backend or model
    if schedule not in SCHEDULES:
        raise InputError(f"unknown learning-rate schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    start_lr = model.base_lr_q
    lr_q = None
    order = sample_order(len(data.y_train), steps, seed)
    result = TrainResult()
    good = model.snapshot()
    for t, i in enumerate(order):
        rate = scheduled_lr(start_lr, t, steps, schedule)
        if rate != lr_q:  # only when it changes: a board takes a command for it
            lr_q = rate
            backend.set_lr(lr_q)
        try:
            loss = backend.step(data.x_train[i], data.exp, int(data.y_train[i]))
            result.losses.append(loss)
            check_loss(model, result.losses)
        except TinysynError as err:
            if not isinstance(err, TrainingError):  # a divergence, a broken sample stream: stop, keep weights
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
