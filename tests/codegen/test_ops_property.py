"""Per-op property tests over random shapes, strides, paddings, depth multipliers, zero points and scales.

Each example builds a one-op .tflite model, then checks
TFLM interpreter == NumPy reference == generated C built with ASan and UBSan,
and the generated C's DSP path on the emulated Cortex-M4.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from tflite_builder import (ModelBuilder, add_options, conv_options, fb, fc_options, pool_options, softmax_options,
                            tflm_layer_outputs)

from codegen import ref
from codegen.emit import c as emit_c
from codegen.frontends.tflite import parse
from codegen.hostrun import run_sanitized
from codegen.pipeline import compile_graph
from codegen.ref.params import out_size
from host.bench import run_on_board

SAMPLES = 4
zero_points = st.integers(-128, 127)
activations = st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
paddings = st.sampled_from(["SAME", "VALID"])


def scales(lo=1e-3, hi=1.0):
    """float32 scales, as TFLite stores them."""
    return st.floats(float(np.float32(lo)), float(np.float32(hi)), width=32)


def check(model: bytes, out_tensor: int, seed: int, tmp_path) -> None:
    program = compile_graph(parse(model, source="property-model"))
    shape = program.graph.tensor(program.graph.inputs[0]).shape[1:]
    x = np.random.default_rng(seed).integers(-128, 128, size=(SAMPLES, *shape), dtype=np.int8)
    expected = tflm_layer_outputs(model, x, [out_tensor])[0]
    ours = ref.run(program.graph, x)
    assert np.array_equal(ours.reshape(expected.shape), expected), "NumPy reference differs from TFLM"
    emit_c.write(program, tmp_path / "gen")
    c_out = run_sanitized(program, tmp_path / "gen", x)[-1]
    assert np.array_equal(c_out, ours), "generated C differs from the NumPy reference"
    # the same op on the emulated Cortex-M4, DSP path: raises BenchError when a layer's CRC differs
    run_on_board(program, tmp_path / "board", "dsp")


def window_geometry(draw, channels_in):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(paddings)
    h = draw(st.integers((kh - 1) * dilation[0] + 1, 10))
    w = draw(st.integers((kw - 1) * dilation[1] + 1, 10))
    out_hw = (out_size(padding, h, kh, stride[0], dilation[0]), out_size(padding, w, kw, stride[1], dilation[1]))
    return (h, w), (kh, kw), stride, dilation, padding, out_hw


@st.composite
def conv_models(draw, depthwise: bool):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c_in = draw(st.integers(1, 8))
    multiplier = draw(st.integers(1, 3)) if depthwise else 1
    c_out = c_in * multiplier if depthwise else draw(st.integers(1, 8))
    (h, w), (kh, kw), stride, dilation, padding, (oh, ow) = window_geometry(draw, c_in)
    in_scale, out_scale = draw(scales(0.01, 0.5)), draw(scales(0.01, 1.0))
    w_scales = rng.uniform(0.001, 0.05, size=c_out).astype(np.float32)
    b = ModelBuilder()
    x = b.tensor([1, h, w, c_in], scale=in_scale, zero_point=draw(zero_points))
    filt_shape = [1, kh, kw, c_out] if depthwise else [c_out, kh, kw, c_in]
    weights = rng.integers(-127, 128, size=filt_shape).astype(np.int8)
    wt = b.tensor(filt_shape, scale=w_scales, zero_point=0, data=weights, axis=3 if depthwise else 0)
    bias = rng.integers(-(1 << 12), 1 << 12, size=c_out).astype(np.int32)
    bt = b.tensor([c_out], dtype="int32", scale=w_scales * np.float32(in_scale), zero_point=0, data=bias)
    y = b.tensor([1, oh, ow, c_out], scale=out_scale, zero_point=draw(zero_points))
    if depthwise:
        opts = conv_options(stride, dilation, padding, draw(activations), depth_multiplier=multiplier)
        b.op(fb.BuiltinOperator.DEPTHWISE_CONV_2D, [x, wt, bt], [y], fb.BuiltinOptions.DepthwiseConv2DOptions, opts)
    else:
        opts = conv_options(stride, dilation, padding, draw(activations))
        b.op(fb.BuiltinOperator.CONV_2D, [x, wt, bt], [y], fb.BuiltinOptions.Conv2DOptions, opts)
    return b.build([x], [y]), y


@st.composite
def fc_models(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    depth, units = draw(st.integers(1, 64)), draw(st.integers(1, 16))
    per_channel = draw(st.booleans())
    in_scale = draw(scales(0.01, 0.5))
    w_scales = rng.uniform(0.001, 0.05, size=units if per_channel else 1).astype(np.float32)
    b = ModelBuilder()
    x = b.tensor([1, depth], scale=in_scale, zero_point=draw(zero_points))
    wt = b.tensor([units, depth], scale=w_scales, zero_point=0,
                  data=rng.integers(-127, 128, size=(units, depth)).astype(np.int8))
    inputs = [x, wt]
    if draw(st.booleans()):
        inputs.append(b.tensor([units], dtype="int32", scale=w_scales * np.float32(in_scale), zero_point=0,
                               data=rng.integers(-(1 << 12), 1 << 12, size=units).astype(np.int32)))
    y = b.tensor([1, units], scale=draw(scales(0.01, 1.0)), zero_point=draw(zero_points))
    b.op(fb.BuiltinOperator.FULLY_CONNECTED, inputs, [y], fb.BuiltinOptions.FullyConnectedOptions,
         fc_options(draw(activations)))
    return b.build([x], [y]), y


@st.composite
def pool_models(draw, code):
    c = draw(st.integers(1, 8))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(paddings)
    h, w = draw(st.integers(kh, 10)), draw(st.integers(kw, 10))
    oh, ow = out_size(padding, h, kh, stride[0], 1), out_size(padding, w, kw, stride[1], 1)
    scale, zp = draw(scales(0.01, 0.5)), draw(zero_points)
    b = ModelBuilder()
    x = b.tensor([1, h, w, c], scale=scale, zero_point=zp)
    y = b.tensor([1, oh, ow, c], scale=scale, zero_point=zp)
    b.op(code, [x], [y], fb.BuiltinOptions.Pool2DOptions, pool_options((kh, kw), stride, padding, draw(activations)))
    return b.build([x], [y]), y


@st.composite
def add_models(draw):
    """ADD of the input and a rescaled copy of it (a 1x1 depthwise conv), so both operands vary."""
    shape = [1, draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 8))]
    c = shape[-1]
    b = ModelBuilder()
    x1 = b.tensor(shape, scale=draw(scales(0.005, 0.5)), zero_point=draw(zero_points))
    x2 = b.tensor(shape, scale=draw(scales(0.005, 0.5)), zero_point=draw(zero_points))
    unit = b.tensor([1, 1, 1, c], scale=np.full(c, 0.01, np.float32), zero_point=0,
                    data=np.full((1, 1, 1, c), draw(st.integers(-127, 127)), np.int8), axis=3)
    b.op(fb.BuiltinOperator.DEPTHWISE_CONV_2D, [x1, unit], [x2], fb.BuiltinOptions.DepthwiseConv2DOptions,
         conv_options((1, 1), (1, 1), "VALID", "NONE", depth_multiplier=1))
    y = b.tensor(shape, scale=draw(scales(0.01, 1.0)), zero_point=draw(zero_points))
    b.op(fb.BuiltinOperator.ADD, [x1, x2], [y], fb.BuiltinOptions.AddOptions, add_options(draw(activations)))
    return b.build([x1], [y]), y


@st.composite
def softmax_models(draw):
    shape = [1, draw(st.integers(1, 40))] if draw(st.booleans()) else [1, draw(st.integers(1, 4)), draw(st.integers(1, 20))]
    b = ModelBuilder()
    x = b.tensor(shape, scale=draw(scales(0.005, 0.5)), zero_point=draw(zero_points))
    y = b.tensor(shape, scale=1.0 / 256, zero_point=-128)
    beta = draw(st.sampled_from([1.0, 0.5, 2.0, 0.1]))
    b.op(fb.BuiltinOperator.SOFTMAX, [x], [y], fb.BuiltinOptions.SoftmaxOptions, softmax_options(beta))
    return b.build([x], [y]), y


seeds = st.integers(0, 2**31)


@given(conv_models(depthwise=False), seeds)
def test_conv2d(tmp_path_factory, model, seed):
    check(model[0], model[1], seed, tmp_path_factory.mktemp("conv"))


@given(conv_models(depthwise=True), seeds)
def test_depthwise_conv2d(tmp_path_factory, model, seed):
    check(model[0], model[1], seed, tmp_path_factory.mktemp("dw"))


@given(fc_models(), seeds)
def test_fully_connected(tmp_path_factory, model, seed):
    check(model[0], model[1], seed, tmp_path_factory.mktemp("fc"))


@given(pool_models(fb.BuiltinOperator.AVERAGE_POOL_2D), seeds)
def test_average_pool2d(tmp_path_factory, model, seed):
    check(model[0], model[1], seed, tmp_path_factory.mktemp("avg"))


@given(pool_models(fb.BuiltinOperator.MAX_POOL_2D), seeds)
def test_max_pool2d(tmp_path_factory, model, seed):
    check(model[0], model[1], seed, tmp_path_factory.mktemp("max"))


@given(add_models(), seeds)
def test_add(tmp_path_factory, model, seed):
    check(model[0], model[1], seed, tmp_path_factory.mktemp("add"))


@given(softmax_models(), seeds)
def test_softmax(tmp_path_factory, model, seed):
    check(model[0], model[1], seed, tmp_path_factory.mktemp("softmax"))


def test_reshape_aliases_its_input(tmp_path):
    """RESHAPE moves no bytes: its output shares the arena slot of its input."""
    b = ModelBuilder()
    x = b.tensor([1, 2, 3, 4], scale=0.1, zero_point=3)
    shape = b.tensor([2], dtype="int32", data=np.array([1, 24], np.int32))
    y = b.tensor([1, 24], scale=0.1, zero_point=3)
    opts = fb.ReshapeOptionsT()
    opts.newShape = [1, 24]
    b.op(fb.BuiltinOperator.RESHAPE, [x, shape], [y], fb.BuiltinOptions.ReshapeOptions, opts)
    model = b.build([x], [y])
    program = compile_graph(parse(model))
    assert program.plan.tensor_offset[program.graph.inputs[0]] == program.plan.tensor_offset[program.graph.outputs[0]]
    check(model, y, 1, tmp_path)
