"""The NumPy reference of DRESS sub-net k: codegen/ref run on sub-net k as a dense graph.

Sub-net k is the source model with, in every sampled layer, the weights outside
the first nnz_k entries of each row set to zero, sub-net k's biases, and sub-net
k's filter scales (from which codegen/ref/params.py derives its requantization
multipliers, as TFLM would from a .tflite carrying those scales). No kernel here:
the arithmetic is codegen/ref's.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import ir, ref
from ..errors import InputError
from ..ref.params import layer_params
from .format import DressModel, graph_of
from .sampling import masked_filters, unfilters


def filter_quant(source: ir.QParams, scale: np.ndarray) -> ir.QParams:
    """Sub-net filter quantization: per channel, except a per-tensor source whose channels all keep
    its scale (TFLM derives a per-tensor multiplier from a float32 product, per-channel ones from doubles)."""
    if not source.per_channel and np.all(scale == source.scale[0]):
        return source
    return ir.QParams(scale.astype(np.float32), np.zeros(scale.size, dtype=np.int32), source.axis)


def check_subnet(model: DressModel, k: int) -> None:
    if not 0 <= k < model.subnets:
        raise InputError(f"sub-net {k} does not exist; this DRESS model has sub-nets 0..{model.subnets - 1}")


def subnet_graph(model: DressModel, k: int, graph: ir.Graph | None = None) -> ir.Graph:
    """Sub-net k as a dense IR graph (``graph``: the embedded model already parsed)."""
    check_subnet(model, k)
    graph = graph or graph_of(model)
    tensors = list(graph.tensors)
    for layer in model.layers:
        op = graph.ops[layer.op_index]
        w_index, b_index = op.inputs[1], op.inputs[2]
        w = tensors[w_index]
        tensors[w_index] = replace(w, data=unfilters(op, masked_filters(layer, k), w.shape),
                                   quant=filter_quant(w.quant, layer.scale[k]))
        tensors[b_index] = replace(tensors[b_index], data=layer.bias[k].astype(np.int32))
    return replace(graph, name=f"{graph.name}_subnet{k}", tensors=tensors)


def requantization(graph: ir.Graph, op: ir.Op) -> tuple[np.ndarray, np.ndarray]:
    """A conv/FC layer's multiplier and shift per output channel, as codegen/ref/params.py derives them."""
    p = layer_params(graph, op)
    channels = graph.op_output(op).shape[-1]
    return np.broadcast_to(p.multiplier, (channels,)), np.broadcast_to(p.shift, (channels,))


def run(model: DressModel, k: int, x: np.ndarray) -> np.ndarray:
    """Sub-net k's int8 outputs for a batch of inputs."""
    return ref.run(subnet_graph(model, k), x)


def run_graph(model: DressModel, k: int, x: np.ndarray) -> dict[int, np.ndarray]:
    """Every activation tensor of sub-net k (tensor indices of the embedded model)."""
    return ref.run_graph(subnet_graph(model, k), x)
