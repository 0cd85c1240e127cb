"""The memory planner: live tensors never share bytes, aliases do, and the peak is what it reports."""
import pytest
from conftest import SHARED_MODELS, model_path

from codegen import ir
from codegen.frontends.tflite import load
from codegen.pipeline import compile_graph


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_buffers_alive_at_the_same_time_do_not_overlap(name):
    program = compile_graph(load(model_path(name)))
    bufs = program.plan.buffers
    for i, a in enumerate(bufs):
        assert a.offset % 4 == 0
        assert a.offset + a.size <= program.plan.peak_bytes
        for b in bufs[i + 1:]:
            if a.overlaps(b):
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_peak_is_at_least_the_largest_live_set_and_reshape_aliases(name):
    program = compile_graph(load(model_path(name)))
    g = program.graph
    for layer in program.layers:
        op = layer.op
        if isinstance(op, ir.Reshape):
            assert program.plan.tensor_offset[op.inputs[0]] == program.plan.tensor_offset[op.outputs[0]]
    live = max(sum(b.size for b in program.plan.buffers if b.first <= i <= b.last) for i in range(len(g.ops)))
    assert program.plan.peak_bytes >= live


def test_kws_plan_is_two_activation_buffers():
    """KWS's largest tensors are 25x5x64 = 8000 bytes; a layer needs its input and output: 16000."""
    program = compile_graph(load(model_path("kws_ref_model")))
    assert program.plan.peak_bytes == 2 * 25 * 5 * 64


def test_resnet_add_runs_in_place():
    program = compile_graph(load(model_path("pretrainedResnet_quant")))
    g = program.graph
    adds = [layer.op for layer in program.layers if isinstance(layer.op, ir.Add)]
    assert adds
    for op in adds:
        out = program.plan.tensor_offset[op.outputs[0]]
        assert out in (program.plan.tensor_offset[op.inputs[0]], program.plan.tensor_offset[op.inputs[1]])
    assert g.name == "pretrainedresnet_quant"
