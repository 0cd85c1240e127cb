"""tinysyn alq on a .tflite: a trained digits CNN written as one is quantized from its own weights; models the
ALQ format cannot hold and broken files are one-line errors that write nothing."""
from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from conftest import model_path
from test_alq_cli import one_line_error, tinysyn

from codegen import ir
from codegen.alq import format as alq_format
from codegen.alq import reference
from codegen.alq import train as alq_train
from codegen.alq.export import check
from codegen.errors import UnsupportedError
from codegen.frontends.tflite import load
from codegen.frontends.tflite_writer import write
from codegen.train import data
from codegen.train.builtin import digits_cnn
from codegen.train.graph import build
from codegen.train.quantize import bias_data, weight_quant

PRETRAIN = 600  # float steps behind the .tflite: about 91% on digits
STEPS = 40  # ALQ steps, from the .tflite and from scratch alike
PIXELS = ir.QParams(np.array([1 / 255], np.float32), np.array([-128], np.int32))  # real 0..1, the builtin's pixels


def write_digits_tflite(path, params: tuple[dict, dict], graph: ir.Graph, classes: int = 10) -> None:
    """``graph`` (builtin:digits-cnn) with float ``params`` as int8 per-channel weights; its input covers real
    0..1, the pixels the weights were trained on. ``classes`` > 10 pads the head with zero rows."""
    weights, biases = params
    tensors = list(graph.tensors)
    tensors[graph.inputs[0]] = replace(tensors[graph.inputs[0]], quant=PIXELS)
    for i in weights:
        op = graph.ops[i]
        w, b = op.inputs[1], op.inputs[2]
        real, bias = weights[i], biases[i]
        if isinstance(op, ir.FullyConnected) and classes > len(real):  # the head, with zero rows added
            real, bias = np.pad(real, ((0, classes - len(real)), (0, 0))), np.pad(bias, (0, classes - len(bias)))
            tensors[w] = replace(tensors[w], shape=real.shape)
            for t in (b, op.outputs[0], graph.outputs[0]):
                tensors[t] = replace(tensors[t], shape=(*tensors[t].shape[:-1], classes))
        axis = 3 if isinstance(op, ir.DepthwiseConv2D) else 0
        q, wq = weight_quant(real.reshape(tensors[w].shape), axis)
        scale = float(tensors[op.inputs[0]].scale)
        bq = ir.QParams((scale * wq.scale.astype(np.float64)).astype(np.float32), np.zeros(wq.scale.size, np.int32))
        tensors[w] = replace(tensors[w], data=q, quant=wq)
        tensors[b] = replace(tensors[b], data=bias_data(bias, scale, wq.scale, str(path)), quant=bq)
    path.write_bytes(write(replace(graph, tensors=tensors)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """builtin:digits-cnn pre-trained in float: (its .tflite, the float weights and biases, the builtin graph)."""
    t = alq_train.load("builtin:digits-cnn", "digits", alq_train.Options(pretrain=PRETRAIN))
    params = alq_train.pretrain(t)
    assert t.accuracy(*params) > 0.85
    path = tmp_path_factory.mktemp("tflite") / "digits.tflite"
    write_digits_tflite(path, params, t.graph)
    return path, params, t.graph


def file_bits(model: alq_format.AlqModel) -> float:
    """Eq. 2.2 from the file: weight bits (I_g n_g) over all ALQ weights."""
    layers = [layer for layer in model.layers if layer.alq]
    bits = sum(int((layer.counts * layer.group_lengths()).sum()) for layer in layers)
    return bits / sum(layer.units * layer.length for layer in layers)


def alq_run(tmp_path, model, *args) -> tuple[dict, alq_format.AlqModel, str]:
    out, report = tmp_path / "m.npz", tmp_path / "r.json"
    r = tinysyn("alq", model, "--avg-bits", 2, "--steps", STEPS, "--json", report, "-o", out, *args)
    assert r.exit_code == 0, r.output
    return json.loads(report.read_text()), alq_format.read(out), r.output


def test_a_trained_tflite_is_quantized_from_its_own_weights(trained, tmp_path):
    path = trained[0]
    summary, model, output = alq_run(tmp_path, path)
    assert "float accuracy 0.9" in output.splitlines()[0] and "(0 steps)" in output  # no pre-training by default
    assert summary["avg_bits"] <= 2 and file_bits(model) == pytest.approx(summary["avg_bits"], abs=1e-3)
    assert file_bits(model) > 1.9
    # the integer model reads the digits the way tinysyn train feeds a .tflite: over its input's real range
    digits = data.load("digits", model.input_shape, 10, build(load(path)).input_range)
    assert model.input_frac == -digits.exp == 6
    hits = float((reference.predict(model, digits.x_test) == digits.y_test).mean())
    assert hits == summary["int_accuracy"] and f"integer test accuracy {100 * hits:.1f}%" in output
    assert hits > 0.5  # chance is 0.1
    scratch, _, _ = alq_run(tmp_path / "scratch", "builtin:digits-cnn", "--pretrain-steps", 0)
    assert hits > scratch["int_accuracy"] + 0.2, scratch  # the same steps from random weights


def test_other_classes_get_a_fresh_head(trained, tmp_path):
    path, params, graph = tmp_path / "twelve.tflite", *trained[1:]
    write_digits_tflite(path, params, graph, classes=12)
    t = alq_train.load(str(path), "digits", alq_train.Options())
    assert t.tg.classes == 10 and not t.tg.layers[-1].weights.any()
    assert alq_train.pretrain_steps(t) == alq_train.HEAD_PRETRAIN
    same = alq_train.load(str(trained[0]), "digits", alq_train.Options())
    assert alq_train.pretrain_steps(same) == 0 and same.tg.layers[-1].weights.any()
    assert alq_train.pretrain_steps(alq_train.load(str(path), "digits", alq_train.Options(pretrain=7))) == 7


def nothing_written(tmp_path) -> None:
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("m.npz", ".m.npz"))]


def test_resnet_add_is_refused_before_training(tmp_path):
    r = tinysyn("alq", model_path("pretrainedResnet_quant"), "--avg-bits", 2, "-o", tmp_path / "m.npz")
    one_line_error(r, 3, "pretrainedResnet_quant.tflite: layer 3 (ADD): ALQ has no such layer")
    assert "sketched" not in r.output
    nothing_written(tmp_path)


def test_a_truncated_tflite_gets_the_frontends_error(trained, tmp_path):
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(trained[0].read_bytes()[:2000])
    one_line_error(tinysyn("alq", cut, "--avg-bits", 2, "-o", tmp_path / "m.npz"), 2,
                   "corrupt or truncated TFLite flatbuffer")
    nothing_written(tmp_path)


@pytest.mark.parametrize("index, change, text", [
    (0, lambda op: replace(op, activation="RELU6"), "layer 0 (CONV_2D): fused RELU6"),
    (1, lambda op: replace(op, dilation=(2, 2)), "layer 1 (DEPTHWISE_CONV_2D): dilated"),
    (3, lambda op: ir.MaxPool2D(op.inputs, op.outputs, op.filter, op.stride), "layer 3 (MAX_POOL_2D): ALQ has no such"),
    (3, lambda op: replace(op, padding="SAME"), "layer 3 (AVERAGE_POOL_2D): average pool 2x2 SAME"),
    (3, lambda op: replace(op, filter=(3, 2)), "layer 3 (AVERAGE_POOL_2D): average pool 3x2"),
    (5, lambda op: replace(op, inputs=[0, *op.inputs[1:]]), "layer 5 (FULLY_CONNECTED): ALQ models are chains"),
    (6, lambda op: ir.Reshape(op.inputs, op.outputs), "layer 6 (RESHAPE): ALQ drops a reshape"),
])
def test_what_the_format_cannot_hold_is_named_by_op_and_index(index, change, text):
    graph = digits_cnn()
    check(graph)  # the builtin itself passes
    graph.ops[index] = change(graph.ops[index])
    with pytest.raises(UnsupportedError, match=r"^builtin:digits_cnn: " + re.escape(text)):
        check(graph)
