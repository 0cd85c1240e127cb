"""IR -> fully-int8 TFLite flatbuffer (schema 3, "TFL3"): the inverse of the reader.

``write(graph)`` serializes every op and option :mod:`codegen.frontends.tflite`
reads, so ``parse(write(g))`` gives back g's ops, their attributes and every
tensor they reference (shape, dtype, data, per-tensor or per-channel quantization).
IR tensor i is written as flatbuffer tensor i, so TFLM finds a layer's output under
the IR's index. RESHAPE is written with one input and its shape in ReshapeOptions,
since the IR keeps no shape operand; a tensor no op references is written and never
read back. The flatbuffer is built with the ``tflite`` package's generated builder
functions; tables are written bottom-up, each one's vectors and children first.
"""
from __future__ import annotations

import flatbuffers
import numpy as np
import tflite
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding
from tflite.TensorType import TensorType

from .. import ir
from ..errors import InputError, UnsupportedError
from .tflite import FILE_IDENTIFIER

SCHEMA_VERSION = 3
DESCRIPTION = b"tinysyn"
# builtin_code is an int32; deprecated_builtin_code an int8 that says "look at builtin_code" above 127.
PLACEHOLDER_FOR_GREATER_OP_CODES = 127
# The op versions the TFLite converter gives int8 kernels (TFLM ignores them, TFLite checks them).
OP_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "AVERAGE_POOL_2D": 2,
               "MAX_POOL_2D": 2, "ADD": 2, "RESHAPE": 1, "SOFTMAX": 2}
_DTYPES = {"int8": TensorType.INT8, "int32": TensorType.INT32}
_ACTIVATIONS = {name: getattr(ActivationFunctionType, name) for name in ir.ACTIVATIONS}
_PADDINGS = {"SAME": Padding.SAME, "VALID": Padding.VALID}


def write(graph: ir.Graph) -> bytes:
    """The graph as .tflite bytes; UnsupportedError/InputError (one line) if it cannot be written."""
    return _Writer(graph).model()


def _vector(b: flatbuffers.Builder, values, dtype) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype=np.dtype(dtype).newbyteorder("<")))


class _Writer:
    def __init__(self, graph: ir.Graph):
        self.graph = graph
        self.b = flatbuffers.Builder(1024)
        self.opcodes: list[str] = []  # op names, in order of first use
        self.buffers: list[bytes] = [b""]  # buffer 0 is the empty sentinel of non-constant tensors

    def model(self) -> bytes:
        g, b = self.graph, self.b
        operators = [self.operator(i, op) for i, op in enumerate(g.ops)]
        tensors = [self.tensor(t) for t in g.tensors]
        subgraph = self.subgraph(tensors, operators)
        codes = [self.opcode(name) for name in self.opcodes]
        buffers = [self.buffer(data) for data in self.buffers]
        vectors = self.offsets(codes), self.offsets([subgraph]), self.offsets(buffers), b.CreateString(DESCRIPTION)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, SCHEMA_VERSION)
        for add, vector in zip((tflite.ModelAddOperatorCodes, tflite.ModelAddSubgraphs, tflite.ModelAddBuffers,
                                tflite.ModelAddDescription), vectors):
            add(b, vector)
        b.Finish(tflite.ModelEnd(b), file_identifier=FILE_IDENTIFIER)
        return bytes(b.Output())

    def offsets(self, offsets: list[int]) -> int:
        """A vector of tables, written after the tables themselves."""
        self.b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            self.b.PrependUOffsetTRelative(offset)
        return self.b.EndVector()

    # tensors -------------------------------------------------------------
    def tensor(self, t: ir.Tensor) -> int:
        b = self.b
        if t.dtype not in _DTYPES:
            raise UnsupportedError(f"{self.graph.source or self.graph.name}: tensor {t.name!r} is {t.dtype}; "
                                   "a .tflite is written with int8 and int32 tensors only")
        buffer = 0
        if t.is_const:
            if t.data.size != t.size:
                raise InputError(f"{self.graph.source or self.graph.name}: tensor {t.name!r} holds "
                                 f"{t.data.size} values, its shape {t.shape} needs {t.size}")
            buffer = len(self.buffers)
            self.buffers.append(np.asarray(t.data, dtype=np.dtype(t.dtype).newbyteorder("<")).tobytes())
        name = b.CreateString(t.name)
        shape = _vector(b, t.shape, np.int32)
        quant = self.quantization(t.quant) if t.quant is not None else None
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, _DTYPES[t.dtype])
        tflite.TensorAddBuffer(b, buffer)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        return tflite.TensorEnd(b)

    def quantization(self, q: ir.QParams) -> int:
        b = self.b
        scale = _vector(b, q.scale, np.float32)
        zero_point = _vector(b, q.zero_point, np.int64)
        tflite.QuantizationParametersStart(b)
        tflite.QuantizationParametersAddScale(b, scale)
        tflite.QuantizationParametersAddZeroPoint(b, zero_point)
        tflite.QuantizationParametersAddQuantizedDimension(b, q.axis)
        return tflite.QuantizationParametersEnd(b)

    def buffer(self, data: bytes) -> int:
        b = self.b
        vector = b.CreateByteVector(data) if data else None
        tflite.BufferStart(b)
        if vector is not None:
            tflite.BufferAddData(b, vector)
        return tflite.BufferEnd(b)

    # operators -----------------------------------------------------------
    def operator(self, index: int, op: ir.Op) -> int:
        b = self.b
        where = f"{self.graph.source or self.graph.name}: layer {index} ({op.OP or type(op).__name__})"
        write_options = _OPTIONS.get(type(op))
        if write_options is None:
            raise UnsupportedError(f"{where}: cannot write this op to .tflite; the writer knows {', '.join(ir.SUPPORTED_OPS)}")
        if getattr(op, "activation", "NONE") not in _ACTIVATIONS or getattr(op, "padding", "SAME") not in _PADDINGS:
            raise UnsupportedError(f"{where}: activation {getattr(op, 'activation', None)!r} or padding "
                                   f"{getattr(op, 'padding', None)!r} has no TFLite code")
        if op.OP not in self.opcodes:
            self.opcodes.append(op.OP)
        options_type, options = write_options(b, self.graph, op)
        inputs, outputs = _vector(b, op.inputs, np.int32), _vector(b, op.outputs, np.int32)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, self.opcodes.index(op.OP))
        tflite.OperatorAddInputs(b, inputs)
        tflite.OperatorAddOutputs(b, outputs)
        tflite.OperatorAddBuiltinOptionsType(b, options_type)
        tflite.OperatorAddBuiltinOptions(b, options)
        return tflite.OperatorEnd(b)

    def opcode(self, name: str) -> int:
        b, code = self.b, getattr(BuiltinOperator, name)
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, PLACEHOLDER_FOR_GREATER_OP_CODES))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, OP_VERSIONS[name])
        return tflite.OperatorCodeEnd(b)

    def subgraph(self, tensors: list[int], operators: list[int]) -> int:
        b, g = self.b, self.graph
        vectors = (self.offsets(tensors), _vector(b, g.inputs, np.int32), _vector(b, g.outputs, np.int32),
                   self.offsets(operators), b.CreateString(g.name))
        tflite.SubGraphStart(b)
        for add, vector in zip((tflite.SubGraphAddTensors, tflite.SubGraphAddInputs, tflite.SubGraphAddOutputs,
                                tflite.SubGraphAddOperators, tflite.SubGraphAddName), vectors):
            add(b, vector)
        return tflite.SubGraphEnd(b)


# op options: each returns (BuiltinOptions type, table offset) ------------
def _window(b, table: str, op, dilation: bool) -> None:
    """The fields Conv2D, DepthwiseConv2D and Pool2D options share: padding, strides, the fused activation
    (and the dilations of the convolutions), added through ``<table>Add<Field>``."""
    fields = [("Padding", _PADDINGS[op.padding]), ("StrideH", op.stride[0]), ("StrideW", op.stride[1]),
              ("FusedActivationFunction", _ACTIVATIONS[op.activation])]
    if dilation:
        fields += [("DilationHFactor", op.dilation[0]), ("DilationWFactor", op.dilation[1])]
    for name, value in fields:
        getattr(tflite, f"{table}Add{name}")(b, value)


def _conv2d(b, g: ir.Graph, op: ir.Conv2D):
    tflite.Conv2DOptionsStart(b)
    _window(b, "Conv2DOptions", op, dilation=True)
    return BuiltinOptions.Conv2DOptions, tflite.Conv2DOptionsEnd(b)


def _depthwise_conv2d(b, g: ir.Graph, op: ir.DepthwiseConv2D):
    x, w = g.op_inputs(op)[:2]
    tflite.DepthwiseConv2DOptionsStart(b)
    _window(b, "DepthwiseConv2DOptions", op, dilation=True)
    tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, w.shape[3] // x.shape[3])  # filter [1, KH, KW, C_in * M]
    return BuiltinOptions.DepthwiseConv2DOptions, tflite.DepthwiseConv2DOptionsEnd(b)


def _fully_connected(b, g: ir.Graph, op: ir.FullyConnected):
    tflite.FullyConnectedOptionsStart(b)
    tflite.FullyConnectedOptionsAddFusedActivationFunction(b, _ACTIVATIONS[op.activation])
    tflite.FullyConnectedOptionsAddKeepNumDims(b, op.keep_num_dims)
    return BuiltinOptions.FullyConnectedOptions, tflite.FullyConnectedOptionsEnd(b)


def _pool2d(b, g: ir.Graph, op: ir.Pool2D):
    tflite.Pool2DOptionsStart(b)
    _window(b, "Pool2DOptions", op, dilation=False)
    tflite.Pool2DOptionsAddFilterHeight(b, op.filter[0])
    tflite.Pool2DOptionsAddFilterWidth(b, op.filter[1])
    return BuiltinOptions.Pool2DOptions, tflite.Pool2DOptionsEnd(b)


def _add(b, g: ir.Graph, op: ir.Add):
    tflite.AddOptionsStart(b)
    tflite.AddOptionsAddFusedActivationFunction(b, _ACTIVATIONS[op.activation])
    return BuiltinOptions.AddOptions, tflite.AddOptionsEnd(b)


def _reshape(b, g: ir.Graph, op: ir.Reshape):
    new_shape = _vector(b, g.op_output(op).shape, np.int32)
    tflite.ReshapeOptionsStart(b)
    tflite.ReshapeOptionsAddNewShape(b, new_shape)
    return BuiltinOptions.ReshapeOptions, tflite.ReshapeOptionsEnd(b)


def _softmax(b, g: ir.Graph, op: ir.Softmax):
    tflite.SoftmaxOptionsStart(b)
    tflite.SoftmaxOptionsAddBeta(b, op.beta)
    return BuiltinOptions.SoftmaxOptions, tflite.SoftmaxOptionsEnd(b)


_OPTIONS = {ir.Conv2D: _conv2d, ir.DepthwiseConv2D: _depthwise_conv2d, ir.FullyConnected: _fully_connected,
            ir.AveragePool2D: _pool2d, ir.MaxPool2D: _pool2d, ir.Add: _add, ir.Reshape: _reshape,
            ir.Softmax: _softmax}
