"""DRESS training (thesis Algorithm 3.1) on the fp32 training path, and the prune-and-fine-tune baseline.

Three stages on codegen/train's fp32 model (plain SGD, one sample per step, the
step-decay schedule of TRAINING.md in each stage):

1. dense pre-training of the backbone;
2. DRESS training: every step, for every sub-net k, masks are sampled from the
   current backbone, row by row (Algorithm 3.2, the layer's current nnz per row),
   the loss of w * m_k is back-propagated, and the gradients, masked by m_k and
   weighted by pi_k ~ (1 - s_k)^gamma (normalised), are summed into one step of
   the backbone. After every epoch the sub-nets' mean accuracy on a validation
   split decides: better, keep these weights; not better, re-allocate the
   layer-wise sparsity by one global magnitude sort (3.3.2). The best weights win.
3. per sub-net, its masks fixed, its biases alone are fine-tuned: the network has
   no batch norm, and biases are what BN post-training moves (3.3.5).

The baseline gives each sparsity its own network: the same pre-trained weights,
pruned once with the same rows and allocation rule, fine-tuned with that mask
fixed for as many steps as DRESS training, then stage 3 the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import ir, ref
from ..errors import InputError, TrainingError
from ..train import builtin
from ..train import data as datasets
from ..train.arith import LR_FRAC, Fp32, Params, lr_q16
from ..train.data import Dataset
from ..train.graph import TrainGraph, build
from ..train.model import TrainModel
from ..train.quantize import bias_data, quantize, ranges
from ..train.trainer import sample_order, scheduled_lr
from .assemble import dress_model, set_requantization
from .format import DressModel
from .reference import subnet_graph
from .sampling import (
    RowShape,
    check_sparsities,
    filters,
    global_kept,
    importance_order,
    nnz_per_row,
    parse_row,
    sample,
    sampled_ops,
    unfilters,
)

VALIDATION = 200  # training samples held out to judge epochs (both DRESS and the baseline)
MAX_GAIN = 4.0  # a sub-net's per-channel gain stays in [1/4, 4]: a positive filter scale, a sane multiplier


@dataclass(frozen=True)
class Budget:
    """Steps and rates of the three stages; the baseline gets the same."""

    pretrain: int = 8000
    sparse: int = 8000  # DRESS training steps, and the baseline's fine-tuning steps
    bias: int = 400
    lr: float = 0.1
    bias_lr: float = 0.01
    gamma: float = 1.0


def loss_weights(sparsities, gamma: float) -> np.ndarray:
    """pi_k proportional to (1 - s_k)^gamma, summing to 1 (gamma > 0 favours the denser sub-nets)."""
    if not np.isfinite(gamma) or gamma < 0:
        raise InputError(f"gamma {gamma:g}: must be a finite number >= 0")
    w = (1.0 - np.asarray(sparsities, dtype=np.float64)) ** gamma
    return w / w.sum()


class RowMasks:
    """Row-based masks of the backbone's weighted layers (the IR ops DRESS samples), in the training layout."""

    def __init__(self, graph: ir.Graph, tg: TrainGraph, chunk: int):
        self.graph = graph
        self.ops = sampled_ops(graph)
        by_index = {layer.index: layer for layer in tg.layers}
        self.shapes = []
        for i in self.ops:
            table = filters(graph.ops[i], by_index[i].weights)
            self.shapes.append(RowShape.of(table.shape[0], table.shape[1], chunk))

    def magnitudes(self, params: dict[int, Params]) -> list[np.ndarray]:
        return [np.abs(filters(self.graph.ops[i], params[i].w).astype(np.float64)) for i in self.ops]

    def allocate(self, params: dict[int, Params], sparsities) -> np.ndarray:
        """nnz per row, [layers, K], from one global sort of the backbone's |w| (the thesis' real units)."""
        tables = self.magnitudes(params)
        return nnz_per_row([global_kept(tables, s) for s in sparsities], self.shapes)

    def masks(self, params: dict[int, Params], nnz: np.ndarray) -> dict[int, np.ndarray]:
        """{layer: 0/1 float32 mask} keeping the first nnz[layer] entries of every row by |w|."""
        out = {}
        for n, (i, table, shape) in enumerate(zip(self.ops, self.magnitudes(params), self.shapes)):
            order = importance_order(shape.to_rows(table, -1.0))[:, : int(nnz[n])]
            rows = np.zeros((shape.rows, shape.row_length), dtype=np.float32)
            np.put_along_axis(rows, order, 1.0, axis=1)
            out[i] = unfilters(self.graph.ops[i], shape.from_rows(rows), params[i].w.shape)
        return out


class _Recorder(Fp32):
    """fp32 arithmetic whose update records a layer's gradients instead of applying them."""

    def __init__(self, lr: float):
        super().__init__(lr)
        self.grads: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def update(self, layer, p, dw, dw_exp, db, db_exp, lac) -> None:
        self.grads[layer.index] = (np.asarray(dw, np.float32), np.asarray(db, np.float32))


def masked(params: dict[int, Params], masks: dict[int, np.ndarray], bias: dict[int, np.ndarray] | None = None):
    """The parameters of a sub-net: w * m (m may carry gains), and its own biases when it has them."""
    return {i: Params(p.w * masks[i] if i in masks else p.w, p.b if bias is None else bias[i])
            for i, p in params.items()}


@dataclass
class Stage:
    """One stage's record: per-step loss (pi-weighted over sub-nets) and per-epoch validation accuracy."""

    name: str
    losses: list = field(default_factory=list)
    validation: list = field(default_factory=list)  # (step, mean sub-net accuracy, re-allocated?)


class SubnetTrainer:
    """Steps a backbone (fp32 TrainModel params) through masked sub-nets; the arithmetic is codegen/train's."""

    def __init__(self, graph: ir.Graph, tg: TrainGraph, data: Dataset, chunk, seed: int, progress=None):
        self.graph, self.data, self.seed, self.progress = graph, data, seed, progress
        self.model = TrainModel(tg, "fp32", lr=1.0)
        self.recorder = _Recorder(1.0)
        self.model.ar = self.recorder
        self.rows = RowMasks(graph, tg, chunk)
        self.x, self.y = data.x_train[:-VALIDATION], data.y_train[:-VALIDATION]
        self.x_val, self.y_val = data.x_train[-VALIDATION:], data.y_train[-VALIDATION:]

    def gradients(self, params, x, label) -> tuple[float, dict]:
        """The loss of one sample and {layer: (dw, db)} at ``params`` (nothing is updated)."""
        self.model.params = params
        loss = self.model.step(x, self.data.exp, label)
        if not np.isfinite(loss):
            raise TrainingError(f"the loss is {loss}; the run diverged (learning rate too large?)")
        return loss, self.recorder.grads

    def accuracy(self, params, x, y) -> float:
        self.model.params = params
        return float(np.mean([self.model.predict(self.model.input(q, self.data.exp)) == int(t) for q, t in zip(x, y)]))

    def validation_accuracy(self, param_sets) -> float:
        """The mean accuracy of several sub-nets on the validation split."""
        return float(np.mean([self.accuracy(p, self.x_val, self.y_val) for p in param_sets]))

    def run(self, stage: Stage, steps: int, lr: float, step, end_of_epoch=None) -> None:
        """``steps`` calls of ``step(x, label, rate) -> loss`` on the sample order and the step-decay schedule;
        ``end_of_epoch() -> (accuracy, re-allocated)`` after every epoch and the last step."""
        lr_q = lr_q16(lr)
        epoch = len(self.y)
        for t, i in enumerate(sample_order(epoch, steps, self.seed)):
            loss = step(self.x[i], int(self.y[i]), np.float32(scheduled_lr(lr_q, t, steps) / (1 << LR_FRAC)))
            stage.losses.append(loss)
            if self.progress is not None:
                self.progress(stage.name, t, steps, loss)
            if end_of_epoch is not None and ((t + 1) % epoch == 0 or t + 1 == steps):
                stage.validation.append((t + 1, *end_of_epoch()))

    def sgd(self, params, subnets, weights):
        """A step of ``params`` (in place) by the pi-weighted, masked gradients of the sub-nets
        ``subnets(params) -> [masks, ...]`` (Algorithm 3.1, lines 6 to 13)."""
        def step(x, label, rate):
            step_w = {j: np.zeros_like(p.w) for j, p in params.items()}
            step_b = {j: np.zeros_like(p.b) for j, p in params.items()}
            total = 0.0
            for pi, masks in zip(weights, subnets(params)):
                loss, grads = self.gradients(masked(params, masks), x, label)
                total += pi * loss
                for j, (dw, db) in grads.items():
                    step_w[j] += np.float32(pi) * (dw * masks[j] if j in masks else dw)
                    step_b[j] += np.float32(pi) * db
            for j, p in params.items():
                p.w = (p.w - rate * step_w[j]).astype(np.float32)
                p.b = (p.b - rate * step_b[j]).astype(np.float32)
            return total
        return step


class Checkpoint:
    """Keeps the weights of the best epoch by validation accuracy; an epoch that is not better calls ``worse``."""

    def __init__(self, trainer: SubnetTrainer, params, subnets, worse=None):
        self.trainer, self.params, self.subnets, self.worse = trainer, params, subnets, worse
        self.best, self.kept = -1.0, None

    def __call__(self) -> tuple[float, bool]:
        acc = self.trainer.validation_accuracy([masked(self.params, m) for m in self.subnets(self.params)])
        if acc > self.best:
            self.best, self.kept = acc, {j: p.copy() for j, p in self.params.items()}
            return acc, False
        if self.worse is not None:
            self.worse(self.params)
        return acc, self.worse is not None

    def restore(self) -> None:
        if self.kept is not None:
            self.params.update(self.kept)


@dataclass
class Trained:
    """A trained backbone with K sub-nets: masks, per-sub-net gains and biases, and the record of each stage."""

    params: dict[int, Params]
    nnz: np.ndarray  # [layers, K]
    masks: list[dict[int, np.ndarray]]  # 0/1, the training layout
    gains: list[dict[int, np.ndarray]]  # [C] per sampled layer
    scaled: list[dict[int, np.ndarray]]  # mask * gain, the training layout
    biases: list[dict[int, np.ndarray]]
    stages: list[Stage]

    def subnet(self, k: int) -> dict[int, Params]:
        """Sub-net k's parameters as it computes: w * m_k * gain_k, its own biases."""
        return masked(self.params, self.scaled[k], self.biases[k])


def scaled_masks(rows: RowMasks, masks: dict[int, np.ndarray], gains: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Masks times per-channel gains [C], in each sampled layer's weight layout."""
    out = {}
    for i, shape in zip(rows.ops, rows.shapes):
        table = np.broadcast_to(gains[i][:, None], (shape.channels, shape.filter_length)).astype(np.float32)
        out[i] = masks[i] * unfilters(rows.graph.ops[i], table, masks[i].shape)
    return out


def affine(trainer: SubnetTrainer, params, masks, budget: Budget, name: str) -> tuple[dict, dict, Stage]:
    """Stage 3 for one sub-net: a gain and a bias per output channel (batch norm's affine pair; int8 export
    folds the gain into the sub-net's filter scale), weights and masks fixed. Returns (gains, biases, record)."""
    rows = trainer.rows
    gains = {i: np.ones(shape.channels, np.float32) for i, shape in zip(rows.ops, rows.shapes)}
    biases = {j: p.b.copy() for j, p in params.items()}

    def step(x, label, rate):
        loss, grads = trainer.gradients(masked(params, scaled_masks(rows, masks, gains), biases), x, label)
        for j, (dw, db) in grads.items():
            if j in gains:  # d loss / d gain_c: the channel's sum of dw * (w * m)
                moved = gains[j] - rate * filters(rows.graph.ops[j], dw * params[j].w * masks[j]).sum(axis=1)
                gains[j] = np.clip(moved, 1.0 / MAX_GAIN, MAX_GAIN).astype(np.float32)
            biases[j] = (biases[j] - rate * db).astype(np.float32)
        return loss

    stage = Stage(name)
    trainer.run(stage, budget.bias, budget.bias_lr, step)
    return gains, biases, stage


def pretrain(trainer: SubnetTrainer, budget: Budget) -> tuple[dict[int, Params], Stage]:
    params = {j: p.copy() for j, p in trainer.model.params.items()}
    stage = Stage("pre-training")
    trainer.run(stage, budget.pretrain, budget.lr, trainer.sgd(params, lambda p: [{}], [1.0]))
    return params, stage


def _finish(trainer, params, nnz, stages, budget: Budget) -> Trained:
    """Stage 3 for every sub-net of the final masks."""
    masks = [trainer.rows.masks(params, nnz[:, k]) for k in range(nnz.shape[1])]
    gains, biases = [], []
    for k, m in enumerate(masks):
        g, b, stage = affine(trainer, params, m, budget, f"gain and bias of sub-net {k}")
        gains.append(g)
        biases.append(b)
        stages.append(stage)
    scaled = [scaled_masks(trainer.rows, m, g) for m, g in zip(masks, gains)]
    return Trained(params, nnz, masks, gains, scaled, biases, stages)


def dress(trainer: SubnetTrainer, dense: dict[int, Params], sparsities, budget: Budget) -> Trained:
    """Stages 2 and 3 from the pre-trained ``dense`` backbone."""
    sparsities = check_sparsities(sparsities)
    params = {j: p.copy() for j, p in dense.items()}
    rows = trainer.rows
    state = {"nnz": rows.allocate(params, sparsities)}

    def subnets(p):
        return [rows.masks(p, state["nnz"][:, k]) for k in range(len(sparsities))]

    def reallocate(p):
        state["nnz"] = rows.allocate(p, sparsities)

    stage = Stage("DRESS training")
    best = Checkpoint(trainer, params, subnets, reallocate)
    trainer.run(stage, budget.sparse, budget.lr, trainer.sgd(params, subnets, loss_weights(sparsities, budget.gamma)),
                best)
    best.restore()
    return _finish(trainer, params, rows.allocate(params, sparsities), [stage], budget)


def prune_and_fine_tune(trainer: SubnetTrainer, dense: dict[int, Params], sparsity: float, budget: Budget) -> Trained:
    """The baseline for one sparsity: a separate network pruned once, fine-tuned with its mask fixed."""
    params = {j: p.copy() for j, p in dense.items()}
    nnz = trainer.rows.allocate(params, [sparsity])
    mask = trainer.rows.masks(params, nnz[:, 0])
    stage = Stage(f"fine-tuning at {sparsity:g}")
    best = Checkpoint(trainer, params, lambda p: [mask])
    trainer.run(stage, budget.sparse, budget.lr, trainer.sgd(params, lambda p: [mask], [1.0]), best)
    best.restore()
    return _finish(trainer, params, nnz, [stage], budget)


CALIBRATION = 300  # training samples whose activation ranges set the int8 model's


def to_int8(trainer: SubnetTrainer, trained: Trained, sparsities, row, write_tflite) -> tuple[DressModel, ir.Graph]:
    """The int8 DRESS model of a trained backbone: post-training quantization with activation ranges over all
    sub-nets (they share them), the tables sampled with the trained nnz, each sub-net's own int32 biases.
    ``write_tflite(graph) -> bytes`` serializes the dense int8 backbone the file embeds; it is returned too."""
    subnet_params = [trained.subnet(k) for k in range(len(trained.masks))]
    spans = ranges(trainer.model, subnet_params, trainer.x[:CALIBRATION], trainer.data.exp)
    graph = quantize(trainer.graph, trained.params, spans, trainer.data.exp)
    model = dress_model(graph, write_tflite(graph), sparsities, row, sample(graph, sparsities, row, nnz=trained.nnz))
    for layer in model.layers:
        op = graph.ops[layer.op_index]
        x, w = graph.op_inputs(op)[:2]
        scale = np.broadcast_to(w.quant.scale, (layer.shape.channels,))
        for k, (gains, biases) in enumerate(zip(trained.gains, trained.biases)):
            layer.scale[k] = (scale * gains[layer.op_index]).astype(np.float32)
            layer.bias[k] = bias_data(biases[layer.op_index], float(x.scale), layer.scale[k], graph.source)
    for k in range(model.subnets):
        set_requantization(model, graph, k)
    return model, graph


def trainer_for(model: str, dataset: str, row, seed: int, progress=None) -> SubnetTrainer:
    """A sub-net trainer of ``builtin:<name>`` (weights drawn from ``seed``) on ``dataset``."""
    if not builtin.is_builtin(model):
        raise InputError(f"{model}: DRESS training starts from a builtin model (e.g. builtin:digits-cnn); "
                         "a .tflite gets one-shot DRESS (leave out --dataset's training, see tinysyn dress --help)")
    graph = builtin.load_builtin(model, seed)
    tg = build(graph)
    return SubnetTrainer(graph, tg, datasets.load(dataset, tg.input_shape, tg.classes), parse_row(row), seed,
                         progress)


def int8_accuracy(model: DressModel, graph: ir.Graph, k: int, data: Dataset) -> float:
    """Top-1 accuracy of int8 sub-net k (the NumPy reference) on the test split."""
    out = ref.run(subnet_graph(model, k, graph), data.x_test)
    return float(np.mean(out.reshape(len(out), -1).argmax(axis=1) == data.y_test))


def float_accuracy(trainer: SubnetTrainer, trained: Trained, k: int) -> float:
    return trainer.accuracy(trained.subnet(k), trainer.data.x_test, trainer.data.y_test)


def report(trainer: SubnetTrainer, trained: Trained, model: DressModel, graph: ir.Graph) -> list[dict]:
    """Per sub-net: its sparsity, its real share of zero weights, nnz per row per layer, and its accuracy."""
    total = sum(layer.shape.channels * layer.shape.filter_length for layer in model.layers)
    rows = []
    for k, s in enumerate(model.sparsities):
        kept = sum(int(m.sum()) for m in trained.masks[k].values())
        rows.append({"subnet": k, "sparsity": s, "real_sparsity": 1.0 - kept / total,
                     "nnz_per_row": [int(layer.nnz[k]) for layer in model.layers],
                     "float_accuracy": float_accuracy(trainer, trained, k),
                     "int8_accuracy": int8_accuracy(model, graph, k, trainer.data)})
    return rows
