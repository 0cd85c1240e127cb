"""The ALQ pipeline (thesis Algorithm 2.5) on a float model, and its uniform bit-width baseline.

1. pre-train the float network (AMSGrad, mini-batches);
2. sketch every weighted layer (Algorithm 2.1) to I_max bases per group, and fit each layer's
   activation levels to its inputs (uniform, then least squares while training);
3. R rounds, each pruning a fraction of the remaining weight bits (Algorithm 2.2, schedule
   Eq. 2.28) down to the target, then optimizing bases (2.4) and coordinates (2.3);
4. a final Optimization Step.

Activations are quantized from step 2 on. The baseline sketches every group straight to the
target I and spends the same number of steps on Optimization Steps alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import ir
from ..errors import InputError
from ..train import builtin
from ..train import data as datasets
from ..train.finetune import reset_head
from ..train.graph import WEIGHTED, TrainGraph, build
from . import export, reference
from .activations import ActQuant
from .amsgrad import AmsGrad
from .format import AlqModel
from .net import Net, cross_entropy
from .optimize import alpha_step, bases_step, project
from .prune import choose, increments, remove
from .sketch import I_MAX, SIGMA, sketch_layer
from .state import QLayer, average_bits
from .structure import groups_of

PRUNE_RATIO = 0.3  # Eq. 2.28: each round keeps 70% of the bits
LR_FLOOR = 0.1
PRUNE_WARMUP = 0.25  # of a Pruning Step's iterations
FINAL_SHARE = 0.5  # of the steps: the last Optimization Step (the thesis trains longest after the last cut)
INPUT_FRAC = -datasets.INPUT_EXP
PRETRAIN = 3000  # default float pre-training of a builtin (random start)
HEAD_PRETRAIN = 300  # of a .tflite whose head was reset: the fresh head must fit before it is sketched


@dataclass(frozen=True)
class Options:
    avg_bits: float = 2.0
    structure: str = "kernel"
    slices: int = 0
    act_bits: int = 4
    steps: int = 1200  # ALQ mini-batch steps after pre-training
    pretrain: int | None = None  # float pre-training steps; None: the model's default (pretrain_steps)
    batch: int = 32
    lr: float = 1e-2
    pretrain_lr: float = 3e-3
    i_max: int = I_MAX
    sigma: float = SIGMA
    seed: int = 0
    uniform: bool = False  # the baseline: every group avg_bits bases, no pruning

    def check(self) -> None:
        if not 0 < self.avg_bits <= self.i_max:
            raise InputError(f"--avg-bits {self.avg_bits:g}: must be in (0, I_max = {self.i_max}]")
        if self.uniform and self.avg_bits != int(self.avg_bits):
            raise InputError(f"a uniform bit-width is a whole number of bases, not {self.avg_bits:g}")
        if not 1 <= self.act_bits <= I_MAX:
            raise InputError(f"--act-bits {self.act_bits}: must be 1..{I_MAX}")
        if self.steps < 1:
            raise InputError(f"--steps {self.steps}: must be at least 1")
        if self.pretrain is not None and self.pretrain < 0:
            raise InputError(f"--pretrain-steps {self.pretrain}: must be at least 0")


@dataclass
class Trainer:
    """The float network, its data and the batches of one seeded run."""

    graph: ir.Graph
    tg: TrainGraph
    data: datasets.Dataset
    options: Options
    imported: bool = False  # a .tflite: its weights are trained already
    fresh_head: bool = False  # its head was reset for the dataset's classes
    rng: np.random.Generator = field(init=False)

    def __post_init__(self):
        self.net = Net(self.tg)
        self.rng = np.random.default_rng(self.options.seed)
        self.x_train = self.data.x_train.astype(np.float64) * 2.0**self.data.exp
        self.x_test = self.data.x_test.astype(np.float64) * 2.0**self.data.exp

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        pick = self.rng.integers(0, len(self.x_train), self.options.batch)
        return self.x_train[pick], self.data.y_train[pick]

    def gradients(self, weights, biases, acts) -> dict:
        x, y = self.batch()
        logits, cache = self.net.forward(x, weights, biases, acts, update_acts=acts is not None)
        _, grad = cross_entropy(logits, y)
        return self.net.backward(grad, cache, weights)

    def accuracy(self, weights, biases, acts=None) -> float:
        logits, _ = self.net.forward(self.x_test, weights, biases, acts)
        return float((logits.argmax(axis=1) == self.data.y_test).mean())


def load(model: str, dataset: str, options: Options) -> Trainer:
    """``model`` (a builtin, or a .tflite whose int8 weights become the float start) and the dataset fitted to it.
    A layer the ALQ format cannot hold, or a structure that does not fit, fails here, before any training."""
    imported = not builtin.is_builtin(model)
    graph = builtin.load_graph(model, options.seed)
    export.check(graph)
    tg = build(graph)
    fresh_head = imported and tg.classes != datasets.labels(dataset)
    if fresh_head:  # as tinysyn train does for a .tflite: a fresh head with the dataset's classes
        reset_head(tg, datasets.labels(dataset))
    for layer in tg.layers:
        if layer.kind in WEIGHTED:
            groups_of(layer, options.structure, options.slices)
    # an imported model was trained on inputs over its input quantization's range (codegen/train/data.py)
    data = datasets.load(dataset, tg.input_shape, tg.classes, tg.input_range if imported else None)
    return Trainer(graph, tg, data, options, imported, fresh_head)


def pretrain_steps(t: Trainer) -> int:
    """``options.pretrain``, else the model's default: a builtin starts from random weights (PRETRAIN);
    a .tflite is trained already (none), unless its head was reset (HEAD_PRETRAIN, to fit the new head)."""
    if t.options.pretrain is not None:
        return t.options.pretrain
    if not t.imported:
        return PRETRAIN
    return HEAD_PRETRAIN if t.fresh_head else 0


def pretrain(t: Trainer) -> tuple[dict, dict]:
    """Float weights and biases after :func:`pretrain_steps` AMSGrad steps from the model's own weights."""
    weights = {l.index: l.weights.astype(np.float64).copy() for l in t.tg.layers if l.index in t.net.weighted}
    biases = {l.index: l.bias.astype(np.float64).copy() for l in t.tg.layers if l.index in t.net.weighted}
    opts = {i: (AmsGrad(weights[i].shape), AmsGrad(biases[i].shape)) for i in weights}
    for _ in range(pretrain_steps(t)):
        for i, (dw, db) in t.gradients(weights, biases, None).items():
            opts[i][0].observe(dw)
            opts[i][1].observe(db)
            weights[i] += opts[i][0].step(t.options.pretrain_lr)
            biases[i] += opts[i][1].step(t.options.pretrain_lr)
    return weights, biases


def initial(t: Trainer, weights: dict, biases: dict, i_max: int) -> tuple[dict[int, QLayer], dict[int, ActQuant]]:
    """Sketched layers and activation levels fitted to the training inputs each layer sees."""
    by_index = {l.index: l for l in t.tg.layers}
    o = t.options
    layers = {i: sketch_layer(groups_of(by_index[i], o.structure, o.slices), weights[i], biases[i], i_max, o.sigma)
              for i in t.net.weighted}
    _, cache = t.net.forward(t.x_train, {i: q.weights() for i, q in layers.items()}, biases)
    inputs = {layer.index: c[0] for layer, c in zip(t.tg.layers, cache)}
    return layers, {i: ActQuant.fit(inputs[i], o.act_bits) for i in t.net.weighted}


class Quantized:
    """The multi-bit network being trained: layers, activation levels, bias moments."""

    def __init__(self, t: Trainer, layers: dict[int, QLayer], acts: dict[int, ActQuant]):
        self.t, self.layers, self.acts = t, layers, acts
        self.bias_opt = {i: AmsGrad(q.bias.shape) for i, q in layers.items()}
        self.step = 0

    @property
    def lr(self) -> float:
        """A cosine decay over the run's steps to LR_FLOOR of the rate: the same schedule for ALQ and baseline."""
        o = self.t.options
        return o.lr * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * min(self.step / o.steps, 1))))

    def params(self) -> tuple[dict, dict]:
        return {i: q.weights() for i, q in self.layers.items()}, {i: q.bias for i, q in self.layers.items()}

    def gradients(self) -> dict:
        weights, biases = self.params()
        self.step += 1
        return self.t.gradients(weights, biases, self.acts)

    def train_bias(self, grads: dict) -> None:
        for i, (_, db) in grads.items():
            self.bias_opt[i].observe(db)
            self.layers[i].bias = self.layers[i].bias + self.bias_opt[i].step(self.lr)

    def optimize(self, bases_steps: int, alpha_steps: int) -> None:
        """An Optimization Step: Algorithm 2.4 (bases, moments of dl/dw), then 2.3 (coordinates, moments
        of dl/dalpha), each with fresh moments."""
        self._phase(bases_steps, lambda q: q.group_shape, bases_step)
        self._phase(alpha_steps, lambda q: q.alpha.shape, alpha_step)

    def _phase(self, steps: int, shape, update) -> None:
        opts = {i: AmsGrad(shape(q)) for i, q in self.layers.items()}
        for _ in range(steps):
            grads = self.gradients()
            for i, (dw, _) in grads.items():
                update(self.layers[i], opts[i], dw, self.lr)
            self.train_bias(grads)

    def prune(self, target_bits: float, steps: int) -> None:
        """A Pruning Step (Algorithm 2.2): down to ``target_bits`` weight bits in even cuts over ``steps``,
        the first PRUNE_WARMUP of them only gathering the moments the criterion reads. After a cut, the
        layer's remaining bases and coordinates are projected back onto its weights before the cut."""
        order = list(self.layers)
        opts = {i: AmsGrad(q.group_shape) for i, q in self.layers.items()}
        start = self.bits()
        warmup = int(steps * PRUNE_WARMUP)
        for s in range(steps):
            grads = self.gradients()
            for i in order:
                opts[i].observe(self.layers[i].groups.to_groups(grads[i][0]))
            if s < warmup:
                continue
            models = {i: opts[i].model(self.lr) for i in order}
            scores = [increments(self.layers[i], *models[i]) for i in order]
            goal = start + (target_bits - start) * (s + 1 - warmup) / (steps - warmup)
            cuts = choose([self.layers[i] for i in order], scores, self.bits() - goal)
            for i, dead in zip(order, cuts):
                if dead.any():
                    q = self.layers[i]
                    before = q.grouped()
                    remove(q, dead)
                    project(q, before, models[i][1])

    def bits(self) -> float:
        return sum(q.bits() for q in self.layers.values())

    def average_bits(self) -> float:
        return average_bits(list(self.layers.values()))

    def accuracy(self) -> float:
        weights, biases = self.params()
        return self.t.accuracy(weights, biases, self.acts)


def rounds(start_bits: float, target_bits: float) -> list[float]:
    """The pruning schedule M^1..M^R (Eq. 2.28), its last entry the target."""
    r = max(1, math.ceil(math.log(target_bits / start_bits) / math.log(1 - PRUNE_RATIO))) if target_bits < start_bits else 0
    return [max(start_bits * (1 - PRUNE_RATIO) ** (k + 1), target_bits) for k in range(r)]


def run(t: Trainer, weights: dict, biases: dict, progress=print) -> Quantized:
    """ALQ (or the uniform baseline) from pre-trained float weights."""
    o = t.options
    i_max = int(o.avg_bits) if o.uniform else o.i_max
    net = Quantized(t, *initial(t, weights, biases, i_max))
    progress(f"sketched: {net.average_bits():.2f} bits, accuracy {net.accuracy():.3f} "
             f"(weights and {o.act_bits}-bit activations quantized)")
    total = sum(q.groups.units * q.groups.length for q in net.layers.values())
    schedule = [] if o.uniform else rounds(net.bits(), o.avg_bits * total)
    per_round = int(o.steps * (1 - FINAL_SHARE)) // len(schedule) if schedule else 0
    final = o.steps - per_round * len(schedule)  # the baseline spends every step here
    for r, goal in enumerate(schedule):
        net.prune(goal, max(per_round // 3, 1))
        progress(f"round {r + 1}/{len(schedule)}: pruned to {net.average_bits():.2f} bits, accuracy {net.accuracy():.3f}")
        opt_steps = per_round - per_round // 3
        net.optimize(opt_steps * 2 // 3, opt_steps - opt_steps * 2 // 3)
        progress(f"round {r + 1}/{len(schedule)}: optimized, accuracy {net.accuracy():.3f}")
    net.optimize(final * 2 // 3, final - final * 2 // 3)
    progress(f"final: {net.average_bits():.2f} bits, float accuracy {net.accuracy():.3f}")
    return net


@dataclass
class Result:
    model: AlqModel
    net: Quantized
    float_accuracy: float  # the float network with quantized weights and activations
    int_accuracy: float  # the exported integer model through the reference
    agreement: float  # the fraction of test samples where both predict the same class
    avg_bits: float
    act_bits: int

    def summary(self) -> dict:
        layers = {f"{i}": round(q.bits() / (q.groups.units * q.groups.length), 3) for i, q in self.net.layers.items()}
        return {"avg_bits": round(self.avg_bits, 4), "act_bits": self.act_bits, "layer_bits": layers,
                "float_accuracy": self.float_accuracy, "int_accuracy": self.int_accuracy,
                "agreement": self.agreement}


def finish(net: Quantized) -> Result:
    """Export ``net`` and measure the float and integer models on the test split."""
    t = net.t
    model = export.export(t.graph, t.tg, net.layers, net.acts, -t.data.exp)
    weights, biases = net.params()
    logits, _ = t.net.forward(t.x_test, weights, biases, net.acts)
    float_pred = logits.argmax(axis=1)
    int_pred = reference.predict(model, t.data.x_test)
    return Result(model, net, float((float_pred == t.data.y_test).mean()), float((int_pred == t.data.y_test).mean()),
                  float((float_pred == int_pred).mean()), net.average_bits(), t.options.act_bits)


def alq(model: str, dataset: str, options: Options, progress=print, dense: tuple[dict, dict] | None = None) -> Result:
    """The whole pipeline on ``model``; ``dense``: pre-trained float weights and biases to start from."""
    options.check()
    t = load(model, dataset, options)
    if dense is None:
        dense = pretrain(t)
        progress(f"pre-trained: float accuracy {t.accuracy(*dense):.3f} ({pretrain_steps(t)} steps)")
    return finish(run(t, *dense, progress=progress))


def digits_alq(avg_bits: float = 2.0, steps: int = 300, pretrain_steps: int = 600, seed: int = 0,
               progress=print, **options) -> Result:
    """The quick path: the digits CNN pre-trained, sketched, trained briefly and exported."""
    return alq("builtin:digits-cnn", "digits", Options(avg_bits=avg_bits, steps=steps, pretrain=pretrain_steps,
                                                       seed=seed, **options), progress)
