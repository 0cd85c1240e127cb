"""Frontend errors: one line, naming the file, and the layer and op where there is one."""
import numpy as np
import pytest
from conftest import model_path
from hypothesis import given
from hypothesis import strategies as st
from tflite_builder import ModelBuilder, conv_options, fb

from codegen import ir
from codegen.errors import ModelError, UnsupportedError
from codegen.frontends.tflite import load, parse

KWS = model_path("kws_ref_model")


def test_loads_shared_model_ops_in_order():
    g = load(KWS)
    assert [op.OP for op in g.ops] == (["CONV_2D"] + ["DEPTHWISE_CONV_2D", "CONV_2D"] * 4
                                       + ["AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"])
    first = g.ops[0]
    assert isinstance(first, ir.Conv2D) and first.stride == (2, 2) and first.padding == "SAME"
    assert first.activation == "RELU"


def test_not_a_tflite_file(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match=r"model.tflite: not a TFLite flatbuffer"):
        load(bad)


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="cannot read model"):
        load(tmp_path / "absent.tflite")


@given(st.integers(8, 53935))
def test_any_truncation_is_a_model_error(cut):
    data = KWS.read_bytes()[:cut]
    with pytest.raises((ModelError, UnsupportedError)) as info:
        parse(data, source="cut.tflite")
    assert "\n" not in str(info.value) and str(info.value).startswith("cut.tflite")


def test_float_model_is_rejected_with_the_tensor_named():
    with pytest.raises(UnsupportedError, match="FLOAT32; only fully-int8"):
        load(model_path("kws_ref_model_float32"))


def one_op_model(code, options_type, options, extra_input=None):
    b = ModelBuilder()
    x = b.tensor([1, 4, 4, 2], scale=0.1, zero_point=0)
    inputs = [x] + ([extra_input(b)] if extra_input else [])
    y = b.tensor([1, 4, 4, 2], scale=0.1, zero_point=0)
    b.op(code, inputs, [y], options_type, options)
    return b.build([x], [y])


def test_unsupported_op_names_op_layer_and_file():
    model = one_op_model(fb.BuiltinOperator.TANH, 0, None)
    with pytest.raises(UnsupportedError) as info:
        parse(model, source="tanh.tflite")
    assert str(info.value).startswith("tanh.tflite: layer 0 (TANH): unsupported op")


def test_unsupported_fused_activation():
    opts = conv_options((1, 1), (1, 1), "SAME", "TANH")

    def weights(b):
        return b.tensor([2, 1, 1, 2], scale=[0.1, 0.1], data=np.ones((2, 1, 1, 2), np.int8))

    model = one_op_model(fb.BuiltinOperator.CONV_2D, fb.BuiltinOptions.Conv2DOptions, opts, weights)
    with pytest.raises(UnsupportedError, match=r"layer 0 \(CONV_2D\): fused activation TANH"):
        parse(model, source="m.tflite")


def test_wrong_output_shape_is_a_model_error():
    b = ModelBuilder()
    x = b.tensor([1, 4, 4, 2], scale=0.1, zero_point=0)
    w = b.tensor([2, 3, 3, 2], scale=[0.1, 0.1], data=np.ones((2, 3, 3, 2), np.int8))
    y = b.tensor([1, 4, 4, 2], scale=0.1, zero_point=0)  # VALID 3x3 would give 2x2
    b.op(fb.BuiltinOperator.CONV_2D, [x, w], [y], fb.BuiltinOptions.Conv2DOptions,
         conv_options((1, 1), (1, 1), "VALID", "NONE"))
    with pytest.raises(ModelError, match=r"layer 0 \(CONV_2D\): output shape \(1, 4, 4, 2\) does not match"):
        parse(b.build([x], [y]), source="m.tflite")


def test_batch_other_than_one_is_rejected():
    b = ModelBuilder()
    x = b.tensor([2, 4], scale=0.1, zero_point=0)
    y = b.tensor([2, 4], scale=1 / 256, zero_point=-128)
    b.op(fb.BuiltinOperator.SOFTMAX, [x], [y], fb.BuiltinOptions.SoftmaxOptions, fb.SoftmaxOptionsT())
    with pytest.raises(UnsupportedError, match="leading dimension 1"):
        parse(b.build([x], [y]), source="m.tflite")
