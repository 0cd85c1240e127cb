"""The sparse kernels' DSP paths on QEMU mps2-an386: every layer of a sub-net
== codegen/dress/reference.py, through the bench firmware's CRCs (host/bench_dress.py's run_subnet).

Host tests compile the portable path only (no DSP extension on the host), so this is where the Cortex-M4
path is checked bit for bit. The cases cover its table shapes: u8 columns in row chunks with pad columns
(KWS, row 16), u16 columns (ResNet-8's 3x3x32 and 3x3x64 filters, one row each), nnz with a tail past the
last whole step of 4, nnz = 1, depthwise and fully connected layers, a last partial block of pixels. The
shared models' fully connected layers have 64 inputs, so a small built graph covers the fully connected kernel's
u16 columns (300 inputs, rows of several passes of its unrolled loop), a narrower activation range (RELU6) and
units the fused requantization does not take (multipliers of exactly 2^30), another several input rows.
"""
import dataclasses

import numpy as np
import pytest
from conftest import model_path
from tflite_builder import ModelBuilder, conv_options, fb

from codegen import ir
from codegen.dress import oneshot
from codegen.dress.lower import write_c
from codegen.frontends import tflite_writer
from codegen.train.builtin import _Builder
from host.bench_dress import run_subnet

CASES = [("kws_ref_model", 16, (0.5, 0.98)), ("pretrainedResnet_quant", "filter", (0.9,))]


@pytest.mark.parametrize("name, row, sparsities", CASES, ids=[f"{m}-row{r}" for m, r, _ in CASES])
def test_dsp_sparse_path_on_the_emulated_board_equals_the_reference(tmp_path, name, row, sparsities):
    model = oneshot.one_shot(model_path(name).read_bytes(), sparsities, row, recalibrate="none", name=name)
    program, _ = write_c(model, tmp_path / "gen", target="cortex-m4", source=name)
    nnz = {int(n) for layer in model.layers for n in layer.nnz}
    if row == 16:
        assert 1 in nnz and any(n % 4 for n in nnz)  # a lone entry and tails past the unrolled steps
    else:
        assert any(layer.shape.row_length > 256 for layer in model.layers)  # u16 columns
    for k in range(model.subnets):
        report = run_subnet(model, program, k, tmp_path / "gen", tmp_path / f"subnet{k}")  # BenchError on a mismatch
        assert len(report.layers) == len(program.layers)


def _conv_geometries() -> bytes:
    """Convolutions the shared models lack, as a .tflite: dilation 2 with SAME padding on rows that are not whole
    blocks of 4 (block patches from a padded copy, taps in runs per column), stride 2 on whole blocks (row patches
    keeping a row), and dilation.h 2 over 324 positions with RELU6 (row patches refilled every row, u16 columns,
    rows longer than one accumulation, the clamped requantization)."""
    b = _Builder("conv_geometries", seed=5)
    x = b.activation("input", (13, 18, 6))
    convs = (("conv0", (20, 3, 3, 6), (1, 1), (2, 2), "SAME", (13, 18), "NONE"),
             ("conv1", (36, 3, 3, 20), (2, 2), (1, 1), "VALID", (6, 8), "NONE"),
             ("conv2", (24, 3, 3, 36), (1, 1), (2, 1), "SAME", (6, 8), "RELU6"))
    for name, shape, stride, dilation, padding, out_hw, act in convs:
        w, bias = b.weights(f"{name}/weights", shape, int(np.prod(shape[1:])), 0), b.bias(f"{name}/bias", shape[0])
        y = b.activation(name, (*out_hw, shape[0]))
        b.ops.append(ir.Conv2D([x, w, bias], [y], stride=stride, dilation=dilation, padding=padding, activation=act))
        x_next, x = y, y
    return tflite_writer.write(b.graph(0, x_next))


def test_dsp_sparse_convolution_geometries_equal_the_reference(tmp_path):
    model = oneshot.one_shot(_conv_geometries(), (0.1, 0.5, 0.97), "filter", recalibrate="none",
                             name="conv_geometries")
    program, _ = write_c(model, tmp_path / "gen", target="cortex-m4", source="conv_geometries")
    nnz = [int(n) for layer in model.layers for n in layer.nnz]
    assert max(nnz) > 252 and min(nnz) < 4  # several accumulations per row, and the variant without steps
    for k in range(model.subnets):
        report = run_subnet(model, program, k, tmp_path / "gen", tmp_path / f"subnet{k}")  # BenchError on a mismatch
        assert len(report.layers) == len(program.layers)


def _wide_fc() -> bytes:
    """input (300) -> FC 24 -> FC 10 with RELU6 -> FC 8 whose scales are powers of two (multipliers of exactly
    2^30: the general requantization), as a .tflite."""
    b = _Builder("wide_fc", seed=7)
    x = b.activation("input", (300,))
    w, bias = b.weights("fc0/weights", (24, 300), 300, 0), b.bias("fc0/bias", 24)
    h = b.activation("fc0", (24,))
    b.ops.append(ir.FullyConnected([x, w, bias], [h]))
    w, bias = b.weights("fc1/weights", (10, 24), 24, 0), b.bias("fc1/bias", 10)
    h1 = b.activation("fc1", (10,))
    b.ops.append(ir.FullyConnected([h, w, bias], [h1], activation="RELU6"))
    w, bias = b.weights("fc2/weights", (8, 10), 10, 0), b.bias("fc2/bias", 8)
    b.tensors[w] = dataclasses.replace(b.tensors[w], quant=ir.QParams(np.full(8, 2.0**-7, np.float32),
                                                                        np.zeros(8, np.int32), 0))
    y = b.activation("fc2", (8,), ir.QParams(np.array([0.25], np.float32), np.array([0], np.int32)))
    b.ops.append(ir.FullyConnected([h1, w, bias], [y]))
    return tflite_writer.write(b.graph(x, y))


def test_dsp_sparse_fully_connected_with_u16_columns_equals_the_reference(tmp_path):
    model = oneshot.one_shot(_wide_fc(), (0.5, 0.8, 0.97), "filter", recalibrate="none", name="wide_fc")
    program, _ = write_c(model, tmp_path / "gen", target="cortex-m4", source="wide_fc")
    assert model.layers[0].shape.row_length > 256 and any(n % 4 for n in model.layers[0].nnz)
    for k in range(model.subnets):
        report = run_subnet(model, program, k, tmp_path / "gen", tmp_path / f"subnet{k}")  # BenchError on a mismatch
        assert len(report.layers) == len(program.layers)


def test_dsp_sparse_fully_connected_of_several_input_rows_equals_the_reference(tmp_path):
    """3 input rows: the layer calls tsn_sparse_fully_connected_s8, which runs the sub-net's fast path row by row."""
    b = _Builder("rows_fc", seed=3)
    x = b.activation("input", (3, 40))
    w, bias = b.weights("fc0/weights", (12, 40), 40, 0), b.bias("fc0/bias", 12)
    y = b.activation("fc0", (3, 12))
    b.ops.append(ir.FullyConnected([x, w, bias], [y]))
    model = oneshot.one_shot(tflite_writer.write(b.graph(x, y)), (0.5, 0.8), "filter", recalibrate="none",
                             name="rows_fc")
    program, _ = write_c(model, tmp_path / "gen", target="cortex-m4", source="rows_fc")
    assert all(program.layers[0].sparse["fused"])
    for k in range(model.subnets):
        run_subnet(model, program, k, tmp_path / "gen", tmp_path / f"subnet{k}")  # BenchError on a mismatch


def _depthwise_model() -> bytes:
    """Two depthwise layers the KWS and ResNet cases do not have: 3x3 stride 2 SAME with depth multiplier 2 and
    RELU6 (a clamp narrower than int8), then 3x3 dilation 2 SAME; 6 input channels (a whole group of 4 copied by
    word and a last group of 2). Channel 0's scale takes the general requantization, channel 1's a right shift of 1."""
    rng = np.random.default_rng(7)
    b = ModelBuilder()
    in_scale, mid_scale, out_scale = 0.05, 0.1, 0.2
    x = b.tensor([1, 9, 11, 6], scale=in_scale, zero_point=3)
    layers = [(6, 2, (2, 2), (1, 1), "RELU6", [1, 5, 6, 12], mid_scale, -128),
              (12, 1, (1, 1), (2, 2), "NONE", [1, 5, 6, 12], out_scale, 5)]
    y, x_scale = x, in_scale
    for c_in, mult, stride, dilation, act, out_shape, y_scale, y_zp in layers:
        inp, c_out = y, c_in * mult
        w_scales = rng.uniform(0.002, 0.02, size=c_out).astype(np.float32)
        w_scales[0] = 3 * y_scale / x_scale  # an effective scale above 1: a left shift
        w_scales[1] = 0.35 * y_scale / x_scale  # in [0.25, 0.5): a right shift of 1
        wt = b.tensor([1, 3, 3, c_out], scale=w_scales, zero_point=0, axis=3,
                      data=rng.integers(-127, 128, size=(1, 3, 3, c_out)).astype(np.int8))
        bt = b.tensor([c_out], dtype="int32", scale=w_scales * np.float32(x_scale), zero_point=0,
                      data=rng.integers(-(1 << 10), 1 << 10, size=c_out).astype(np.int32))
        y = b.tensor(out_shape, scale=y_scale, zero_point=y_zp)
        b.op(fb.BuiltinOperator.DEPTHWISE_CONV_2D, [inp, wt, bt], [y], fb.BuiltinOptions.DepthwiseConv2DOptions,
             conv_options(stride, dilation, "SAME", act, depth_multiplier=mult))
        x_scale = y_scale
    return b.build([x], [y])


def test_depthwise_dsp_path_on_strides_dilations_multipliers_and_every_tap_count(tmp_path):
    """Stride 2, dilation 2, depth multiplier 2, every requantization form, and sub-nets of 7, 4, 3, 2 and 1 taps:
    the depthwise pixel loops for 1 to 4 taps in registers and the generic one."""
    model = oneshot.one_shot(_depthwise_model(), (0.3, 0.6, 0.7, 0.8, 0.9), "filter", recalibrate="none",
                             name="depthwise")
    nnz = {int(n) for layer in model.layers for n in layer.nnz}
    assert nnz >= {1, 2, 3, 4} and max(nnz) > 4
    program, _ = write_c(model, tmp_path / "gen", target="cortex-m4", source="depthwise")
    for k in range(model.subnets):
        report = run_subnet(model, program, k, tmp_path / "gen", tmp_path / f"subnet{k}")  # BenchError on a mismatch
        assert len(report.layers) == len(program.layers)
