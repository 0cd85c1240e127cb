"""The training graph and both arithmetics: gradients, sparse updates, determinism, divergence."""
from __future__ import annotations

import numpy as np
import pytest
from tflite_builder import (
    ModelBuilder,
    add_options,
    conv_options,
    fb,
    fc_options,
    pool_options,
)

from codegen.errors import InputError, UnsupportedError
from codegen.frontends.tflite import parse
from codegen.train import builtin
from codegen.train import data as datasets
from codegen.train.graph import build
from codegen.train.model import TrainModel
from codegen.train.trainer import accuracy, scheduled_lr, train


def residual_model(pool="AVERAGE_POOL_2D") -> bytes:
    """6x6x2 -> conv 3x3 RELU6 -> add(input) -> 2x2 pool -> reshape -> fc 10 -> softmax."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.tensor([1, 6, 6, 2], scale=1 / 64, zero_point=0)
    w = b.tensor([2, 3, 3, 2], scale=[0.02, 0.03], data=rng.integers(-127, 128, (2, 3, 3, 2)), axis=0)
    bias = b.tensor([2], "int32", scale=[1e-4, 1e-4], data=np.array([50, -80]))
    h = b.tensor([1, 6, 6, 2], scale=1 / 32, zero_point=-128)
    b.op(fb.BuiltinOperator.CONV_2D, [x, w, bias], [h], fb.BuiltinOptions.Conv2DOptions,
         conv_options((1, 1), (1, 1), "SAME", "RELU6"))
    s = b.tensor([1, 6, 6, 2], scale=1 / 16, zero_point=0)
    b.op(fb.BuiltinOperator.ADD, [h, x], [s], fb.BuiltinOptions.AddOptions, add_options("NONE"))
    p = b.tensor([1, 3, 3, 2], scale=1 / 16, zero_point=0)
    code = getattr(fb.BuiltinOperator, pool)
    b.op(code, [s], [p], fb.BuiltinOptions.Pool2DOptions, pool_options((2, 2), (2, 2), "VALID", "NONE"))
    shape = b.tensor([2], "int32", data=np.array([1, 18]))
    f = b.tensor([1, 18], scale=1 / 16, zero_point=0)
    b.op(fb.BuiltinOperator.RESHAPE, [p, shape], [f])
    fw = b.tensor([10, 18], scale=0.01, data=rng.integers(-127, 128, (10, 18)))
    logits = b.tensor([1, 10], scale=0.1, zero_point=0)
    b.op(fb.BuiltinOperator.FULLY_CONNECTED, [f, fw], [logits], fb.BuiltinOptions.FullyConnectedOptions,
         fc_options("NONE"))
    return b.build([x], [logits])


def float_gradients(model: TrainModel, q, exp: int, label):
    """dL/dW of every weighted layer, read off one SGD step with lr = 1 in fp32."""
    before = model.snapshot()
    model.step(q, exp, label)
    grads = {i: before[i].w.astype(np.float64) - model.params[i].w for i in before}
    model.restore(before)
    return grads


def numeric_gradient(model: TrainModel, x, label, layer, index, eps=1e-2):
    def loss(delta):
        snap = model.snapshot()
        model.params[layer].w[index] += delta
        model.ar.training = True
        value = model.ar.loss(model._forward(x)[model.graph.logits], label)[0]
        model.restore(snap)
        return value
    return (loss(eps) - loss(-eps)) / (2 * eps)


@pytest.mark.parametrize("source", ["digits", "residual"])
def test_fp32_backward_matches_finite_differences(source):
    """Conv, depthwise, pointwise, add, RELU6, average pool, reshape and FC backward passes."""
    graph = builtin.digits_cnn(0) if source == "digits" else parse(residual_model(), "residual.tflite")
    model = TrainModel(build(graph), "fp32", lr=1.0)
    rng = np.random.default_rng(0)
    q = rng.integers(0, 128, model.graph.input_shape)
    x = model.input(q, -7)
    grads = float_gradients(model, q, -7, 4)
    assert grads, "no weighted layers"
    for layer, g in grads.items():
        for index in [np.unravel_index(np.argmax(np.abs(g)), g.shape), tuple(s // 2 for s in g.shape)]:
            num = numeric_gradient(model, x, 4, layer, index)
            assert abs(num - g[index]) <= 2e-3 + 2e-2 * abs(g[index]), (layer, index, g[index], num)


def test_int8_step_follows_the_float_gradient():
    """One int8 step moves the weights along the fp32 gradient (cosine > 0.9 per layer)."""
    graph = build(builtin.digits_cnn(0))
    fp = TrainModel(graph, "fp32", lr=1.0)
    q = TrainModel(graph, "int8", lr=1.0 / 64, lac=False, prc=False, seed=5)
    x8 = np.random.default_rng(1).integers(0, 128, graph.input_shape)
    fp.restore({i: p.__class__(q.ar.real_weights(p).astype(np.float32), (p.b * 2.0**-24).astype(np.float32))
                for i, p in q.params.items()})
    g = float_gradients(fp, x8, -7, 7)
    steps = {i: np.zeros(p.w.shape) for i, p in q.params.items()}
    for _ in range(20):  # average out stochastic rounding
        start = q.snapshot()
        q.step(x8, -7, 7)
        for i in steps:
            steps[i] += q.ar.real_weights(start[i]) - q.ar.real_weights(q.params[i])
        q.restore(start)
    for i in g:
        a, b = g[i].ravel(), steps[i].ravel()
        assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.9, i


def test_int8_forward_tracks_the_float_forward():
    graph = build(builtin.digits_cnn(0))
    q = TrainModel(graph, "int8", lr=0.1)
    fp = TrainModel(graph, "fp32", lr=0.1)
    x8 = np.random.default_rng(2).integers(0, 128, graph.input_shape)
    a = q.logits(q.input(x8, -7)).astype(float) * 2.0 ** q._forward(q.input(x8, -7))[graph.logits].exp
    b = fp.logits(fp.input(x8, -7))
    assert np.linalg.norm(a - b) <= 0.05 * np.linalg.norm(b)


def test_int8_training_is_deterministic_per_seed():
    graph = build(builtin.digits_cnn(0))
    data = datasets.load("digits", graph.input_shape, graph.classes)

    def run(seed):
        m = TrainModel(graph, "int8", lr=0.1, seed=seed)
        r = train(m, data, 30, seed=1)
        return r.losses, {i: (p.w.copy(), p.w_exp, p.b.copy(), p.mu.copy()) for i, p in m.params.items()}

    (l1, p1), (l2, p2), (l3, _) = run(7), run(7), run(8)
    assert l1 == l2 and all(np.array_equal(p1[i][0], p2[i][0]) and p1[i][1:2] == p2[i][1:2] for i in p1)
    assert l1 != l3  # the rounding stream matters


@pytest.mark.parametrize("mode", ["int8", "fp32"])
def test_last_n_updates_only_those_layers(mode):
    graph = build(builtin.digits_cnn(0), "last:1")
    assert [l.index for l in graph.trainable] == [5] and graph.first_backward == 5
    m = TrainModel(graph, mode, lr=0.1)
    before = m.snapshot()
    data = datasets.load("digits", graph.input_shape, graph.classes)
    train(m, data, 5, seed=1)
    assert not np.array_equal(before[5].w, m.params[5].w)
    for i in (0, 1, 2):
        assert np.array_equal(before[i].w, m.params[i].w) and np.array_equal(before[i].b, m.params[i].b)


def test_update_selection_errors_are_one_line():
    g = builtin.digits_cnn(0)
    with pytest.raises(InputError, match="last:9"):
        build(g, "last:9")
    with pytest.raises(InputError, match="layer 3 has no weights"):
        build(g, "3")
    with pytest.raises(UnsupportedError, match="MAX_POOL|maxpool"):
        build(parse(residual_model("MAX_POOL_2D"), "r.tflite"), "all")
    build(parse(residual_model("MAX_POOL_2D"), "r.tflite"), "last:1")  # max pool in the frozen prefix is fine


@pytest.mark.parametrize("mode", ["int8", "fp32"])
def test_divergence_stops_and_keeps_the_last_good_weights(mode):
    graph = build(builtin.digits_cnn(0))
    data = datasets.load("digits", graph.input_shape, graph.classes)
    m = TrainModel(graph, mode, lr=50.0)
    seen = []
    result = train(m, data, 200, seed=1, progress=lambda t, loss: seen.append(m.snapshot()))
    assert result.diverged and result.diverged.startswith("step ")
    assert result.steps_done < 200
    last_good = seen[-1] if seen else None
    for i, p in m.params.items():
        ref = last_good[i] if last_good else None
        if ref is not None:
            assert np.array_equal(p.w, ref.w) and np.array_equal(p.b, ref.b)


def test_short_training_learns_digits_in_both_modes():
    graph = build(builtin.digits_cnn(0))
    data = datasets.load("digits", graph.input_shape, graph.classes)
    for mode in ("int8", "fp32"):
        m = TrainModel(graph, mode, lr=0.1, seed=1)
        train(m, data, 1500, seed=1)
        assert accuracy(m, data) > 0.5, mode


def test_dataset_split_is_fixed_and_fits_model_inputs():
    d = datasets.load("digits", (8, 8, 1), 10)
    assert len(d.y_train) == 1438 and len(d.y_test) == 359
    assert d.x_train.dtype == np.int8 and d.x_train.max() == 127 and d.x_train.min() == 0
    again = datasets.load("digits", (8, 8, 1), 10)
    assert np.array_equal(d.y_test, again.y_test)
    big = datasets.load("digits", (49, 10, 1), 12)
    assert big.x_train.shape == (1438, 49, 10, 1)
    with pytest.raises(InputError, match="10 classes"):
        datasets.load("digits", (8, 8, 1), 5)


def test_step_schedule_quarters_the_rate_at_half_and_three_quarters():
    rates = [scheduled_lr(6554, t, 8, "step") for t in range(8)]
    assert rates == [6554] * 4 + [1638] * 2 + [409] * 2
    assert scheduled_lr(3, 7, 8, "step") == 1  # never zero
    assert {scheduled_lr(6554, t, 8, "constant") for t in range(8)} == {6554}


def test_both_arithmetics_follow_one_q16_rate():
    graph = build(builtin.load_builtin("builtin:digits-cnn", 1))
    int8, fp32 = TrainModel(graph, "int8", lr=0.1), TrainModel(graph, "fp32", lr=0.1)
    assert int8.ar.lr_q == fp32.ar.lr_q == 6554
    int8.set_lr(1638)
    fp32.set_lr(1638)
    assert int8.ar.decay_q == 16 and fp32.ar.lr == np.float32(1638 / 65536)
