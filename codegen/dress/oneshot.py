"""One-shot DRESS of a pretrained int8 .tflite: sample the sub-nets, re-calibrate each, no training.

Every sub-net keeps the dense model's activation scales and zero points; it differs
only in its (masked) weights, its biases and its requantization multipliers.
Re-calibration stands in for the thesis' per-sub-net batch-norm fine-tuning (3.3.5),
layer by layer in execution order, each layer seeing the outputs of the sub-net's
already re-calibrated layers:

- ``bias``: a channel's mean pre-activation (sum + bias, over calibration samples
  and positions) is set back to the dense model's on the dense model's inputs;
- ``bias+gain``: also its standard deviation, by a gain g (clipped to
  [1/MAX_GAIN, MAX_GAIN]) folded into the channel's filter scale, so the
  multiplier TFLM derives from that scale carries it; the bias then restores the
  mean after the gain.

Calibration inputs are scikit-learn's digits fitted to the model input (as
codegen/train/data.py does for training), spread over the real range the model's
input quantization covers; the accuracy cost is measured on held-out digits as the
sub-net's top-1 agreement with the dense model (``python -m codegen.dress.oneshot``).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import ir, ref
from ..errors import InputError
from ..frontends import tflite
from ..ref import kernels
from ..ref.fixedpoint import INT32_MAX, INT32_MIN
from ..ref.params import layer_params
from ..train import data as datasets
from .assemble import dress_model, set_requantization
from .format import DressModel
from .reference import filter_quant, subnet_graph
from .sampling import ALLOCATIONS, sample

RECALIBRATIONS = ("none", "bias", "bias+gain")
MAX_GAIN = 2.0
SHARED_MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models"


def digits_split(graph: ir.Graph, split: str, count: int | None = None,
                 spread: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` (None: all) digits of the fixed ``split`` ("train" or "test") as the model's int8
    input, and their labels. ``spread``: pixels spread over the real range the input quantization covers (a
    pretrained model's features then vary); else as tinysyn trains on digits (real pixel / 16, in [0, 1])."""
    t = graph.tensor(graph.inputs[0])
    scale, zp = float(t.scale), t.zero_point
    real_range = ((-128 - zp) * scale, (127 - zp) * scale) if spread else None
    classes = graph.op_output(graph.ops[-1]).shape[-1]
    d = datasets.load("digits", tuple(t.shape[1:]), max(classes, datasets.LABELS["digits"]), real_range)
    x, y = (d.x_train, d.y_train) if split == "train" else (d.x_test, d.y_test)
    q = x[:count].astype(np.float64) * 2.0**d.exp / scale
    return np.clip(np.sign(q) * np.floor(np.abs(q) + 0.5) + zp, -128, 127).astype(np.int8), y[:count]


def digits_inputs(graph: ir.Graph, split: str, count: int) -> np.ndarray:
    """``count`` digits of the fixed ``split`` ("train" or "test") as the model's int8 input."""
    return digits_split(graph, split, count)[0]


def weighted_sums(graph: ir.Graph, op: ir.Op, x: np.ndarray) -> np.ndarray:
    """A conv/FC layer's int64 sums before bias, as [samples * positions, channels]."""
    p = layer_params(graph, op)
    w = graph.op_inputs(op)[1].data
    out_hw = graph.op_output(op).shape[1:3]
    if isinstance(op, ir.Conv2D):
        sums = kernels.conv2d_sums(x, w, p, out_hw)
    elif isinstance(op, ir.DepthwiseConv2D):
        sums = kernels.depthwise_conv2d_sums(x, w, p, out_hw)
    else:
        sums = kernels.fully_connected_sums(x, w, p)
    return sums.reshape(-1, sums.shape[-1]).astype(np.float64)


def _recalibrate(graph: ir.Graph, model: DressModel, k: int, dense: dict, mode: str) -> None:
    """Set sub-net k's bias and scale in ``model``, layer by layer; ``dense``: the dense model's activations."""
    sub = subnet_graph(model, k, graph)
    values = {graph.inputs[0]: dense[graph.inputs[0]]}
    by_op = {layer.op_index: layer for layer in model.layers}
    for index, op in enumerate(graph.ops):
        layer = by_op.get(index)
        if layer is not None:
            target = weighted_sums(graph, op, dense[op.inputs[0]]) + graph.op_inputs(op)[2].data
            sums = weighted_sums(sub, op, values[op.inputs[0]])
            gain = np.ones(target.shape[1])
            if mode == "bias+gain":
                spread, own = target.std(axis=0), sums.std(axis=0)
                ok = (spread > 0) & (own > 0)
                gain[ok] = np.clip(spread[ok] / own[ok], 1 / MAX_GAIN, MAX_GAIN)
            source = np.broadcast_to(graph.op_inputs(op)[1].quant.scale, gain.shape).astype(np.float32)
            layer.scale[k] = (source * gain).astype(np.float32)
            gain = layer.scale[k].astype(np.float64) / source  # the gain the float32 scale really carries
            bias = target.mean(axis=0) / gain - sums.mean(axis=0)
            layer.bias[k] = np.clip(np.floor(bias + 0.5), INT32_MIN, INT32_MAX).astype(np.int32)
            w, b = op.inputs[1], op.inputs[2]
            sub.tensors[w] = replace(sub.tensors[w], quant=filter_quant(graph.tensor(w).quant, layer.scale[k]))
            sub.tensors[b] = replace(sub.tensors[b], data=layer.bias[k].copy())
        values[op.outputs[0]] = ref.run_layer(sub, op, values)


def one_shot(source: bytes, sparsities, row: str | int = "filter", calibration: np.ndarray | None = None,
             recalibrate: str = "bias", allocation: str = "output", name: str = "<model>") -> DressModel:
    """DRESS sub-nets of an int8 .tflite (its bytes), re-calibrated on ``calibration`` inputs."""
    if recalibrate not in RECALIBRATIONS:
        raise InputError(f"re-calibration {recalibrate!r}: choose one of {', '.join(RECALIBRATIONS)}")
    graph = tflite.parse(source, name)
    model = dress_model(graph, source, sparsities, row, sample(graph, sparsities, row, allocation))
    if recalibrate != "none":
        x = ref.random_inputs(graph, 64, seed=0) if calibration is None else ref.prepare_input(graph, calibration)
        dense = ref.run_graph(graph, x)
    for k in range(model.subnets):
        if recalibrate != "none":
            _recalibrate(graph, model, k, dense, recalibrate)
        set_requantization(model, graph, k)
    return model


def agreement(model: DressModel, x: np.ndarray) -> list[tuple[float, float]]:
    """Each sub-net's top-1 agreement with the dense model on ``x``, and its mean |output - dense output|."""
    graph = tflite.parse(model.tflite)
    dense = ref.run(graph, x).reshape(len(x), -1).astype(np.int64)
    rows = []
    for k in range(model.subnets):
        out = ref.run(subnet_graph(model, k, graph), x).reshape(len(x), -1).astype(np.int64)
        rows.append((float(np.mean(out.argmax(axis=1) == dense.argmax(axis=1))), float(np.abs(out - dense).mean())))
    return rows


def accuracy_cost(path: Path, sparsities, row="filter", calibration=200, test=200):
    """{(allocation, re-calibration): agreement(...)} on held-out digits."""
    source = Path(path).read_bytes()
    graph = tflite.parse(source, str(path))
    x_cal, x_test = digits_inputs(graph, "train", calibration), digits_inputs(graph, "test", test)
    return {(alloc, mode): agreement(one_shot(source, sparsities, row, x_cal, mode, alloc, str(path)), x_test)
            for alloc in ALLOCATIONS for mode in RECALIBRATIONS}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="One-shot DRESS accuracy cost on digits (agreement with dense).")
    parser.add_argument("models", nargs="*", type=Path,
                        default=[SHARED_MODELS / f"{m}.tflite" for m in ("kws_ref_model", "pretrainedResnet_quant")])
    parser.add_argument("--sparsity", default="0.5,0.75,0.9")
    parser.add_argument("--row", default="filter")
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--test", type=int, default=200)
    args = parser.parse_args(argv)
    sparsities = [float(s) for s in args.sparsity.split(",")]
    print("top-1 agreement with the dense model (mean |output - dense output| in int8 steps), "
          f"{args.test} held-out digits, {args.calibration} calibration digits, row {args.row}")
    print(f"| model | allocation | re-calibration | {' | '.join(f's={s:g}' for s in sparsities)} |")
    print(f"|---|---|---|{'---:|' * len(sparsities)}")
    for path in args.models:
        for (alloc, mode), rows in accuracy_cost(path, sparsities, args.row, args.calibration, args.test).items():
            cells = " | ".join(f"{100 * a:.1f}% ({d:.1f})" for a, d in rows)
            print(f"| {path.stem} | {alloc} | {mode} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
