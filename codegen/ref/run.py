"""Run a whole graph on the NumPy reference, keeping every intermediate tensor."""
from __future__ import annotations

import numpy as np

from .. import ir
from ..errors import InputError
from . import kernels
from .params import layer_params
from .softmax import softmax


def run_layer(graph: ir.Graph, op: ir.Op, values: dict[int, np.ndarray]) -> np.ndarray:
    """Compute one layer's output from ``values`` (tensor index -> batched int8 array)."""
    p = layer_params(graph, op)
    ins = graph.op_inputs(op)
    x = values[op.inputs[0]]
    y = graph.op_output(op)
    batch = x.shape[0]
    out_hw = tuple(y.shape[1:3]) if len(y.shape) == 4 else None
    if isinstance(op, ir.Conv2D):
        out = kernels.conv2d(x, ins[1].data, _bias(ins), p, out_hw)
    elif isinstance(op, ir.DepthwiseConv2D):
        out = kernels.depthwise_conv2d(x, ins[1].data, _bias(ins), p, out_hw)
    elif isinstance(op, ir.FullyConnected):
        out = kernels.fully_connected(x, ins[1].data, _bias(ins), p)
    elif isinstance(op, ir.AveragePool2D):
        out = kernels.average_pool2d(x, p, out_hw)
    elif isinstance(op, ir.MaxPool2D):
        out = kernels.max_pool2d(x, p, out_hw)
    elif isinstance(op, ir.Add):
        out = kernels.add(x, values[op.inputs[1]], p)
    elif isinstance(op, ir.Softmax):
        out = softmax(x, p)
    elif isinstance(op, ir.Reshape):
        out = x
    else:  # the frontend only builds the classes above
        raise TypeError(f"no reference kernel for {op.OP}")
    return out.reshape((batch,) + tuple(y.shape[1:]))


def _bias(ins):
    return ins[2].data if len(ins) > 2 and ins[2] is not None else None


def prepare_input(graph: ir.Graph, x: np.ndarray) -> np.ndarray:
    """Accept one sample or a batch on axis 0, with or without the model's batch dim of 1."""
    t = graph.tensor(graph.inputs[0])
    sample = tuple(t.shape[1:])
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise InputError(f"input dtype is {x.dtype}, the model {graph.name} takes int8")
    if x.shape == tuple(t.shape) or x.shape == sample:
        return x.reshape((1,) + sample)
    if x.shape[1:] == sample:
        return x
    if x.ndim == len(t.shape) + 1 and x.shape[1] == 1 and x.shape[2:] == sample:
        return x.reshape((x.shape[0],) + sample)
    raise InputError(f"input shape {x.shape} does not fit the model input {tuple(t.shape)} (N samples stack on axis 0)")


def random_inputs(graph: ir.Graph, count: int, seed: int) -> np.ndarray:
    """`count` int8 inputs, uniform over the full range, reproducible from `seed` (numpy's PCG64)."""
    if count < 1:
        raise InputError(f"need at least 1 random input, got {count}")
    shape = graph.tensor(graph.inputs[0]).shape[1:]
    return np.random.default_rng(seed).integers(-128, 128, size=(count, *shape), dtype=np.int8)


def run_graph(graph: ir.Graph, x: np.ndarray) -> dict[int, np.ndarray]:
    """All activation tensors for a batch of inputs; layer outputs are batched on axis 0."""
    values = {graph.inputs[0]: prepare_input(graph, x)}
    for op in graph.ops:
        values[op.outputs[0]] = run_layer(graph, op, values)
    return values


def run(graph: ir.Graph, x: np.ndarray) -> np.ndarray:
    """Model output for a batch of inputs, shape [N, *output_shape[1:]]."""
    return run_graph(graph, x)[graph.outputs[0]]
