"""DRESS training (Algorithm 3.1) on the fp32 path and its int8 export.

Expected values come from independent computations: sorted() for the masks, the
plain fp32 TrainModel (its own SGD update) for each sub-net's gradient, the file's
own tables for the exported sub-nets.
"""
import numpy as np
import pytest

from codegen.dress import format as dress_format
from codegen.dress import reference
from codegen.dress import train as dress_train
from codegen.dress.sampling import filters
from codegen.errors import InputError
from codegen.train.arith import Params
from codegen.train.model import TrainModel


def test_loss_weights_are_proportional_to_density_to_the_gamma():
    assert dress_train.loss_weights((0.5, 0.75, 0.9), 0.0) == pytest.approx([1 / 3] * 3)
    assert dress_train.loss_weights((0.5, 0.75, 0.9), 2.0) == pytest.approx(np.array([0.25, 0.0625, 0.01]) / 0.3225)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="gamma"):
            dress_train.loss_weights((0.5,), bad)


@pytest.fixture(scope="module")
def trainer():
    return dress_train.trainer_for("builtin:digits-cnn", "digits", "filter", seed=5)


@pytest.mark.parametrize("row", ["filter", 16])
def test_masks_keep_the_largest_weights_of_every_row_and_nest(row):
    t = dress_train.trainer_for("builtin:digits-cnn", "digits", row, seed=5)
    rng = np.random.default_rng(11)
    params = {j: Params(rng.standard_normal(p.w.shape).astype(np.float32), p.b) for j, p in t.model.params.items()}
    nnz = t.rows.allocate(params, (0.5, 0.75, 0.9))
    masks = [t.rows.masks(params, nnz[:, k]) for k in range(3)]
    chunk = 16 if row == 16 else None
    for n, i in enumerate(t.rows.ops):
        op = t.graph.ops[i]
        table = filters(op, params[i].w)
        for k in range(3):
            kept = filters(op, masks[k][i])
            for c in range(table.shape[0]):
                length = table.shape[1]
                size = -(-length // -(-length // chunk)) if chunk else length
                for start in range(0, length, size):
                    part = list(range(start, min(start + size, length)))
                    top = sorted(part, key=lambda j: (-abs(float(table[c, j])), j))[: int(nnz[n, k])]
                    assert [j for j in part if kept[c, j]] == sorted(top), f"layer {i}, sub-net {k}, channel {c}"
            if k:
                assert np.all(masks[k][i] <= masks[k - 1][i]), "masks must nest"
    assert np.all(np.diff(nnz, axis=1) <= 0) and np.any(np.diff(nnz, axis=1) < 0)


def test_a_dress_step_is_the_weighted_sum_of_the_masked_subnet_gradients(trainer):
    params = {j: p.copy() for j, p in trainer.model.params.items()}
    before = {j: p.w.copy() for j, p in params.items()}
    sparsities, gamma, rate = (0.5, 0.9), 1.0, np.float32(0.05)
    nnz = trainer.rows.allocate(params, sparsities)
    masks = [trainer.rows.masks(params, nnz[:, k]) for k in range(2)]
    x, label = trainer.x[7], int(trainer.y[7])
    # each sub-net's gradient from the ordinary fp32 model: one SGD step at lr 1 moves w * m by -dw
    expected_w = {j: p.w.astype(np.float64) for j, p in params.items()}
    expected_b = {j: p.b.astype(np.float64) for j, p in params.items()}
    for pi, m in zip(dress_train.loss_weights(sparsities, gamma), masks):
        plain = TrainModel(trainer.model.graph, "fp32", lr=1.0)
        plain.params = dress_train.masked(params, m)
        start = {j: (p.w.astype(np.float64), p.b.astype(np.float64)) for j, p in plain.params.items()}
        plain.params = {j: p.copy() for j, p in plain.params.items()}
        plain.step(x, trainer.data.exp, label)
        for j, p in plain.params.items():
            expected_w[j] -= float(rate) * pi * m[j] * (start[j][0] - p.w)
            expected_b[j] -= float(rate) * pi * (start[j][1] - p.b)
    step = trainer.sgd(params, lambda p: masks, dress_train.loss_weights(sparsities, gamma))
    step(x, label, rate)
    for j, p in params.items():
        np.testing.assert_allclose(p.w, expected_w[j], rtol=1e-5, atol=1e-6, err_msg=f"layer {j} weights")
        np.testing.assert_allclose(p.b, expected_b[j], rtol=1e-5, atol=1e-6, err_msg=f"layer {j} biases")
    # weights outside the densest sub-net's mask got no gradient
    for j, m in masks[0].items():
        assert np.array_equal(params[j].w[m == 0], before[j][m == 0])


def test_exported_subnets_are_the_trained_ones(trained_digits):
    _, trained, model, graph = trained_digits
    again = dress_format.from_bytes(dress_format.to_bytes(model))
    assert again.sparsities == model.sparsities
    for k in range(model.subnets):
        sub = reference.subnet_graph(model, k, graph)
        for layer in model.layers:
            op = graph.ops[layer.op_index]
            w = sub.op_inputs(op)[1]
            # row = filter: the int8 sub-net keeps, per filter, weights of the same |q| as the trained mask
            # (they differ only where two weights round to the same |q|: the file breaks ties by column)
            dense_q = np.abs(filters(op, graph.op_inputs(op)[1].data).astype(np.int64))
            f_kept = filters(op, trained.masks[k][layer.op_index]) != 0
            for c in range(layer.shape.channels):
                q_cols = layer.columns[c, : layer.nnz[k]]
                assert sorted(dense_q[c, q_cols]) == sorted(dense_q[c, f_kept[c]]), (layer.op_index, k, c)
                assert np.array_equal(np.flatnonzero(filters(op, w.data)[c]),
                                      np.sort(q_cols[layer.values[c, : layer.nnz[k]] != 0]))
            # the trained gain rides on the sub-net's filter scale
            dense_scale = np.broadcast_to(graph.op_inputs(op)[1].quant.scale, (layer.shape.channels,))
            assert np.array_equal(w.quant.scale, (dense_scale * trained.gains[k][layer.op_index]).astype(np.float32))


def test_int8_subnets_keep_their_float_accuracy(trained_digits):
    trainer, trained, model, graph = trained_digits
    rows = dress_train.report(trainer, trained, model, graph)
    for r in rows:  # chance is 0.1; this short budget leaves the sparsest sub-net half-trained and fragile
        assert r["float_accuracy"] > 0.3, f"sub-net {r['subnet']} did not learn: {r}"
        assert abs(r["int8_accuracy"] - r["float_accuracy"]) < (0.03 if r["sparsity"] < 0.9 else 0.1), r
    assert [r["real_sparsity"] for r in rows] == sorted(r["real_sparsity"] for r in rows)
    assert abs(rows[-1]["real_sparsity"] - 0.9) < 0.05
