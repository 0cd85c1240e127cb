"""NumPy int8 kernels with TFLite Micro's reference-kernel semantics.

Each kernel takes int8 NHWC arrays with any batch size, the constant tensors of
the layer and its :mod:`params` object, and returns the int8 output. Sums are
taken in int64 (exact), then requantized with the int32 primitives of
:mod:`fixedpoint`, so the result is the integer TFLM computes.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .fixedpoint import multiply_by_quantized_multiplier, trunc_div
from .params import AddParams, ConvParams, FCParams, PoolParams, Window


def _requantize(acc, multiplier, shift, output_offset, act_min, act_max) -> np.ndarray:
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + output_offset
    return np.clip(out, act_min, act_max).astype(np.int8)


def receptive_fields(x: np.ndarray, win: Window, out_hw: tuple[int, int], fill: int) -> np.ndarray:
    """All receptive fields as [N, OH, OW, KH, KW, C], out-of-image taps set to ``fill``."""
    _n, in_h, in_w, _c = x.shape
    out_h, out_w = out_hw
    ext_h = (out_h - 1) * win.stride_h + (win.kernel_h - 1) * win.dilation_h + 1
    ext_w = (out_w - 1) * win.stride_w + (win.kernel_w - 1) * win.dilation_w + 1
    after_h = max(0, ext_h - in_h - win.pad_h)
    after_w = max(0, ext_w - in_w - win.pad_w)
    padded = np.pad(x, ((0, 0), (win.pad_h, after_h), (win.pad_w, after_w), (0, 0)), constant_values=fill)
    span_h = (win.kernel_h - 1) * win.dilation_h + 1
    span_w = (win.kernel_w - 1) * win.dilation_w + 1
    view = sliding_window_view(padded, (span_h, span_w), axis=(1, 2))  # [N, H', W', C, span_h, span_w]
    view = view[:, : (out_h - 1) * win.stride_h + 1 : win.stride_h, : (out_w - 1) * win.stride_w + 1 : win.stride_w]
    view = view[..., :: win.dilation_h, :: win.dilation_w]  # [N, OH, OW, C, KH, KW]
    return view.transpose(0, 1, 2, 4, 5, 3)


def conv2d_sums(x, weights, p: ConvParams, out_hw) -> np.ndarray:
    """CONV_2D's int64 sums before bias: weights [C_out, KH, KW, C_in]; padded taps contribute zero."""
    shifted = x.astype(np.int64) + p.input_offset
    patches = receptive_fields(shifted, p.window, out_hw, fill=0)
    return np.einsum("nhwijc,oijc->nhwo", patches, weights.astype(np.int64))


def depthwise_conv2d_sums(x, weights, p: ConvParams, out_hw) -> np.ndarray:
    """DEPTHWISE_CONV_2D's sums: weights [1, KH, KW, C_in * M]; output channel = in_channel * M + m."""
    c_in = x.shape[-1]
    shifted = x.astype(np.int64) + p.input_offset
    patches = receptive_fields(shifted, p.window, out_hw, fill=0)  # [N, OH, OW, KH, KW, C_in]
    w = weights.astype(np.int64).reshape(weights.shape[1], weights.shape[2], c_in, p.depth_multiplier)
    return np.einsum("nhwijc,ijcm->nhwcm", patches, w).reshape(*patches.shape[:3], c_in * p.depth_multiplier)


def fully_connected_sums(x, weights, p: FCParams) -> np.ndarray:
    """FULLY_CONNECTED's sums over the last axis: weights [units, depth]; returns [rows, units]."""
    rows = x.reshape(-1, weights.shape[1]).astype(np.int64) + p.input_offset
    return rows @ weights.astype(np.int64).T


def _biased_output(acc, bias, p) -> np.ndarray:
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    return _requantize(acc, p.multiplier, p.shift, p.output_offset, p.act_min, p.act_max)


def conv2d(x, weights, bias, p: ConvParams, out_hw) -> np.ndarray:
    return _biased_output(conv2d_sums(x, weights, p, out_hw), bias, p)


def depthwise_conv2d(x, weights, bias, p: ConvParams, out_hw) -> np.ndarray:
    return _biased_output(depthwise_conv2d_sums(x, weights, p, out_hw), bias, p)


def fully_connected(x, weights, bias, p: FCParams) -> np.ndarray:
    return _biased_output(fully_connected_sums(x, weights, p), bias, p)


def average_pool2d(x, p: PoolParams, out_hw) -> np.ndarray:
    """AVERAGE_POOL_2D: mean of the in-image taps, rounded half away from zero."""
    total = receptive_fields(x.astype(np.int64), p.window, out_hw, fill=0).sum(axis=(3, 4))
    ones = np.ones((1,) + x.shape[1:3] + (1,), dtype=np.int64)
    count = receptive_fields(ones, p.window, out_hw, fill=0).sum(axis=(3, 4))
    half = count // 2
    avg = np.where(total > 0, trunc_div(total + half, count), trunc_div(total - half, count))
    return np.clip(avg, p.act_min, p.act_max).astype(np.int8)


def max_pool2d(x, p: PoolParams, out_hw) -> np.ndarray:
    """MAX_POOL_2D over the in-image taps (padding never wins)."""
    patches = receptive_fields(x.astype(np.int64), p.window, out_hw, fill=np.iinfo(np.int64).min)
    return np.clip(patches.max(axis=(3, 4)), p.act_min, p.act_max).astype(np.int8)


def add(a, b, p: AddParams) -> np.ndarray:
    """ADD of two same-shape int8 tensors with TFLM's 20-bit headroom rescaling."""

    def scaled(v, offset, multiplier, shift):
        return multiply_by_quantized_multiplier((v.astype(np.int64) + offset) << p.left_shift, multiplier, shift)

    raw = scaled(a, p.input1_offset, p.input1_multiplier, p.input1_shift) + scaled(
        b, p.input2_offset, p.input2_multiplier, p.input2_shift
    )
    return _requantize(raw, p.output_multiplier, p.output_shift, p.output_offset, p.act_min, p.act_max)
