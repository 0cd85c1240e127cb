"""Integer kernel parameters, derived from the IR exactly as TFLite Micro's Prepare does.

This is the "lowering" of the arithmetic contract: float scales become int32
multipliers and shifts, zero points become offsets, fused activations become a
clamp range. The NumPy kernels and the C emitter both read these objects, so
the C never re-derives a number on its own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ir
from ..errors import UnsupportedError
from .fixedpoint import quantize_multiplier, tflite_round

INT8_MIN, INT8_MAX = -128, 127
ADD_LEFT_SHIFT = 20  # TFLM's headroom for int8 ADD
SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5  # TFLM's kScaledDiffIntegerBits


@dataclass(frozen=True)
class Window:
    """Spatial geometry of a sliding-window op (conv, depthwise, pools)."""

    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    pad_h: int
    pad_w: int
    kernel_h: int
    kernel_w: int


@dataclass(frozen=True)
class ConvParams:
    """CONV_2D and DEPTHWISE_CONV_2D: per-output-channel requantization."""

    window: Window
    input_offset: int
    output_offset: int
    act_min: int
    act_max: int
    multiplier: np.ndarray  # int32 [C_out]
    shift: np.ndarray  # int32 [C_out]
    depth_multiplier: int = 1


@dataclass(frozen=True)
class FCParams:
    input_offset: int
    output_offset: int
    act_min: int
    act_max: int
    multiplier: np.ndarray  # int32 [1] per tensor, or [units] per channel
    shift: np.ndarray


@dataclass(frozen=True)
class PoolParams:
    window: Window
    act_min: int
    act_max: int


@dataclass(frozen=True)
class AddParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class SoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    diff_min: int


def out_size(padding: str, in_size: int, kernel: int, stride: int, dilation: int) -> int:
    """TFLite ComputeOutSize."""
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - effective) // stride


def pad_before(in_size: int, kernel: int, stride: int, dilation: int, out: int) -> int:
    """TFLite ComputePaddingWithOffset: the leading pad (the odd pixel goes after)."""
    effective = (kernel - 1) * dilation + 1
    total = max(0, (out - 1) * stride + effective - in_size)
    return total // 2


def make_window(in_shape, out_shape, kernel, stride, dilation, padding) -> Window:
    _, in_h, in_w, _ = in_shape
    _, out_h, out_w, _ = out_shape
    pad_h = pad_before(in_h, kernel[0], stride[0], dilation[0], out_h) if padding == "SAME" else 0
    pad_w = pad_before(in_w, kernel[1], stride[1], dilation[1], out_w) if padding == "SAME" else 0
    return Window(stride[0], stride[1], dilation[0], dilation[1], pad_h, pad_w, kernel[0], kernel[1])


def activation_range(activation: str, out: ir.Tensor) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized (the quantize step divides in float32)."""
    scale, zp = out.scale, out.zero_point

    def quantize(f: float) -> int:
        return zp + tflite_round(float(np.float32(f) / scale))

    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == "RELU6":
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    raise UnsupportedError(f"fused activation {activation} is not supported")


def _quantize_all(reals) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in reals]
    return (np.array([m for m, _ in pairs], dtype=np.int32), np.array([s for _, s in pairs], dtype=np.int32))


def conv_params(graph: ir.Graph, op) -> ConvParams:
    x, w, _ = (graph.op_inputs(op) + [None])[:3]
    y = graph.op_output(op)
    # PopulateConvolutionQuantizationParams: double(in) * double(filter[c]) / double(out)
    filter_scales = w.quant.scale.astype(np.float32)
    channels = y.shape[-1]
    if filter_scales.size == 1:
        filter_scales = np.repeat(filter_scales, channels)
    reals = [float(x.scale) * float(s) / float(y.scale) for s in filter_scales]
    multiplier, shift = _quantize_all(reals)
    act_min, act_max = activation_range(op.activation, y)
    kernel = (w.shape[1], w.shape[2])
    window = make_window(x.shape, y.shape, kernel, op.stride, op.dilation, op.padding)
    depth_multiplier = y.shape[-1] // x.shape[-1] if isinstance(op, ir.DepthwiseConv2D) else 1
    return ConvParams(window, -x.zero_point, y.zero_point, act_min, act_max, multiplier, shift, depth_multiplier)


def fc_params(graph: ir.Graph, op: ir.FullyConnected) -> FCParams:
    x, w = graph.op_inputs(op)[:2]
    y = graph.op_output(op)
    if w.quant.per_channel:
        reals = [float(x.scale) * float(s) / float(y.scale) for s in w.quant.scale.astype(np.float32)]
    else:
        # GetQuantizedConvolutionMultipler: the float32 product is widened, then divided
        reals = [float(np.float32(x.scale) * np.float32(w.scale)) / float(y.scale)]
    multiplier, shift = _quantize_all(reals)
    act_min, act_max = activation_range(op.activation, y)
    return FCParams(-x.zero_point, y.zero_point, act_min, act_max, multiplier, shift)


def pool_params(graph: ir.Graph, op) -> PoolParams:
    x = graph.op_inputs(op)[0]
    y = graph.op_output(op)
    window = make_window(x.shape, y.shape, op.filter, op.stride, (1, 1), op.padding)
    act_min, act_max = activation_range(op.activation, y)
    return PoolParams(window, act_min, act_max)


def add_params(graph: ir.Graph, op: ir.Add) -> AddParams:
    a, b = graph.op_inputs(op)
    y = graph.op_output(op)
    twice_max = 2.0 * float(max(a.scale, b.scale))
    m1, s1 = quantize_multiplier(float(a.scale) / twice_max)
    m2, s2 = quantize_multiplier(float(b.scale) / twice_max)
    mo, so = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * float(y.scale)))
    act_min, act_max = activation_range(op.activation, y)
    return AddParams(-a.zero_point, -b.zero_point, y.zero_point, ADD_LEFT_SHIFT, m1, s1, m2, s2, mo, so, act_min, act_max)


def softmax_params(graph: ir.Graph, op: ir.Softmax) -> SoftmaxParams:
    x = graph.op_inputs(op)[0]
    bits = SOFTMAX_SCALED_DIFF_INTEGER_BITS
    # PreprocessSoftmaxScaling, then CalculateInputRadius
    real = min(float(np.float32(op.beta)) * float(x.scale) * (1 << (31 - bits)), (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier(real)
    max_input_rescaled = 1.0 * ((1 << bits) - 1) * (1 << (31 - bits)) / (1 << left_shift)
    return SoftmaxParams(multiplier, left_shift, -int(np.floor(max_input_rescaled)))


def layer_params(graph: ir.Graph, op: ir.Op):
    """The integer parameters of one layer (None for ops that need none)."""
    if isinstance(op, ir.Convolution):
        return conv_params(graph, op)
    if isinstance(op, ir.FullyConnected):
        return fc_params(graph, op)
    if isinstance(op, ir.Pool2D):
        return pool_params(graph, op)
    if isinstance(op, ir.Add):
        return add_params(graph, op)
    if isinstance(op, ir.Softmax):
        return softmax_params(graph, op)
    return None
