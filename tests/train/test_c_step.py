"""The generated int8 training step against the NumPy reference: identical integers after every step."""
from __future__ import annotations

import pytest

from codegen.build import build_cortex_m4
from codegen.train import builtin, emit
from codegen.train import data as datasets
from codegen.train.graph import build
from codegen.train.hostrun import HostTrainer, compare_params, run_sanitized
from codegen.train.intmath import TrainingOverflow
from codegen.train.model import TrainModel
from codegen.train.trainer import sample_order

STEPS = 60


def stream(graph, steps, seed=1):
    d = datasets.load("digits", graph.input_shape, graph.classes)
    order = sample_order(len(d.y_train), steps, seed)
    return d.x_train[order], d.y_train[order], d.exp


def assert_same_params(ref, got, step):
    mismatch = compare_params(ref, got, f"step {step}")
    assert mismatch is None, mismatch


@pytest.mark.parametrize("update,lac,prc", [("all", True, True), ("all", False, False), ("all", True, False),
                                            ("last:2", True, True), ("1,5", True, True)])
def test_host_c_step_is_bit_exact_with_numpy(tmp_path, update, lac, prc):
    graph = build(builtin.digits_cnn(0), update)
    assert emit.plan(graph).recomputed  # every config here makes some sums twice: these runs check that too
    assert_bit_exact(tmp_path, graph, lac, prc)


def test_fast_step_memory_keeps_every_sum_and_is_bit_exact(tmp_path):
    graph = build(builtin.digits_cnn(0), "all")
    fast, small = emit.plan(graph, memory="fast"), emit.plan(graph)
    assert not fast.recomputed and fast.arena_bytes > small.arena_bytes
    assert_bit_exact(tmp_path, graph, True, True, memory="fast")


def assert_bit_exact(tmp_path, graph, lac, prc, memory="small"):
    ref = TrainModel(graph, "int8", lr=0.1, lac=lac, prc=prc, seed=11)
    c = HostTrainer(TrainModel(graph, "int8", lr=0.1, lac=lac, prc=prc, seed=11), tmp_path / "gen", seed=11,
                    memory=memory)
    assert_same_params(ref.params, c.params(), "init")
    xs, ys, exp = stream(graph, STEPS)
    for t, (x, y) in enumerate(zip(xs, ys)):
        loss = ref.step(x, exp, int(y))
        status, c_loss, _ = c.step(x, exp, int(y))
        assert status == 0 and c_loss == loss, f"step {t}: loss {c_loss} != {loss}"
        assert_same_params(ref.params, c.params(), t)
    for x in xs[:20]:
        assert c.predict(x, exp) == ref.predict(ref.input(x, exp))


def test_making_every_recomputable_sum_twice_is_bit_exact(tmp_path, monkeypatch):
    # keep no pixel's sums wherever the kernel can make them again: both passes of every such kernel
    monkeypatch.setattr(emit.Sums, "most_kept", lambda sums, words: 0 if sums.recomputable else sums.pixels)
    graph = build(builtin.digits_cnn(0), "all")
    assert set(emit.plan(graph).recomputed) == {
        ("forward", 0), ("forward", 1), ("forward", 2), ("forward", 3), ("output_grad", 0), ("output_grad", 1),
        ("output_grad", 2), ("output_grad", 5), ("input_grad", 1), ("input_grad", 3)}
    assert_bit_exact(tmp_path, graph, True, True)


def test_planned_int8_arena_is_the_live_tensors_plus_the_sums_kept_whole():
    tp = emit.plan(build(builtin.digits_cnn(0), "all"))
    # the 8x8x8 sums of the depthwise input gradient and of conv0's LAC gradient are not all kept
    assert {("input_grad", 1), ("output_grad", 0)} <= set(tp.recomputed)
    # The most int8 bytes alive at once, at the backward of pw2 (conv 1x1, 4x4x8 -> 4x4x32): the input (8x8x1),
    # conv0's output (8x8x8, saved for dw1's update), dw1's output (4x4x8, pw2's x), pw2's output (4x4x32, its
    # activation mask), its gradient (4x4x32) and the gradient of its input (4x4x8). pw2's input gradient is a
    # scatter that keeps its 4x4x8 int32 sums whole. No time of the step needs more.
    live = 8 * 8 * 1 + 8 * 8 * 8 + 4 * 4 * 8 + 4 * 4 * 32 + 4 * 4 * 32 + 4 * 4 * 8
    assert tp.arena_bytes <= live + 4 * (4 * 4 * 8)


def test_divergence_fails_in_the_same_step_in_c_and_numpy(tmp_path):
    graph = build(builtin.digits_cnn(0))
    ref = TrainModel(graph, "int8", lr=50.0, seed=2)
    c = HostTrainer(TrainModel(graph, "int8", lr=50.0, seed=2), tmp_path / "gen", seed=2)
    xs, ys, exp = stream(graph, 30)
    for t, (x, y) in enumerate(zip(xs, ys)):
        try:
            ref.step(x, exp, int(y))
            failed = False
        except TrainingOverflow:
            failed = True
        status, _, layer = c.step(x, exp, int(y))
        assert (status != 0) == failed, f"step {t}: C status {status}, NumPy failed {failed}"
        if failed:
            assert 0 <= layer < len(graph.layers) + 1
            return
    pytest.fail("a learning rate of 50 never diverged")


def test_sanitized_runner_agrees(tmp_path):
    graph = build(builtin.digits_cnn(0))
    ref = TrainModel(graph, "int8", lr=0.1, seed=4)
    xs, ys, exp = stream(graph, 25, seed=3)
    status, losses = run_sanitized(TrainModel(graph, "int8", lr=0.1, seed=4), tmp_path / "gen", 4, xs, exp, ys)
    expected = [ref.step(x, exp, int(y)) for x, y in zip(xs, ys)]
    assert status.tolist() == [0] * 25 and losses.tolist() == expected


@pytest.mark.parametrize("flags", [(), ("-DTSN_NN_PORTABLE",)], ids=["dsp", "portable"])
def test_training_step_compiles_for_cortex_m4_with_werror(tmp_path, flags):
    # the host C above runs the portable kernels (no DSP extension there), the board the DSP ones
    graph = build(builtin.digits_cnn(0))
    emit.write(TrainModel(graph, "int8", lr=0.1), tmp_path / "m4", target="cortex-m4")
    assert build_cortex_m4(tmp_path / "m4", tmp_path / "m4" / "build", flags)


def test_planned_arena_is_smaller_for_last_n(tmp_path):
    full = emit.plan(build(builtin.digits_cnn(0), "all"))
    last = emit.plan(build(builtin.digits_cnn(0), "last:1"))
    assert last.arena_bytes < full.arena_bytes
    assert len(last.saved) < len(full.saved)
