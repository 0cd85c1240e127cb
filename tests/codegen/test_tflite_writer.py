"""The .tflite writer: parse(write(g)) is g, field by field, and TFLM runs write(g) exactly as the reference runs g."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import test_ops_property as one_op
import tflite
from conftest import SHARED_MODELS, model_path
from hypothesis import given
from hypothesis import strategies as st
from tflite.BuiltinOperator import BuiltinOperator
from tflite_builder import fb, tflm_layer_outputs

from codegen import ir, ref
from codegen.errors import UnsupportedError
from codegen.frontends.tflite import load, parse
from codegen.frontends.tflite_writer import write
from codegen.ref import kernels
from codegen.ref.params import layer_params
from codegen.train.builtin import load_builtin

SAMPLES = 20


def graph(name: str) -> ir.Graph:
    return load_builtin(f"builtin:{name}") if name == "digits-cnn" else load(model_path(name))


def assert_same_tensor(a: ir.Tensor, b: ir.Tensor, where: str) -> None:
    assert (a.name, a.shape, a.dtype) == (b.name, b.shape, b.dtype), where
    assert (a.data is None) == (b.data is None), f"{where}: constant or not"
    if a.data is not None:
        assert a.data.dtype == b.data.dtype and np.array_equal(a.data, b.data), f"{where}: data"
    assert (a.quant is None) == (b.quant is None), f"{where}: quantized or not"
    if a.quant is not None:
        for field in ("scale", "zero_point"):
            x, y = getattr(a.quant, field), getattr(b.quant, field)
            assert x.dtype == y.dtype and np.array_equal(x, y), f"{where}: quantization {field}"
        assert a.quant.axis == b.quant.axis, f"{where}: quantized dimension"


def assert_same_graph(g: ir.Graph, h: ir.Graph) -> None:
    """Same ops with the same attributes, reading and writing equal tensors; shared tensors stay shared."""
    assert len(g.ops) == len(h.ops)
    index: dict[int, int] = {}  # tensor of g -> tensor of h

    def same(i: int, j: int, where: str) -> None:
        assert index.setdefault(i, j) == j, f"{where}: tensor {i} is no longer one tensor"
        if i >= 0:
            assert_same_tensor(g.tensors[i], h.tensors[j], f"{where}: tensor {g.tensors[i].name!r}")

    for k, (a, b) in enumerate(zip(g.ops, h.ops)):
        where = f"layer {k} ({a.OP})"
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            if f.name not in ("inputs", "outputs"):
                assert getattr(a, f.name) == getattr(b, f.name), f"{where}: {f.name}"
        assert len(a.inputs) == len(b.inputs) and len(a.outputs) == len(b.outputs), where
        for i, j in zip(a.inputs + a.outputs, b.inputs + b.outputs):
            same(i, j, where)
    for i, j in zip(g.inputs + g.outputs, h.inputs + h.outputs, strict=True):
        same(i, j, "graph input/output")


@pytest.mark.parametrize("name", [*SHARED_MODELS, "digits-cnn"])
def test_round_trip_gives_back_the_graph(name):
    g = graph(name)
    data = write(g)
    model = tflite.Model.GetRootAsModel(data, 0)
    assert data[4:8] == b"TFL3" and model.Version() == 3
    written = model.Subgraphs(0)
    for k, op in enumerate(g.ops):
        code = model.OperatorCodes(written.Operators(k).OpcodeIndex())
        assert code.BuiltinCode() == code.DeprecatedBuiltinCode() == getattr(BuiltinOperator, op.OP), f"layer {k}"
    assert_same_graph(g, parse(data))


def test_the_comparison_sees_a_changed_attribute_and_a_changed_scale():
    g = load_builtin("builtin:digits-cnn")
    changed = copy.deepcopy(g)
    changed.ops[1].activation = "RELU6"
    with pytest.raises(AssertionError, match=r"layer 1 \(DEPTHWISE_CONV_2D\): activation"):
        assert_same_graph(g, parse(write(changed)))
    changed = copy.deepcopy(g)
    w = changed.tensors[changed.ops[0].inputs[1]]
    w.quant = dataclasses.replace(w.quant, scale=w.quant.scale * np.float32(2))
    with pytest.raises(AssertionError, match="quantization scale"):
        assert_same_graph(g, parse(write(changed)))


def calibrated(graph: ir.Graph, x: np.ndarray) -> ir.Graph:
    """The graph with each conv/FC output quantization fitted to its real range on x (RELU: [0, max]).

    The builtin's nominal activation scale (1/16) saturates most outputs; fitted ones give the oracle real work.
    """
    g = copy.deepcopy(graph)
    values = {g.inputs[0]: x}
    sums = {ir.Conv2D: kernels.conv2d_sums, ir.DepthwiseConv2D: kernels.depthwise_conv2d_sums}
    for op in g.ops:
        x_t, w, bias = (g.op_inputs(op) + [None] * 3)[:3]
        y = g.op_output(op)
        if isinstance(op, (ir.Convolution, ir.FullyConnected)):
            p, data = layer_params(g, op), values[op.inputs[0]]
            acc = (kernels.fully_connected_sums(data, w.data, p) if isinstance(op, ir.FullyConnected)
                   else sums[type(op)](data, w.data, p, y.shape[1:3]))
            real = (acc + (bias.data if bias is not None else 0)) * x_t.scale * w.quant.scale
            lo = 0.0 if op.activation == "RELU" else min(float(real.min()), 0.0)
            scale = np.float32((max(float(real.max()), 0.0) - lo) / 255)
            zero_point = int(np.clip(np.round(-128 - lo / scale), -128, 127))
            y.quant = ir.QParams(np.array([scale], np.float32), np.array([zero_point], np.int32))
        elif isinstance(op, (ir.Pool2D, ir.Reshape)):
            y.quant = x_t.quant  # TFLM pools and reshapes keep their input's quantization
        values[op.outputs[0]] = ref.run_layer(g, op, values)
    return g


def assert_tflm_equals_reference(g: ir.Graph, x: np.ndarray) -> None:
    """Every layer output of write(g) in TFLM equals the reference's (IR tensor i is flatbuffer tensor i)."""
    reference = ref.run_graph(g, x)
    layers = [op.outputs[0] for op in g.ops]
    for k, (t, oracle) in enumerate(zip(layers, tflm_layer_outputs(write(g), x, layers))):
        ours = reference[t].reshape(oracle.shape)
        assert np.array_equal(ours, oracle), f"layer {k} ({g.ops[k].OP}): {int((ours != oracle).sum())} values differ"
    assert np.array_equal(reference[g.outputs[0]], ref.run(g, x))


def test_tflm_runs_the_written_builtin_as_the_reference():
    builtin = load_builtin("builtin:digits-cnn")
    x = ref.random_inputs(builtin, SAMPLES, seed=7)
    g = calibrated(builtin, x)
    outputs = ref.run_graph(g, x)
    for op in g.ops:  # fitted scales: no layer is stuck at one value
        assert np.unique(outputs[op.outputs[0]]).size > 8, f"{op.OP} output is degenerate"
    assert_tflm_equals_reference(g, x)


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_tflm_runs_a_rewritten_shared_model_as_the_reference(name):
    g = load(model_path(name))
    assert_tflm_equals_reference(g, ref.random_inputs(g, SAMPLES, seed=11))


ONE_OP_MODELS = {"conv2d": one_op.conv_models(depthwise=False), "depthwise_conv2d": one_op.conv_models(depthwise=True),
                 "fully_connected": one_op.fc_models(), "add": one_op.add_models(), "softmax": one_op.softmax_models(),
                 "average_pool2d": one_op.pool_models(fb.BuiltinOperator.AVERAGE_POOL_2D),
                 "max_pool2d": one_op.pool_models(fb.BuiltinOperator.MAX_POOL_2D)}


@pytest.mark.parametrize("kind", ONE_OP_MODELS)
@given(data=st.data())
def test_every_op_and_option_round_trips_and_runs_in_tflm(kind, data):
    """Random single-op models: strides, dilations, depth multipliers, per-channel FC, zero points, activations."""
    g = parse(data.draw(ONE_OP_MODELS[kind])[0], source="property-model")
    assert_same_graph(g, parse(write(g)))
    assert_tflm_equals_reference(g, ref.random_inputs(g, 4, data.draw(st.integers(0, 2**31))))


def test_options_the_shared_models_leave_at_their_defaults():
    g = load(model_path("kws_ref_model"))
    fc, softmax = g.ops[-2:]
    fc.keep_num_dims, softmax.beta = True, 0.5
    assert_same_graph(g, parse(write(g)))
    assert_tflm_equals_reference(g, ref.random_inputs(g, 4, seed=3))


def test_unsupported_tensor_type_and_op_are_one_line_errors():
    g = load_builtin("builtin:digits-cnn")
    bad = copy.deepcopy(g)
    bad.tensors[bad.ops[0].inputs[2]].dtype = "float32"
    with pytest.raises(UnsupportedError, match=r"^builtin:digits_cnn: tensor 'conv0/bias' is float32[^\n]*$"):
        write(bad)

    @dataclasses.dataclass
    class Tanh(ir.Op):
        OP = "TANH"

    bad = copy.deepcopy(g)
    bad.ops[-1] = Tanh(bad.ops[-1].inputs, bad.ops[-1].outputs)
    with pytest.raises(UnsupportedError, match=r"^builtin:digits_cnn: layer 6 \(TANH\): cannot write[^\n]*$"):
        write(bad)
