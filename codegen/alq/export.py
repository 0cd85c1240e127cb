"""Float ALQ parameters -> the integer model file (FORMAT.md).

Per layer, alpha and the input's x_ref/gamma become integers at 2^-w_frac and 2^-x_frac, each
fraction the largest that fits its field (uint16 alpha and gamma, int16 x_ref); while the
layer's 32-bit accumulator bound fails, a fraction gives up a bit: alpha's while its largest
integer is at least ALPHA_LEAD times the activation side's, else x_frac's. The bias is
rounded at 2^-(w_frac + x_frac). The accelerator multiplies each popcount term by one
product A * G_j in a single DSP block, so the fractions also keep those products below
2^COEF_BITS. Reshapes vanish (the fc reads its input flattened in
H, W, C order); average pools keep their window.
"""
from __future__ import annotations

import numpy as np

from .. import ir
from ..errors import UnsupportedError
from ..train.graph import TrainGraph
from . import bits
from .activations import ActQuant
from .format import COORD_BITS, AlqLayer, AlqModel, accumulator_bound, validate
from .state import QLayer
from .structure import KINDS

ACC_LIMIT = 1 << 31
U16, S16 = (1 << COORD_BITS) - 1, (1 << (COORD_BITS - 1)) - 1
MAX_FRAC = 30
COEF_BITS = 16  # A * G_j for the accelerator's one multiplier per lane (hw/README.md)
# Alpha keeps two bits more than gamma: a group's later bases are small and need them (digits at
# 2 bits: 95.0% against 93.3% with the two sides level).
ALPHA_LEAD = 4


def _frac(largest: float, limit: int) -> int:
    """The largest fraction f with round(largest * 2^f) <= limit (MAX_FRAC for a zero)."""
    if largest <= 0:
        return MAX_FRAC
    return min(int(np.floor(np.log2(limit / largest))), MAX_FRAC)


def _integers(layer: AlqLayer, q: QLayer, act: ActQuant) -> None:
    layer.alpha = np.round(q.alpha * q.live * 2.0**layer.w_frac).astype(np.uint16)
    layer.gamma = np.maximum(np.round(act.gamma * 2.0**layer.x_frac), 1).astype(np.uint16)
    layer.x_ref = int(np.round(act.x_ref * 2.0**layer.x_frac))
    bias = np.round(q.bias * 2.0 ** (layer.w_frac + layer.x_frac))
    layer.bias = np.clip(bias, -ACC_LIMIT, ACC_LIMIT - 1).astype(np.int32)


def quantized_layer(base: AlqLayer, q: QLayer, act: ActQuant) -> AlqLayer:
    """``base`` (geometry) with q's bases and coordinates and act's levels as integers."""
    g = q.groups
    base.group, base.group_size = g.group, g.n
    base.counts = q.counts.astype(np.uint8)
    base.bits = bits.pack(q.bases, bits.words(g.n))  # canonical: unused slots and padding are +1, bit 0
    base.w_frac = _frac(float((q.alpha * q.live).max(initial=0.0)), U16)
    base.x_frac = min(_frac(abs(act.x_ref), S16), _frac(float(act.gamma.max()), U16))
    _integers(base, q, act)
    while (int(accumulator_bound(base).max()) >= ACC_LIMIT
           or int(base.alpha.max(initial=0)) * int(base.gamma.max()) >= 1 << COEF_BITS):
        coord_max = max(abs(base.x_ref), int(base.gamma.max()))
        if int(base.alpha.max(initial=0)) >= ALPHA_LEAD * coord_max:
            base.w_frac -= 1
        else:
            base.x_frac -= 1
        _integers(base, q, act)
    return base


ALQ_OPS = (ir.Conv2D, ir.DepthwiseConv2D, ir.FullyConnected, ir.AveragePool2D, ir.Reshape)


def _refusal(graph: ir.Graph, index: int, previous: int) -> str | None:
    """Why the format cannot hold op ``index`` (None if it can); ``previous``: the tensor the chain hands it."""
    op = graph.ops[index]
    last = index == len(graph.ops) - 1
    if not (isinstance(op, ALQ_OPS) or (isinstance(op, ir.Softmax) and last)):  # the loss replaces a final softmax
        return ("ALQ has no such layer (it takes conv, depthwise, fully connected, average pool, "
                "a reshape before a fully connected layer and a final softmax)")
    if op.inputs[0] != previous:
        return "ALQ models are chains: this layer does not read the previous layer's output"
    activation = getattr(op, "activation", "NONE")
    if activation not in (("NONE", "RELU") if isinstance(op, (ir.Convolution, ir.FullyConnected)) else ("NONE",)):
        return f"fused {activation}: ALQ layers end in a ReLU or nothing"
    if getattr(op, "dilation", (1, 1)) != (1, 1):
        return "dilated windows: ALQ windows are dense"
    if isinstance(op, ir.AveragePool2D):
        area = op.filter[0] * op.filter[1]
        if op.padding != "VALID" or area & (area - 1):
            return (f"average pool {op.filter[0]}x{op.filter[1]} {op.padding}: ALQ pools over VALID windows "
                    "of a power-of-two area (it divides by a shift)")
    if isinstance(op, ir.Reshape) and (last or not isinstance(graph.ops[index + 1], ir.FullyConnected)):
        return "ALQ drops a reshape only right before a fully connected layer (which reads its input flat)"
    return None


def check(graph: ir.Graph) -> None:
    """UnsupportedError naming the first op (and its index) the integer format cannot hold: called
    before the training graph is built, so an inexpressible model fails at once, in ALQ's terms."""
    shape = graph.tensor(graph.inputs[0]).shape[1:]
    if len(shape) != 3:
        raise UnsupportedError(f"{graph.source}: input shape {shape}: ALQ models take an H x W x C input")
    previous = graph.inputs[0]
    for index, op in enumerate(graph.ops):
        why = _refusal(graph, index, previous)
        if why:
            raise UnsupportedError(f"{graph.source}: layer {index} ({op.OP}): {why}")
        previous = op.outputs[0]


def export(graph: ir.Graph, tg: TrainGraph, layers: dict[int, QLayer], acts: dict[int, ActQuant],
           input_frac: int) -> AlqModel:
    """The integer model of a chain of conv/depthwise/fc layers and average pools (reshapes skipped)."""
    out = []
    for layer in tg.layers:
        if layer.kind == "reshape":
            continue
        op = graph.ops[layer.index]
        in_shape = out[-1].out_shape if out else tuple(layer.in_shapes[0])
        out_shape = (1, 1, layer.out_shape[-1]) if layer.kind == "fc" else tuple(layer.out_shape)
        if layer.kind == "fc":
            base = AlqLayer("fc", in_shape, out_shape)
        else:
            win = layer.window
            base = AlqLayer(KINDS.get(layer.kind, layer.kind), in_shape, out_shape, (win.kernel_h, win.kernel_w),
                            (win.stride_h, win.stride_w), op.padding)
        if layer.kind in KINDS:
            base.relu = layer.activation == "RELU"
            base = quantized_layer(base, layers[layer.index], acts[layer.index])
        out.append(base)
    model = AlqModel(tuple(tg.input_shape), input_frac, out)
    validate(model, tg.source)
    return model
