"""The training graph: the IR's layers with backward passes and a softmax cross-entropy loss.

:func:`build` walks an :class:`~codegen.ir.Graph` (an imported int8 model or a
builtin), drops its final SOFTMAX (the loss takes its place), turns the int8
weights into real starting values and marks which layers are updated. Layers
before the first updated one form a forward-only prefix; backward runs from the
loss down to that layer and no further, which is what makes sparse (last-N)
updates cheaper in memory and time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import ir
from ..errors import InputError, UnsupportedError
from ..ref.params import Window, make_window

KINDS = {
    ir.Conv2D: "conv",
    ir.DepthwiseConv2D: "dwconv",
    ir.FullyConnected: "fc",
    ir.AveragePool2D: "avgpool",
    ir.MaxPool2D: "maxpool",
    ir.Add: "add",
    ir.Reshape: "reshape",
}
WEIGHTED = ("conv", "dwconv", "fc")
FORWARD_ONLY = ("maxpool",)  # no backward pass: may only sit in the frozen prefix
TRAINABLE_ACTIVATIONS = ("NONE", "RELU", "RELU6")


@dataclass
class Layer:
    """One layer of the training graph; shapes exclude the batch dimension."""

    index: int  # position in the training graph (= the IR op index)
    kind: str
    name: str
    inputs: list[int]  # activation tensor ids (IR tensor indices)
    output: int
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...]
    activation: str = "NONE"
    window: Window | None = None
    weights: np.ndarray | None = None  # real values; conv [Co, KH, KW, Ci], dwconv [KH, KW, C], fc [N, K]
    bias: np.ndarray | None = None  # real values, one per output channel
    trainable: bool = False

    @property
    def where(self) -> str:
        return f"layer {self.index} ({self.kind} {self.name!r})"


@dataclass
class TrainGraph:
    name: str
    source: str
    input: int  # tensor id of the graph input
    input_shape: tuple[int, ...]
    logits: int  # tensor id of the logits the loss reads
    classes: int
    layers: list[Layer]
    first_backward: int = 0  # index of the earliest updated layer: backward stops there
    input_range: tuple[float, float] | None = None  # real values the model's int8 input covers
    meta: dict = field(default_factory=dict)

    @property
    def trainable(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.trainable]

    def describe_update(self) -> str:
        return ", ".join(f"{layer.index}:{layer.kind}" for layer in self.trainable)


def _real_weights(t: ir.Tensor, axis_last: bool = False) -> np.ndarray:
    scale = t.quant.scale.astype(np.float64)
    data = t.data.astype(np.float64)
    if scale.size == 1:
        return data * scale[0]
    shape = [1] * data.ndim
    shape[-1 if axis_last else 0] = scale.size
    return data * scale.reshape(shape)


def _layer(graph: ir.Graph, index: int, op: ir.Op) -> Layer:
    kind = KINDS.get(type(op))
    where = f"{graph.source}: layer {index} ({op.OP})"
    if kind is None:
        raise UnsupportedError(f"{where}: no training support for this op")
    acts = [i for i in op.inputs if i >= 0 and not graph.tensor(i).is_const]
    in_shapes = [tuple(graph.tensor(i).shape[1:]) for i in acts]
    out = graph.op_output(op)
    layer = Layer(index, kind, out.name, acts, op.outputs[0], in_shapes, tuple(out.shape[1:]),
                  getattr(op, "activation", "NONE"))
    if layer.activation not in TRAINABLE_ACTIVATIONS:
        raise UnsupportedError(f"{where}: fused activation {layer.activation} has no backward pass")
    ins = graph.op_inputs(op)
    x = ins[0]
    if kind in ("conv", "dwconv", "avgpool", "maxpool"):
        kernel = (ins[1].shape[1], ins[1].shape[2]) if kind in ("conv", "dwconv") else op.filter
        dilation = op.dilation if kind in ("conv", "dwconv") else (1, 1)
        layer.window = make_window(x.shape, out.shape, kernel, op.stride, dilation, op.padding)
    if kind in WEIGHTED:
        w, b = ins[1], (ins[2] if len(ins) > 2 else None)
        if kind == "dwconv":
            if out.shape[-1] != x.shape[-1]:
                raise UnsupportedError(f"{where}: depth multiplier {out.shape[-1] // x.shape[-1]} (training takes 1)")
            layer.weights = _real_weights(w, axis_last=True)[0]
        else:
            layer.weights = _real_weights(w)
        channels = out.shape[-1]
        if b is not None and b.data is not None:
            w_scale = w.quant.scale.astype(np.float64)
            layer.bias = b.data.astype(np.float64) * float(x.scale) * (w_scale if w_scale.size > 1 else w_scale[0])
        else:
            layer.bias = np.zeros(channels)
    return layer


def parse_update(spec: str, layers: list[Layer]) -> list[int]:
    """Which layers to update: ``all``, ``last:N`` (the last N weighted layers) or a list of indices."""
    weighted = [layer.index for layer in layers if layer.kind in WEIGHTED]
    spec = spec.strip()
    if spec == "all":
        return weighted
    if spec.startswith("last:"):
        try:
            n = int(spec[5:])
        except ValueError:
            n = 0
        if not 1 <= n <= len(weighted):
            raise InputError(f"--update {spec}: N must be 1..{len(weighted)}, the model's weighted layers")
        return weighted[-n:]
    try:
        chosen = sorted({int(part) for part in spec.split(",")})
    except ValueError:
        raise InputError(f"--update {spec!r}: expected all, last:N or comma-separated layer indices") from None
    for i in chosen:
        if i not in weighted:
            raise InputError(f"--update: layer {i} has no weights; weighted layers are {weighted}")
    return chosen


def build(graph: ir.Graph, update: str = "all") -> TrainGraph:
    """The training graph of ``graph`` with the layers named by ``update`` trainable."""
    ops = list(graph.ops)
    logits = graph.outputs[0]
    if ops and isinstance(ops[-1], ir.Softmax):
        logits = ops[-1].inputs[0]
        ops = ops[:-1]
    layers = [_layer(graph, i, op) for i, op in enumerate(ops)]
    shape = tuple(graph.tensor(logits).shape)
    if int(np.prod(shape)) != shape[-1] or shape[-1] < 2:
        raise UnsupportedError(f"{graph.source}: the loss needs a vector of class logits, found shape {shape}")
    chosen = parse_update(update, layers)
    for layer in layers:
        layer.trainable = layer.index in chosen
    first = min(chosen)
    for layer in layers[first:]:
        if layer.kind in FORWARD_ONLY:
            raise UnsupportedError(
                f"{graph.source}: {layer.where} has no backward pass; update only layers after it (--update last:N)")
    x = graph.tensor(graph.inputs[0])
    scale, zero = float(x.quant.scale[0]), int(x.quant.zero_point[0])
    return TrainGraph(graph.name, graph.source, graph.inputs[0], tuple(x.shape[1:]), logits, shape[-1], layers, first,
                      input_range=(scale * (-128 - zero), scale * (127 - zero)))
