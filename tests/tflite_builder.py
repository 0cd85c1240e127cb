"""Build small int8 .tflite models for tests, with the schema shipped in the tflite-micro wheel.

Tests use it to make models the frontend has never seen (random single-op
models for property tests, models with unsupported ops) and to run them in the
TFLM interpreter, the external oracle.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
from tflite_micro.python.tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

ACTIVATIONS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}
ARENA_BYTES = 4 << 20  # TFLM defaults to 10x the model size, too small for tiny test models
PADDINGS = {"SAME": fb.Padding.SAME, "VALID": fb.Padding.VALID}


@dataclass
class ModelBuilder:
    tensors: list = field(default_factory=list)
    buffers: list = field(default_factory=lambda: [fb.BufferT()])  # buffer 0 is the empty sentinel
    operators: list = field(default_factory=list)
    opcodes: list = field(default_factory=list)

    def tensor(self, shape, dtype="int8", scale=None, zero_point=None, data=None, name=None, axis=0) -> int:
        t = fb.TensorT()
        t.shape = list(shape)
        t.type = {"int8": fb.TensorType.INT8, "int32": fb.TensorType.INT32,
                  "float32": fb.TensorType.FLOAT32}[dtype]
        t.name = (name or f"t{len(self.tensors)}").encode()
        if scale is not None:
            q = fb.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(scale)]
            zps = np.atleast_1d(zero_point if zero_point is not None else 0)
            q.zeroPoint = [int(z) for z in np.resize(zps, len(q.scale))]
            q.quantizedDimension = axis
            t.quantization = q
        t.buffer = 0
        if data is not None:
            b = fb.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data, dtype=dtype).tobytes(), dtype=np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, code: int, inputs, outputs, options_type=0, options=None) -> None:
        if code not in self.opcodes:
            self.opcodes.append(code)
        o = fb.OperatorT()
        o.opcodeIndex = self.opcodes.index(code)
        o.inputs, o.outputs = list(inputs), list(outputs)
        o.builtinOptionsType = options_type
        o.builtinOptions = options
        self.operators.append(o)

    def build(self, inputs, outputs) -> bytes:
        sg = fb.SubGraphT()
        sg.tensors, sg.operators = self.tensors, self.operators
        sg.inputs, sg.outputs = list(inputs), list(outputs)
        m = fb.ModelT()
        m.version = 3
        m.subgraphs = [sg]
        m.buffers = self.buffers
        m.operatorCodes = []
        for code in self.opcodes:
            oc = fb.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = 1
            m.operatorCodes.append(oc)
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def conv_options(stride, dilation, padding, activation, depth_multiplier=None):
    o = fb.DepthwiseConv2DOptionsT() if depth_multiplier is not None else fb.Conv2DOptionsT()
    o.strideH, o.strideW = stride
    o.dilationHFactor, o.dilationWFactor = dilation
    o.padding = PADDINGS[padding]
    o.fusedActivationFunction = ACTIVATIONS[activation]
    if depth_multiplier is not None:
        o.depthMultiplier = depth_multiplier
    return o


def pool_options(filter_hw, stride, padding, activation):
    o = fb.Pool2DOptionsT()
    o.filterHeight, o.filterWidth = filter_hw
    o.strideH, o.strideW = stride
    o.padding = PADDINGS[padding]
    o.fusedActivationFunction = ACTIVATIONS[activation]
    return o


def fc_options(activation):
    o = fb.FullyConnectedOptionsT()
    o.fusedActivationFunction = ACTIVATIONS[activation]
    return o


def add_options(activation):
    o = fb.AddOptionsT()
    o.fusedActivationFunction = ACTIVATIONS[activation]
    return o


def softmax_options(beta):
    o = fb.SoftmaxOptionsT()
    o.beta = beta
    return o


def tflm_layer_outputs(model: bytes, x: np.ndarray, tensor_indices: list[int]) -> list[np.ndarray]:
    """Run a batch through TFLM one sample at a time; return the requested tensors, batched on axis 0."""
    interp = runtime.Interpreter.from_bytes(model, arena_size=ARENA_BYTES,
                                             intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    outs = [[] for _ in tensor_indices]
    for sample in x:
        shape = interp.get_input_details(0)["shape"]
        interp.set_input(sample.reshape(shape), 0)
        interp.invoke()
        for k, t in enumerate(tensor_indices):
            outs[k].append(np.asarray(interp.GetTensor(t, 0)["tensor_data"]))
    return [np.stack(o) for o in outs]
