"""The typed IR: tensors with quantization, ops with their float-level attributes.

Frontends build a :class:`Graph`; passes derive integer kernel parameters and a
memory plan from it; the NumPy reference and the C emitter both read the result.
The IR is deliberately small: one class per supported op, no generic attribute
bags, and :meth:`Graph.validate` checks the invariants every pass relies on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .errors import ModelError

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
PADDINGS = ("SAME", "VALID")


@dataclass(frozen=True)
class QParams:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per ``axis``."""

    scale: np.ndarray  # float32, shape (1,) or (channels,)
    zero_point: np.ndarray  # int32, same shape as scale
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass
class Tensor:
    """A tensor of the graph. ``data`` is set for constants (weights, biases)."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # "int8" or "int32"
    quant: QParams | None = None
    data: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def scale(self) -> float:
        """The per-tensor scale as float32 (TFLite keeps scales in float32)."""
        return np.float32(self.quant.scale[0])

    @property
    def zero_point(self) -> int:
        return int(self.quant.zero_point[0])


@dataclass
class Op:
    """Base of all ops: tensor indices into :attr:`Graph.tensors`."""

    OP: ClassVar[str] = ""
    inputs: list[int]
    outputs: list[int]


@dataclass
class Convolution(Op):
    """Fields shared by CONV_2D and DEPTHWISE_CONV_2D (the filter shape says the rest)."""

    stride: tuple[int, int] = (1, 1)  # (h, w)
    dilation: tuple[int, int] = (1, 1)
    padding: str = "VALID"
    activation: str = "NONE"


@dataclass
class Conv2D(Convolution):
    OP: ClassVar[str] = "CONV_2D"


@dataclass
class DepthwiseConv2D(Convolution):
    OP: ClassVar[str] = "DEPTHWISE_CONV_2D"


@dataclass
class FullyConnected(Op):
    OP: ClassVar[str] = "FULLY_CONNECTED"
    activation: str = "NONE"
    keep_num_dims: bool = False


@dataclass
class Pool2D(Op):
    """Fields shared by AVERAGE_POOL_2D and MAX_POOL_2D."""

    filter: tuple[int, int] = (1, 1)  # (h, w)
    stride: tuple[int, int] = (1, 1)
    padding: str = "VALID"
    activation: str = "NONE"


@dataclass
class AveragePool2D(Pool2D):
    OP: ClassVar[str] = "AVERAGE_POOL_2D"


@dataclass
class MaxPool2D(Pool2D):
    OP: ClassVar[str] = "MAX_POOL_2D"


@dataclass
class Add(Op):
    OP: ClassVar[str] = "ADD"
    activation: str = "NONE"


@dataclass
class Reshape(Op):
    OP: ClassVar[str] = "RESHAPE"


@dataclass
class Softmax(Op):
    OP: ClassVar[str] = "SOFTMAX"
    beta: float = 1.0


OP_CLASSES = (Conv2D, DepthwiseConv2D, FullyConnected, AveragePool2D, MaxPool2D, Add, Reshape, Softmax)
SUPPORTED_OPS = tuple(cls.OP for cls in OP_CLASSES)


@dataclass
class Graph:
    """A whole model: tensors, ops in execution order, graph inputs and outputs."""

    name: str
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    source: str = ""  # where it came from, for error messages
    sha256: str = ""  # hash of the source bytes, stamped into generated code
    meta: dict = field(default_factory=dict)

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def op_inputs(self, op: Op) -> list[Tensor | None]:
        return [self.tensors[i] if i >= 0 else None for i in op.inputs]

    def op_output(self, op: Op) -> Tensor:
        return self.tensors[op.outputs[0]]

    def activation_tensors(self) -> list[int]:
        """Indices of the non-constant tensors, in first-use order."""
        seen: list[int] = []
        for t in self.inputs + [i for op in self.ops for i in op.inputs + op.outputs]:
            if t >= 0 and not self.tensors[t].is_const and t not in seen:
                seen.append(t)
        return seen

    def validate(self) -> None:
        """Check the invariants the passes assume; raise ModelError naming the layer."""
        produced = set(self.inputs)
        for index, op in enumerate(self.ops):
            where = f"{self.source}: layer {index} ({op.OP})"
            if len(op.outputs) != 1:
                raise ModelError(f"{where}: expected one output, found {len(op.outputs)}")
            for t in op.inputs:
                if t >= 0 and not self.tensors[t].is_const and t not in produced:
                    raise ModelError(f"{where}: reads tensor {self.tensors[t].name!r} before it is written")
            out = self.op_output(op)
            if out.dtype != "int8" or out.quant is None:
                raise ModelError(f"{where}: output {out.name!r} is not a quantized int8 tensor")
            produced.add(op.outputs[0])
        for t in self.outputs:
            if t not in produced:
                raise ModelError(f"{self.source}: graph output {self.tensors[t].name!r} is never written")
