"""Models defined in the project, named ``builtin:<name>`` on the command line.

A builtin is an ordinary IR graph (int8 weights, per-channel scales), so the
training graph is built from it exactly as from an imported ``.tflite``. Its
weights are a seeded He-normal initialisation; activation scales are nominal
(training quantizes activations dynamically and never reads them), except the
softmax output's, 1/256 with zero point -128 as TFLM's int8 softmax requires, so
the graph written as a .tflite (frontends/tflite_writer.py) reads back.
"""
from __future__ import annotations

import numpy as np

from .. import ir
from ..errors import InputError

PREFIX = "builtin:"
NOMINAL_ACTIVATION = ir.QParams(np.array([1.0 / 16], np.float32), np.array([-128], np.int32))
SOFTMAX_OUTPUT = ir.QParams(np.array([1.0 / 256], np.float32), np.array([-128], np.int32))  # fixed by TFLM's int8 softmax


class _Builder:
    def __init__(self, name: str, seed: int):
        self.tensors: list[ir.Tensor] = []
        self.ops: list[ir.Op] = []
        self.rng = np.random.default_rng(seed)
        self.name = name

    def activation(self, name: str, shape, quant: ir.QParams = NOMINAL_ACTIVATION) -> int:
        self.tensors.append(ir.Tensor(name, (1, *shape), "int8", quant))
        return len(self.tensors) - 1

    def weights(self, name: str, shape, fan_in: int, channel_axis: int) -> int:
        real = self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        axes = tuple(a for a in range(len(shape)) if a != channel_axis % len(shape))
        scale = (np.abs(real).max(axis=axes) / 127.0).astype(np.float32)
        shaped = scale.reshape([-1 if a == channel_axis % len(shape) else 1 for a in range(len(shape))])
        q = np.clip(np.round(real / shaped), -127, 127).astype(np.int8)
        quant = ir.QParams(scale, np.zeros(scale.size, np.int32), channel_axis % len(shape))
        self.tensors.append(ir.Tensor(name, tuple(shape), "int8", quant, q))
        return len(self.tensors) - 1

    def bias(self, name: str, channels: int) -> int:
        quant = ir.QParams(np.full(channels, 1.0, np.float32), np.zeros(channels, np.int32))
        self.tensors.append(ir.Tensor(name, (channels,), "int32", quant, np.zeros(channels, np.int32)))
        return len(self.tensors) - 1

    def conv(self, x: int, name: str, out_shape, kernel, channels_in, channels_out, stride=1, depthwise=False):
        if depthwise:
            w = self.weights(f"{name}/weights", (1, kernel, kernel, channels_out), kernel * kernel, -1)
            cls = ir.DepthwiseConv2D
        else:
            w = self.weights(f"{name}/weights", (channels_out, kernel, kernel, channels_in), kernel * kernel * channels_in, 0)
            cls = ir.Conv2D
        b = self.bias(f"{name}/bias", channels_out)
        y = self.activation(name, out_shape)
        self.ops.append(cls([x, w, b], [y], stride=(stride, stride), padding="SAME", activation="RELU"))
        return y

    def graph(self, x: int, y: int) -> ir.Graph:
        g = ir.Graph(self.name, self.tensors, self.ops, [x], [y], source=f"{PREFIX}{self.name}")
        g.validate()
        return g


def digits_cnn(seed: int = 0) -> ir.Graph:
    """A depthwise-separable CNN for 8x8 digits: conv 3x3 (8), dw 3x3 /2, pw 1x1 (32), avgpool 2x2, fc (10)."""
    b = _Builder("digits_cnn", seed)
    x = b.activation("input", (8, 8, 1))
    h = b.conv(x, "conv0", (8, 8, 8), 3, 1, 8)
    h = b.conv(h, "dw1", (4, 4, 8), 3, 8, 8, stride=2, depthwise=True)
    h = b.conv(h, "pw2", (4, 4, 32), 1, 8, 32)
    pooled = b.activation("pool3", (2, 2, 32))
    b.ops.append(ir.AveragePool2D([h], [pooled], filter=(2, 2), stride=(2, 2), padding="VALID"))
    flat = b.activation("flatten4", (128,))
    b.ops.append(ir.Reshape([pooled], [flat]))
    w = b.weights("fc5/weights", (10, 128), 128, 0)
    bias = b.bias("fc5/bias", 10)
    logits = b.activation("fc5", (10,))
    b.ops.append(ir.FullyConnected([flat, w, bias], [logits]))
    probs = b.activation("softmax6", (10,), SOFTMAX_OUTPUT)
    b.ops.append(ir.Softmax([logits], [probs]))
    return b.graph(x, probs)


BUILTINS = {"digits-cnn": digits_cnn}


def is_builtin(model: str) -> bool:
    return model.startswith(PREFIX)


def load_graph(model: str, seed: int = 0) -> ir.Graph:
    """A builtin by name, else a .tflite through the checked reader (one-line errors)."""
    from ..frontends.tflite import load

    return load_builtin(model, seed) if is_builtin(model) else load(model)


def load_builtin(model: str, seed: int = 0) -> ir.Graph:
    name = model[len(PREFIX):]
    if name not in BUILTINS:
        raise InputError(f"{model}: unknown builtin model; available: {', '.join(PREFIX + n for n in BUILTINS)}")
    return BUILTINS[name](seed)
