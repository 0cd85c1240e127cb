"""Lowering: choose a kernel per layer and prepare the constants it reads.

The integer parameters come from :mod:`codegen.ref.params` (the arithmetic
contract); this pass only adds what is specific to the C kernels: which
variant runs, the folded bias of the dot-product kernels, scratch sizes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import ir
from ..errors import UnsupportedError
from ..ref.params import layer_params


@dataclass
class Layer:
    index: int
    op: ir.Op
    params: object  # a codegen.ref.params dataclass, or None
    kernel: str | None  # C function, None when the layer only aliases (RESHAPE)
    consts: dict[str, np.ndarray] = field(default_factory=dict)  # emitted as layer_<i>_<name>
    scratch_bytes: int = 0
    macs: int = 0
    sparse: dict | None = None  # a DRESS sparse layer's table geometry (codegen/dress/lower.py)


def fold_bias(weights: np.ndarray, bias: np.ndarray | None, input_offset: int, where: str) -> np.ndarray:
    """bias + input_offset * sum(weights of the unit): the offset term taken out of the inner loop."""
    rows = weights.reshape(weights.shape[0], -1).astype(np.int64)
    folded = rows.sum(axis=1) * input_offset
    if bias is not None:
        folded = folded + bias.astype(np.int64)
    if np.any(np.abs(folded) >= 2**31):
        raise UnsupportedError(f"{where}: folded bias overflows int32")
    return folded.astype(np.int32)


#: tsn_convolve_s8's DSP path im2cols this many output pixels at a time
CONV_PIXELS_PER_BLOCK = 2
INT16_BYTES = 2


def convolve_s8_buffer_size(filter_shape: tuple[int, ...]) -> int:
    """Bytes tsn_convolve_s8_get_buffer_size() returns: int16 im2col columns, each padded to an even length.

    Reserved whatever the target, so the host and Cortex-M builds share one arena plan.
    """
    depth = int(np.prod(filter_shape[1:]))
    return CONV_PIXELS_PER_BLOCK * (depth + (depth & 1)) * INT16_BYTES


def _lower_op(graph: ir.Graph, index: int, op: ir.Op) -> Layer:
    p = layer_params(graph, op)
    ins = graph.op_inputs(op)
    y = graph.op_output(op)
    where = f"{graph.source}: layer {index} ({op.OP})"
    bias = ins[2].data if len(ins) > 2 and ins[2] is not None else None
    if isinstance(op, ir.Conv2D):
        w = ins[1].data
        macs = y.size * int(np.prod(w.shape[1:]))
        quant = {"multiplier": p.multiplier, "shift": p.shift}
        pointwise = w.shape[1:3] == (1, 1) and p.window.pad_h == 0 and p.window.pad_w == 0
        if pointwise:
            consts = {"filter": w, "bias": fold_bias(w, bias, p.input_offset, where), **quant}
            return Layer(index, op, p, "tsn_convolve_1x1_s8", consts, macs=macs)
        consts = {"filter": w, **({"bias": bias} if bias is not None else {}), **quant}
        return Layer(index, op, p, "tsn_convolve_s8", consts, scratch_bytes=convolve_s8_buffer_size(w.shape),
                     macs=macs)
    if isinstance(op, ir.DepthwiseConv2D):
        w = ins[1].data
        consts = {"filter": w, **({"bias": bias} if bias is not None else {}),
                  "multiplier": p.multiplier, "shift": p.shift}
        return Layer(index, op, p, "tsn_depthwise_conv_s8", consts, macs=y.size * w.shape[1] * w.shape[2])
    if isinstance(op, ir.FullyConnected):
        w = ins[1].data
        units = w.shape[0]
        consts = {"filter": w, "bias": fold_bias(w, bias, p.input_offset, where),
                  "multiplier": np.resize(p.multiplier, units), "shift": np.resize(p.shift, units)}
        return Layer(index, op, p, "tsn_fully_connected_s8", consts, macs=y.size * w.shape[1])
    if isinstance(op, ir.AveragePool2D):
        return Layer(index, op, p, "tsn_avgpool_s8")
    if isinstance(op, ir.MaxPool2D):
        return Layer(index, op, p, "tsn_max_pool_s8")
    if isinstance(op, ir.Add):
        return Layer(index, op, p, "tsn_elementwise_add_s8")
    if isinstance(op, ir.Softmax):
        return Layer(index, op, p, "tsn_softmax_s8")
    if isinstance(op, ir.Reshape):
        return Layer(index, op, None, None)
    raise UnsupportedError(f"{where}: no kernel")


def lower(graph: ir.Graph) -> list[Layer]:
    return [_lower_op(graph, i, op) for i, op in enumerate(graph.ops)]
