"""Fine-tuning the shared int8 models on digits: the C step through residual adds, and that it learns."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codegen.errors import InputError
from codegen.frontends.tflite import load
from codegen.train import data as datasets
from codegen.train import emit
from codegen.train.finetune import head_lr, reset_head
from codegen.train.graph import build
from codegen.train.hostrun import HostTrainer, compare_params, run_sanitized
from codegen.train.model import TrainModel
from codegen.train.trainer import accuracy, sample_order, train

MODELS = Path(__file__).resolve().parents[2] / ".." / "shared" / "models"
KWS = MODELS / "kws_ref_model.tflite"
RESNET = MODELS / "pretrainedResnet_quant.tflite"
pytestmark = pytest.mark.skipif(not (KWS.exists() and RESNET.exists()), reason="../shared/models not present")


def finetune_graph(path: Path, update: str):
    graph = build(load(path), update)
    data = datasets.load("digits", graph.input_shape, graph.classes, graph.input_range)
    reset_head(graph, datasets.LABELS["digits"])
    return graph, data


def assert_bit_exact(graph, data, lr, steps, tmp_path, seed=5):
    """The generated C and the reference: same loss and same parameters after every step."""
    ref = TrainModel(graph, "int8", lr=lr, seed=seed)
    c = HostTrainer(TrainModel(graph, "int8", lr=lr, seed=seed), tmp_path / "gen", seed=seed)
    start = {i: p.copy() for i, p in ref.params.items()}
    for t, i in enumerate(sample_order(len(data.y_train), steps, seed)):
        x, y = data.x_train[i], int(data.y_train[i])
        loss = ref.step(x, data.exp, y)
        status, c_loss, layer = c.step(x, data.exp, y)
        assert status == 0, f"step {t}: C failed in layer {layer}"
        assert c_loss == loss, f"step {t}: loss {c_loss} in C, {loss} in NumPy"
        mismatch = compare_params(ref.params, c.params(), f"step {t}")
        assert mismatch is None, mismatch
    for x in data.x_test[:10]:
        assert c.predict(x, data.exp) == ref.predict(ref.input(x, data.exp))
    return start, ref


def test_resnet_update_through_residual_adds_is_bit_exact(tmp_path):
    # last:5 trains layers 6, 8, 9, 10 and 14: backward passes both residual adds (11 to both its
    # inputs, 7 to conv 6's output only), and tensor 20 (add 7's output) gets two gradients, from
    # conv 10 first and conv 8 second.
    graph, data = finetune_graph(RESNET, "last:5")
    assert [(i, pos, t) for i, pos, t in emit.merges(graph)] == [(8, 0, 20)]
    source = emit.render(TrainModel(graph, "int8", lr=0.01), "train")[0]["train.c"]
    assert source.count("tsn_train_add_input_grad(") == 3 and source.count("tsn_train_merge_grad(") == 1
    start, ref = assert_bit_exact(graph, data, 0.005, 50, tmp_path)
    # the layers behind the adds did learn (a zero gradient through the adds would be bit-exact too)
    for i in (6, 8, 9, 10):
        assert not np.array_equal(start[i].w, ref.params[i].w), f"layer {i} never moved"


def test_kws_fine_tune_with_a_reset_head_is_bit_exact(tmp_path):
    graph, data = finetune_graph(KWS, "last:2")
    assert graph.classes == 10 and graph.layers[-1].out_shape == (10,)
    assert_bit_exact(graph, data, 5e-4, 50, tmp_path)


def test_sanitized_runner_on_resnet_through_an_add(tmp_path):
    graph, data = finetune_graph(RESNET, "last:3")
    order = sample_order(len(data.y_train), 4, 2)
    xs, ys = data.x_train[order], data.y_train[order]
    ref = TrainModel(graph, "int8", lr=0.01, seed=2)
    expected = [ref.step(x, data.exp, int(y)) for x, y in zip(xs, ys)]
    status, losses = run_sanitized(TrainModel(graph, "int8", lr=0.01, seed=2), tmp_path / "gen", 2, xs, data.exp, ys)
    assert status.tolist() == [0] * 4 and losses.tolist() == expected


def test_fine_tuning_raises_test_accuracy_well_above_the_start():
    # KWS only: ResNet-8 needs about 600 steps to pass 40%, too slow for a unit test (make bench-train has it)
    graph, data = finetune_graph(KWS, "last:1")
    model = TrainModel(graph, "int8", lr=head_lr(graph, data), seed=1)
    before = accuracy(model, data)
    result = train(model, data, 400, seed=1)
    assert result.diverged is None
    after = accuracy(model, data)
    assert after >= before + 0.15, f"test accuracy {before:.3f} -> {after:.3f} after 400 steps"


def test_the_data_covers_an_imported_models_input_range():
    # ResNet-8 reads pixels 0..255 (scale 1, zero point -128): digits must span it, not sit at 0..1
    graph = build(load(RESNET), "last:1")
    assert graph.input_range == (0.0, 255.0)
    d = datasets.load("digits", graph.input_shape, graph.classes, graph.input_range)
    real = d.x_train.astype(np.float64) * 2.0**d.exp
    assert real.min() == 0 and abs(real.max() - 255) <= 2.0**d.exp / 2


def test_reset_head_needs_the_head_among_the_updated_layers():
    graph = build(load(KWS), "0")
    with pytest.raises(InputError, match="--head reset: the head, layer 11"):
        reset_head(graph, 10)
