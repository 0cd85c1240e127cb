"""A DRESS model from sampled tables: the sub-nets' quantization parameters around them.

Every sub-net starts from the source layer's bias and filter scales (re-calibration,
one-shot or trained, then sets its own); its requantization multipliers and shifts
are derived from its final filter scales exactly as codegen/ref/params.py derives a
dense model's, so the reference and the file agree by construction.
"""
from __future__ import annotations

import numpy as np

from .. import ir
from ..errors import UnsupportedError
from .format import DressLayer, DressModel
from .reference import requantization, subnet_graph
from .sampling import LayerSample, parse_row


def dress_model(graph: ir.Graph, source: bytes, sparsities, row, samples: list[LayerSample]) -> DressModel:
    """The DRESS model of ``samples`` of ``graph`` (whose .tflite bytes are ``source``), each sub-net with
    the source's bias and filter scales; multipliers and shifts are left to :func:`set_requantization`."""
    if not samples:
        raise UnsupportedError(f"{graph.source}: no conv or fully connected layer to sample")
    subnets = len(samples[0].nnz)
    layers = []
    for s in samples:
        op = graph.ops[s.op_index]
        ins = graph.op_inputs(op)
        if len(ins) < 3 or ins[2] is None:
            raise UnsupportedError(f"{graph.source}: layer {s.op_index} ({op.OP}): DRESS needs a bias per sub-net")
        channels = s.shape.channels
        bias = np.tile(ins[2].data.astype(np.int32), (subnets, 1))
        scale = np.tile(np.broadcast_to(ins[1].quant.scale, (channels,)).astype(np.float32), (subnets, 1))
        zeros = np.zeros((subnets, channels), dtype=np.int32)
        layers.append(DressLayer(**vars(s), bias=bias, scale=scale, multiplier=zeros, shift=zeros.copy()))
    return DressModel(tuple(float(v) for v in sparsities), parse_row(row), layers, source)


def set_requantization(model: DressModel, graph: ir.Graph, k: int) -> None:
    """Sub-net k's multipliers and shifts from its filter scales (after its bias and scales are final)."""
    sub = subnet_graph(model, k, graph)
    for layer in model.layers:
        layer.multiplier[k], layer.shift[k] = requantization(sub, sub.ops[layer.op_index])
