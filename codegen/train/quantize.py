"""Post-training quantization: a float model trained here becomes an int8 IR graph as TFLite's converter makes one.

- weights: symmetric int8 per output channel (conv axis 0, depthwise its last axis,
  fully connected axis 0), scale max|w| / 127;
- biases: int32 in units of input scale * filter scale;
- activations: asymmetric int8 per tensor over the calibrated real range widened
  to hold 0, scale (hi - lo) / 255; average pooling and reshape keep their input's
  parameters (TFLM's int8 kernels require it), softmax outputs 1/256 with zero point
  -128, and the input keeps the dataset's exact int8 values (scale 2^exp, zero point 0).

Ranges come from :func:`ranges`: the min and max of each tensor over calibration
samples, taken over every parameter set given (e.g. all DRESS sub-nets, which share
their activation quantization).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import ir
from ..errors import UnsupportedError
from ..ref.fixedpoint import INT32_MAX
from .arith import Params
from .builtin import SOFTMAX_OUTPUT
from .model import TrainModel


def ranges(model: TrainModel, param_sets: list[dict[int, Params]], samples, exp: int) -> dict[int, tuple]:
    """{tensor: (lo, hi)}: real ranges of every tensor over ``samples`` and all ``param_sets``."""
    lo, hi = {}, {}
    for params in param_sets:
        model.params = params
        for q in samples:
            for t, v in model.activations(model.input(q, exp)).items():
                lo[t] = min(lo.get(t, 0.0), float(v.min()))
                hi[t] = max(hi.get(t, 0.0), float(v.max()))
    return {t: (lo[t], hi[t]) for t in lo}


def activation_quant(lo: float, hi: float) -> ir.QParams:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((hi - lo) / 255.0) if hi > lo else np.float32(1.0 / 255)
    zero = int(np.clip(np.round(-128 - lo / float(scale)), -128, 127))
    return ir.QParams(np.array([scale], np.float32), np.array([zero], np.int32))


def weight_quant(w: np.ndarray, axis: int) -> tuple[np.ndarray, ir.QParams]:
    """Symmetric per-channel int8 along ``axis``."""
    others = tuple(a for a in range(w.ndim) if a != axis)
    peak = np.abs(w.astype(np.float64)).max(axis=others)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
    return q, ir.QParams(scale, np.zeros(scale.size, np.int32), axis)


def bias_data(b: np.ndarray, input_scale: float, w_scale: np.ndarray, where: str) -> np.ndarray:
    q = np.round(b.astype(np.float64) / (input_scale * w_scale.astype(np.float64)))
    if np.any(np.abs(q) > INT32_MAX):
        raise UnsupportedError(f"{where}: a bias does not fit int32 at scale input * filter")
    return q.astype(np.int32)


def quantize(graph: ir.Graph, params: dict[int, Params], tensor_ranges: dict[int, tuple], input_exp: int) -> ir.Graph:
    """``graph`` (the trained model's IR, same op and tensor indices) with int8 weights, int32 biases and
    activation quantization from ``tensor_ranges``."""
    tensors = list(graph.tensors)
    x0 = graph.inputs[0]
    tensors[x0] = replace(tensors[x0], quant=ir.QParams(np.array([2.0**input_exp], np.float32),
                                                        np.zeros(1, np.int32)))
    for index, op in enumerate(graph.ops):
        where = f"{graph.source}: layer {index} ({op.OP})"
        out = op.outputs[0]
        if isinstance(op, ir.Softmax):
            quant = SOFTMAX_OUTPUT
        elif isinstance(op, (ir.AveragePool2D, ir.Reshape)):
            quant = tensors[op.inputs[0]].quant
        elif out in tensor_ranges:
            quant = activation_quant(*tensor_ranges[out])
        else:
            raise UnsupportedError(f"{where}: no calibrated range for its output")
        tensors[out] = replace(tensors[out], quant=quant)
        if isinstance(op, (ir.Convolution, ir.FullyConnected)):
            w_index, b_index = op.inputs[1], op.inputs[2]
            shape = tensors[w_index].shape
            axis = len(shape) - 1 if isinstance(op, ir.DepthwiseConv2D) else 0
            q, wq = weight_quant(params[index].w.reshape(shape), axis)
            tensors[w_index] = replace(tensors[w_index], data=q, quant=wq)
            input_scale = float(tensors[op.inputs[0]].scale)
            bias = bias_data(params[index].b, input_scale, wq.scale, where)
            bq = ir.QParams((input_scale * wq.scale.astype(np.float64)).astype(np.float32),
                            np.zeros(wq.scale.size, np.int32))
            tensors[b_index] = replace(tensors[b_index], data=bias, quant=bq)
    return replace(graph, tensors=tensors)
