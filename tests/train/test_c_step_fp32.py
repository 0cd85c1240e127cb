"""The generated fp32 training step against the NumPy reference: the same float32 bits after every step."""
from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest
from test_c_step import STEPS, assert_same_params, stream

from codegen.build import build_cortex_m4
from codegen.train import builtin, emit, floatmath
from codegen.train.graph import build
from codegen.train.hostrun import HostTrainer, compare_params, run_sanitized, same_loss
from codegen.train.intmath import TrainingOverflow
from codegen.train.model import TrainModel
from codegen.train.trainer import sample_order


@pytest.mark.parametrize("update", ["all", "last:2"])
def test_fp32_host_c_step_is_bit_exact_with_numpy(tmp_path, update):
    graph = build(builtin.digits_cnn(0), update)
    ref = TrainModel(graph, "fp32", lr=0.1)
    c = HostTrainer(TrainModel(graph, "fp32", lr=0.1), tmp_path / "gen", seed=1)
    assert_same_params(ref.params, c.params(), "init")
    xs, ys, exp = stream(graph, STEPS)
    for t, (x, y) in enumerate(zip(xs, ys)):
        if t == STEPS // 2:  # a schedule's next rate, through the Q16 API
            ref.set_lr(ref.ar.lr_q >> 2)
            c.set_lr(ref.ar.lr_q)
        loss = ref.step(x, exp, int(y))
        status, c_loss, _ = c.step(x, exp, int(y))
        assert status == 0 and same_loss(c_loss, loss), f"step {t}: loss {c_loss!r} != {loss!r}"
        assert_same_params(ref.params, c.params(), t)
    assert any(not np.array_equal(p.w, q.w) for p, q in zip(ref.params.values(), TrainModel(graph, "fp32", lr=0.1).params.values()))
    for x in xs[:20]:
        assert c.predict(x, exp) == ref.predict(ref.input(x, exp))


def test_compare_params_sees_one_float_ulp(tmp_path):
    graph = build(builtin.digits_cnn(0), "last:1")
    model = TrainModel(graph, "fp32", lr=0.1)
    other = model.snapshot()
    layer = graph.trainable[0].index
    other[layer].w.flat[3] = np.nextafter(other[layer].w.flat[3], np.float32(np.inf))
    assert compare_params(model.params, other, "now") == f"now: layer {layer} weights differ"
    assert not same_loss(1.0, float(np.nextafter(np.float32(1), np.float32(2))))


def test_fp32_divergence_fails_in_the_same_step_and_layer_in_c_and_numpy(tmp_path):
    graph = build(builtin.digits_cnn(0))
    ref = TrainModel(graph, "fp32", lr=2000.0)
    c = HostTrainer(TrainModel(graph, "fp32", lr=2000.0), tmp_path / "gen", seed=1)
    xs, ys, exp = stream(graph, 30)
    for t, (x, y) in enumerate(zip(xs, ys)):
        try:
            ref.step(x, exp, int(y))
            failed = None
        except TrainingOverflow as err:
            failed = str(err)
        status, _, layer = c.step(x, exp, int(y))
        assert (status != 0) == (failed is not None), f"step {t}: C status {status}, NumPy {failed}"
        if failed:
            where = "the logits" if layer == len(graph.layers) else f"layer {layer} "
            assert failed.startswith(where), (layer, failed)
            return
    pytest.fail("a learning rate of 2000 never diverged")


def test_fp32_sanitized_runner_agrees(tmp_path):
    graph = build(builtin.digits_cnn(0))
    ref = TrainModel(graph, "fp32", lr=0.1)
    xs, ys, exp = stream(graph, 25, seed=3)
    status, losses = run_sanitized(TrainModel(graph, "fp32", lr=0.1), tmp_path / "gen", 4, xs, exp, ys)
    expected = np.array([ref.step(x, exp, int(y)) for x, y in zip(xs, ys)], np.float32)
    assert status.tolist() == [0] * 25 and losses.dtype == np.float32
    assert losses.tobytes() == expected.tobytes()


def test_fp32_step_compiles_for_cortex_m4f_without_fused_multiply_add(tmp_path):
    graph = build(builtin.digits_cnn(0))
    emit.write(TrainModel(graph, "fp32", lr=0.1), tmp_path / "m4", target="cortex-m4")
    objects = build_cortex_m4(tmp_path / "m4", tmp_path / "m4" / "build")
    kernels = next(o for o in objects if o.name == "tsn_train_f32.o")
    listing = subprocess.run(["arm-none-eabi-objdump", "-d", str(kernels)], capture_output=True, text=True,
                             check=True).stdout
    assert "vdiv.f32" in listing  # the FPU runs the step
    assert not any(op in listing for op in ("vfma", "vfms", "vfnm"))  # a fused op rounds once, NumPy twice


def test_fp32_plan_holds_floats():
    graph = build(builtin.digits_cnn(0))
    int8, fp32 = emit.plan(graph), emit.plan(graph, "fp32")
    assert fp32.scratch_words == 0 and int8.scratch_words > 0
    assert fp32.arena_bytes > 3 * (int8.arena_bytes - int8.scratch_bytes)
    assert all(offset % 4 == 0 for offset in [*fp32.activation.values(), *fp32.gradient.values()])


def test_sums_run_in_order_from_zero():
    """floatmath.dot against a plain loop over float32 scalars (pairwise summation would differ)."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((7, 300)).astype(np.float32) * np.float32(1000)
    b = rng.standard_normal((5, 300)).astype(np.float32)
    got = floatmath.dot("pk,ok->po", a, b)
    for p in range(7):
        for o in range(5):
            acc = np.float32(0)
            for k in range(300):
                acc = np.float32(acc + np.float32(a[p, k] * b[o, k]))
            assert got[p, o] == acc
    total = np.float32(0)
    for v in a[:, 0]:
        total = np.float32(total + v)
    assert floatmath.column_sum(a)[0] == total


def test_exp_and_log_are_accurate_to_a_few_ulp():
    x = np.linspace(-86, 0, 20001).astype(np.float32)
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(floatmath.exp(x) / exact - 1)) < 4e-7
    assert floatmath.exp(np.float32([-87.0]))[0] == 0 and floatmath.exp(np.float32([0.0]))[0] == 1
    for v in np.linspace(1, 10, 1001).astype(np.float32):
        assert abs(float(floatmath.log(v)) - math.log(float(v))) < 4e-7


def test_fp32_resnet_through_residual_adds_and_a_gradient_sum_is_bit_exact(tmp_path):
    from test_finetune import RESNET, finetune_graph
    if not RESNET.exists():
        pytest.skip("../shared/models not present")
    graph, data = finetune_graph(RESNET, "last:5")  # both residual adds, one tensor with two gradients
    assert len(emit.merges(graph)) == 1
    ref = TrainModel(graph, "fp32", lr=0.005)
    c = HostTrainer(TrainModel(graph, "fp32", lr=0.005), tmp_path / "gen", seed=1)
    start = ref.snapshot()
    for t, i in enumerate(sample_order(len(data.y_train), 20, 5)):
        x, y = data.x_train[i], int(data.y_train[i])
        loss = ref.step(x, data.exp, y)
        status, c_loss, layer = c.step(x, data.exp, y)
        assert status == 0 and same_loss(c_loss, loss), f"step {t}: status {status} layer {layer}, {c_loss!r} != {loss!r}"
        assert_same_params(ref.params, c.params(), t)
    assert all(not np.array_equal(start[i].w, ref.params[i].w) for i in (6, 8, 9, 10))  # behind the adds
