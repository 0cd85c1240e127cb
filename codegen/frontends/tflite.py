"""Frontend: fully-int8 TFLite flatbuffers -> IR.

Parsing uses the ``tflite`` package's generated flatbuffer accessors. Every
check names the model file and, where one is involved, the layer index and op,
so a user learns in one line what is wrong and where.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import tflite
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.Padding import Padding
from tflite.TensorType import TensorType

from .. import ir
from ..errors import ModelError, UnsupportedError
from ..ref.params import out_size

FILE_IDENTIFIER = b"TFL3"
_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(TensorType).items() if not k.startswith("_")}
_ACTIVATIONS = {
    ActivationFunctionType.NONE: "NONE",
    ActivationFunctionType.RELU: "RELU",
    ActivationFunctionType.RELU6: "RELU6",
    ActivationFunctionType.RELU_N1_TO_1: "RELU_N1_TO_1",
}
_ACT_NAMES = {v: k for k, v in vars(ActivationFunctionType).items() if not k.startswith("_")}
_PADDINGS = {Padding.SAME: "SAME", Padding.VALID: "VALID"}
_DTYPES = {TensorType.INT8: "int8", TensorType.INT32: "int32"}


def load(path: str | Path) -> ir.Graph:
    """Read and check a .tflite file; raise ModelError/UnsupportedError with one-line messages."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ModelError(f"{path}: cannot read model ({err.strerror})") from None
    return parse(data, source=str(path))


def parse(data: bytes, source: str = "<bytes>") -> ir.Graph:
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ModelError(f"{source}: not a TFLite flatbuffer (missing the 'TFL3' identifier)")
    try:
        return _Reader(data, source).graph()
    except (ModelError, UnsupportedError):
        raise
    except Exception as err:  # the flatbuffer accessors raise anything on corrupt offsets
        raise ModelError(f"{source}: corrupt or truncated TFLite flatbuffer ({type(err).__name__}: {err})") from None


def _identifier(name: str) -> str:
    """A C identifier derived from a file stem."""
    ident = re.sub(r"\W", "_", name).strip("_").lower() or "model"
    return ident if not ident[0].isdigit() else f"m_{ident}"


class _Reader:
    def __init__(self, data: bytes, source: str):
        self.data = data
        self.source = source
        self.model = tflite.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise UnsupportedError(f"{source}: {self.model.SubgraphsLength()} subgraphs, only single-subgraph models are supported")
        self.sg = self.model.Subgraphs(0)
        self.tensor_map: dict[int, int] = {}  # flatbuffer tensor index -> IR index
        self.tensors: list[ir.Tensor] = []

    def graph(self) -> ir.Graph:
        sg = self.sg
        inputs = [self.tensor(int(i)) for i in sg.InputsAsNumpy()]
        if len(inputs) != 1 or sg.OutputsLength() != 1:
            raise UnsupportedError(f"{self.source}: {len(inputs)} inputs and {sg.OutputsLength()} outputs, only one of each is supported")
        ops = [self.op(i) for i in range(sg.OperatorsLength())]
        outputs = [self.tensor(int(i)) for i in sg.OutputsAsNumpy()]
        for index in inputs + outputs:
            t = self.tensors[index]
            if t.dtype != "int8" or t.quant is None:
                raise UnsupportedError(f"{self.source}: graph input/output {t.name!r} is {t.dtype}, not quantized int8")
            if not t.shape or t.shape[0] != 1:
                raise UnsupportedError(f"{self.source}: graph input/output {t.name!r} has shape {t.shape}; "
                                       "generated models take one sample (leading dimension 1)")
        name = _identifier(Path(self.source).stem)
        g = ir.Graph(name, self.tensors, ops, inputs, outputs, source=self.source,
                     sha256=hashlib.sha256(self.data).hexdigest(),
                     meta={"tflite_tensor": {v: k for k, v in self.tensor_map.items()}})
        g.validate()
        return g

    # tensors -------------------------------------------------------------
    def tensor(self, fb_index: int) -> int:
        if fb_index < 0:
            return -1
        if fb_index in self.tensor_map:
            return self.tensor_map[fb_index]
        if fb_index >= self.sg.TensorsLength():
            raise ModelError(f"{self.source}: tensor index {fb_index} out of range")
        t = self.sg.Tensors(fb_index)
        name = (t.Name() or b"").decode("utf-8", "replace") or f"tensor_{fb_index}"
        if t.Type() not in _DTYPES:
            raise UnsupportedError(
                f"{self.source}: tensor {name!r} is {_TYPE_NAMES.get(t.Type(), t.Type())}; "
                "only fully-int8 models (int8 activations and weights, int32 bias) are supported")
        dtype = _DTYPES[t.Type()]
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if any(d <= 0 for d in shape):
            raise UnsupportedError(f"{self.source}: tensor {name!r} has a dynamic or empty shape {shape}")
        data = self.buffer(t.Buffer(), dtype, shape, name)
        self.tensor_map[fb_index] = len(self.tensors)
        self.tensors.append(ir.Tensor(name, shape, dtype, self.quant(t, name), data))
        return self.tensor_map[fb_index]

    def quant(self, t, name: str) -> ir.QParams | None:
        q = t.Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        scale = q.ScaleAsNumpy().astype(np.float32)
        zp = q.ZeroPointAsNumpy().astype(np.int32) if q.ZeroPointLength() else np.zeros_like(scale, dtype=np.int32)
        if zp.size != scale.size:
            raise ModelError(f"{self.source}: tensor {name!r} has {scale.size} scales but {zp.size} zero points")
        if not np.all(scale > 0):
            raise ModelError(f"{self.source}: tensor {name!r} has a non-positive quantization scale")
        return ir.QParams(scale, zp, int(q.QuantizedDimension()))

    def buffer(self, index: int, dtype: str, shape, name: str):
        if index <= 0 or index >= self.model.BuffersLength():
            return None
        buf = self.model.Buffers(index)
        if buf.Offset() > 1:
            raise UnsupportedError(f"{self.source}: tensor {name!r} stores its data outside the flatbuffer")
        if buf.DataLength() == 0:
            return None
        raw = buf.DataAsNumpy().tobytes()
        count = int(np.prod(shape, dtype=np.int64))
        if len(raw) != count * np.dtype(dtype).itemsize:
            raise ModelError(f"{self.source}: tensor {name!r} holds {len(raw)} bytes, its shape {shape} needs {count * np.dtype(dtype).itemsize}")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    # operators -----------------------------------------------------------
    def op(self, index: int) -> ir.Op:
        fb = self.sg.Operators(index)
        code_entry = self.model.OperatorCodes(fb.OpcodeIndex())
        code = max(code_entry.BuiltinCode(), code_entry.DeprecatedBuiltinCode())
        op_name = _OP_NAMES.get(code, f"builtin {code}")
        if code == BuiltinOperator.CUSTOM:
            op_name = f"CUSTOM ({(code_entry.CustomCode() or b'?').decode()})"
        where = f"{self.source}: layer {index} ({op_name})"
        builder = _BUILDERS.get(op_name)
        if builder is None:
            raise UnsupportedError(f"{where}: unsupported op; tinysyn generates {', '.join(ir.SUPPORTED_OPS)}")
        inputs = [self.tensor(int(i)) for i in fb.InputsAsNumpy()] if fb.InputsLength() else []
        outputs = [self.tensor(int(i)) for i in fb.OutputsAsNumpy()] if fb.OutputsLength() else []
        opts = fb.BuiltinOptions()
        op = builder(self, where, inputs, outputs, opts)
        self.check_int8(where, op)
        return op

    def check_int8(self, where: str, op: ir.Op) -> None:
        for position, t in enumerate(op.inputs + op.outputs):
            if t < 0:
                continue
            tensor = self.tensors[t]
            is_bias = position == 2 and len(op.inputs) > 2 and t == op.inputs[2]
            if is_bias:
                if tensor.dtype != "int32" or not tensor.is_const:
                    raise UnsupportedError(f"{where}: bias {tensor.name!r} must be a constant int32 tensor")
            elif isinstance(op, ir.Reshape) and position == 1:
                continue  # the shape operand
            elif tensor.dtype != "int8" or tensor.quant is None:
                raise UnsupportedError(f"{where}: tensor {tensor.name!r} is {tensor.dtype} without int8 quantization")

    def options(self, where: str, opts, cls):
        if opts is None:
            raise ModelError(f"{where}: missing builtin options")
        o = cls()
        o.Init(opts.Bytes, opts.Pos)
        return o

    def activation(self, where: str, code: int) -> str:
        if code not in _ACTIVATIONS:
            raise UnsupportedError(f"{where}: fused activation {_ACT_NAMES.get(code, code)} is not supported")
        return _ACTIVATIONS[code]

    def padding(self, where: str, code: int) -> str:
        if code not in _PADDINGS:
            raise ModelError(f"{where}: unknown padding {code}")
        return _PADDINGS[code]

    def shapes(self, where, inputs, outputs, n_in):
        if len(inputs) < n_in or len(outputs) != 1 or any(i < 0 for i in inputs[:n_in]):
            raise ModelError(f"{where}: expected {n_in} inputs and 1 output, found {len(inputs)} and {len(outputs)}")
        return [self.tensors[i] for i in inputs if i >= 0], self.tensors[outputs[0]]

    def check_window_output(self, where, x, y, kernel, stride, dilation, padding, channels):
        if len(x.shape) != 4 or len(y.shape) != 4:
            raise UnsupportedError(f"{where}: expected 4-D NHWC tensors, found {x.shape} -> {y.shape}")
        if min(stride + dilation) < 1:
            raise ModelError(f"{where}: stride and dilation must be positive, found {stride} and {dilation}")
        expect = (x.shape[0],
                  out_size(padding, x.shape[1], kernel[0], stride[0], dilation[0]),
                  out_size(padding, x.shape[2], kernel[1], stride[1], dilation[1]), channels)
        if tuple(y.shape) != expect:
            raise ModelError(f"{where}: output shape {y.shape} does not match the computed {expect}")

    def check_weights(self, where, w, bias, channels):
        if not w.is_const:
            raise UnsupportedError(f"{where}: weights {w.name!r} are not constant")
        if np.any(w.quant.zero_point != 0):
            raise UnsupportedError(f"{where}: weights {w.name!r} are not symmetric (zero point != 0)")
        if w.quant.per_channel and w.quant.scale.size != channels:
            raise ModelError(f"{where}: weights {w.name!r} have {w.quant.scale.size} scales for {channels} channels")
        if bias is not None and bias.shape != (channels,):
            raise ModelError(f"{where}: bias {bias.name!r} has shape {bias.shape}, expected ({channels},)")


def _convolution(cls, options_class):
    """CONV_2D (filter [C_out, KH, KW, C_in]) or DEPTHWISE_CONV_2D (filter [1, KH, KW, C_in * M])."""
    depthwise = cls is ir.DepthwiseConv2D

    def build(r: _Reader, where, inputs, outputs, opts):
        (x, w, *rest), y = r.shapes(where, inputs, outputs, 2)
        o = r.options(where, opts, options_class)
        stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        padding = r.padding(where, o.Padding())
        if len(w.shape) != 4 or len(x.shape) != 4:
            raise ModelError(f"{where}: expected a 4-D input and filter, found {x.shape} and {w.shape}")
        if depthwise:
            if w.shape[0] != 1 or w.shape[3] % x.shape[3]:
                raise ModelError(f"{where}: filter {w.shape} is not [1, KH, KW, a multiple of {x.shape[3]}]")
            channels = w.shape[3]
        else:
            if w.shape[3] != x.shape[3]:
                raise UnsupportedError(f"{where}: grouped convolution (filter depth {w.shape[3]} for "
                                       f"{x.shape[3]} input channels)")
            channels = w.shape[0]
        r.check_window_output(where, x, y, w.shape[1:3], stride, dilation, padding, channels)
        r.check_weights(where, w, rest[0] if rest else None, channels)
        return cls(inputs, outputs, stride, dilation, padding, r.activation(where, o.FusedActivationFunction()))

    return build


def _fully_connected(r: _Reader, where, inputs, outputs, opts):
    (x, w, *rest), y = r.shapes(where, inputs, outputs, 2)
    o = r.options(where, opts, tflite.FullyConnectedOptions)
    if o.WeightsFormat() != 0:
        raise UnsupportedError(f"{where}: shuffled weights format is not supported")
    if len(w.shape) != 2 or x.size % w.shape[1]:
        raise ModelError(f"{where}: filter {w.shape} does not fit input {x.shape}")
    rows = x.size // w.shape[1]
    if y.size != rows * w.shape[0]:
        raise ModelError(f"{where}: output shape {y.shape} does not match {rows} rows of {w.shape[0]} units")
    r.check_weights(where, w, rest[0] if rest else None, w.shape[0])
    return ir.FullyConnected(inputs, outputs, r.activation(where, o.FusedActivationFunction()), bool(o.KeepNumDims()))


def _pool(cls):
    def build(r: _Reader, where, inputs, outputs, opts):
        (x,), y = r.shapes(where, inputs, outputs, 1)
        o = r.options(where, opts, tflite.Pool2DOptions)
        kernel, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
        padding = r.padding(where, o.Padding())
        if min(kernel) < 1:
            raise ModelError(f"{where}: filter size {kernel} must be positive")
        r.check_window_output(where, x, y, kernel, stride, (1, 1), padding, x.shape[-1])
        if x.zero_point != y.zero_point or x.scale != y.scale:
            raise UnsupportedError(f"{where}: input and output quantization differ; TFLM pools do not requantize")
        return cls(inputs, outputs, kernel, stride, padding, r.activation(where, o.FusedActivationFunction()))

    return build


def _add(r: _Reader, where, inputs, outputs, opts):
    (a, b), y = r.shapes(where, inputs, outputs, 2)
    if a.shape != b.shape or a.shape != y.shape:
        raise UnsupportedError(f"{where}: broadcasting ADD ({a.shape} + {b.shape}) is not supported")
    if a.is_const or b.is_const:
        raise UnsupportedError(f"{where}: ADD of a constant tensor is not supported")
    o = r.options(where, opts, tflite.AddOptions)
    return ir.Add(inputs, outputs, r.activation(where, o.FusedActivationFunction()))


def _reshape(r: _Reader, where, inputs, outputs, opts):
    (x, *_), y = r.shapes(where, inputs, outputs, 1)
    if x.size != y.size:
        raise ModelError(f"{where}: cannot reshape {x.shape} into {y.shape}")
    if x.scale != y.scale or x.zero_point != y.zero_point:
        raise UnsupportedError(f"{where}: RESHAPE that changes quantization is not supported")
    return ir.Reshape(inputs[:1], outputs)


def _softmax(r: _Reader, where, inputs, outputs, opts):
    (x,), y = r.shapes(where, inputs, outputs, 1)
    o = r.options(where, opts, tflite.SoftmaxOptions)
    if y.zero_point != -128 or y.scale != np.float32(1.0 / 256):
        raise UnsupportedError(f"{where}: int8 SOFTMAX output must have scale 1/256 and zero point -128 (TFLM)")
    return ir.Softmax(inputs, outputs, float(o.Beta()))


_BUILDERS = {
    "CONV_2D": _convolution(ir.Conv2D, tflite.Conv2DOptions),
    "DEPTHWISE_CONV_2D": _convolution(ir.DepthwiseConv2D, tflite.DepthwiseConv2DOptions),
    "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool(ir.AveragePool2D),
    "MAX_POOL_2D": _pool(ir.MaxPool2D),
    "ADD": _add,
    "RESHAPE": _reshape,
    "SOFTMAX": _softmax,
}
