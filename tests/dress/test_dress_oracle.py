"""Every sub-net of a one-shot DRESS of both shared models: the NumPy reference == TFLM, element for element.

The oracle is TFLM running a dense .tflite of sub-net k built from the DRESS file's
tables (tests/dress/subnet_tflite.py); it derives its multipliers from sub-net k's
filter scales by itself. Re-calibration with gains makes the sub-nets' scales, biases
and multipliers differ from the dense model's and between sub-nets.
"""
import numpy as np
import pytest
from conftest import SHARED_MODELS, model_path
from subnet_tflite import subnet_tflite
from tflite_builder import tflm_layer_outputs

from codegen.dress import format as dress_format
from codegen.dress import oneshot, reference
from codegen.frontends import tflite

SPARSITIES = (0.5, 0.75, 0.9)
CALIBRATION = 8  # digits: enough to move every bias and gain, few enough to stay fast


@pytest.fixture(scope="module", params=SHARED_MODELS)
def dress(request, tmp_path_factory):
    path = model_path(request.param)
    graph = tflite.load(path)
    x_cal = oneshot.digits_inputs(graph, "train", CALIBRATION)
    model = oneshot.one_shot(path.read_bytes(), SPARSITIES, "filter", x_cal, "bias+gain", name=str(path))
    file = tmp_path_factory.mktemp(request.param) / "model.dress"
    dress_format.write(file, model)
    shape = graph.tensor(graph.inputs[0]).shape[1:]
    x = np.concatenate([np.random.default_rng(5).integers(-128, 128, size=(6, *shape), dtype=np.int8),
                        oneshot.digits_inputs(graph, "test", 4)])
    return dress_format.read(file), graph, x


@pytest.mark.parametrize("k", range(len(SPARSITIES)))
def test_subnet_reference_equals_tflm_on_every_layer(dress, k):
    model, graph, x = dress
    oracle_model = subnet_tflite(model, k)
    fb_index = graph.meta["tflite_tensor"]
    outputs = [op.outputs[0] for op in graph.ops]
    expected = tflm_layer_outputs(oracle_model, x, [fb_index[t] for t in outputs])
    ours = reference.run_graph(model, k, x)
    for index, (t, oracle) in enumerate(zip(outputs, expected)):
        mismatches = int((ours[t].reshape(oracle.shape) != oracle).sum())
        assert mismatches == 0, f"sub-net {k} layer {index} ({graph.ops[index].OP}): {mismatches} values differ from TFLM"


@pytest.mark.parametrize("k", range(len(SPARSITIES)))
def test_file_multipliers_are_those_derived_from_the_subnet_model(dress, k):
    """The multipliers and shifts the file stores (for the C) are params.py's on the oracle's .tflite."""
    model, _, _ = dress
    oracle = tflite.parse(subnet_tflite(model, k))
    for layer in model.layers:
        multiplier, shift = reference.requantization(oracle, oracle.ops[layer.op_index])
        assert np.array_equal(layer.multiplier[k], multiplier), f"layer {layer.op_index}"
        assert np.array_equal(layer.shift[k], shift), f"layer {layer.op_index}"


def test_subnets_differ_in_weights_bias_and_multipliers(dress):
    """Guards the oracle test against sub-nets that are secretly the dense model or each other."""
    model, _, _ = dress
    assert all(np.all(np.diff(layer.nnz) <= 0) for layer in model.layers)
    assert any(layer.nnz[0] > layer.nnz[-1] for layer in model.layers)
    assert any(not np.array_equal(layer.bias[0], layer.bias[-1]) for layer in model.layers)
    assert any(not np.array_equal(layer.multiplier[0], layer.multiplier[-1]) for layer in model.layers)
