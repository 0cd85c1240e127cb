"""The ALQ kernels' Cortex-M4 builds on QEMU mps2-an386: every layer == codegen/alq/reference.py by CRC-32
(host/bench_alq_mcu.py), with per-layer instruction counts.

The firmware build compiles with -Werror; the DSP path (USADA8) runs only here, the host tests compile the
portable one.
"""
import numpy as np
import pytest
from alq.alq_random import digits_shaped_model, random_layer, random_model

from codegen.alq.format import AlqModel, validate
from host import bench_alq_mcu
from host.bench_alq_mcu import measure_alq_model, run_alq_on_board
from host.icount import BenchError


@pytest.mark.parametrize("variant", ["dsp", "portable"])
def test_random_model_on_the_emulated_board_equals_the_reference(tmp_path, variant):
    rng = np.random.default_rng(11)
    model = random_model(rng)
    x = rng.integers(-128, 128, size=model.input_shape).astype(np.int8)
    report = run_alq_on_board(model, x, tmp_path, variant)  # BenchError unless every layer's CRC matches
    assert [layer.op for layer in report.layers] == [
        "ALQ_CONV_2D", "ALQ_DEPTHWISE_CONV_2D", "ALQ_CONV_2D", "ALQ_AVERAGE_POOL_2D", "ALQ_FULLY_CONNECTED"]
    assert all(layer.instructions > 0 for layer in report.layers)


def test_dsp_path_with_eight_activation_bases_and_several_word_groups(tmp_path):
    """What the random model leaves out: I_x = 8 (a 255-threshold search) and groups of two words, the last
    one partial (the DSP path's word loop)."""
    rng = np.random.default_rng(5)
    conv = random_layer(rng, "conv", (5, 5, 2), 6, group="kernel", ix=8, i_max=2)
    fc = random_layer(rng, "fc", conv.out_shape, 4, group="subchannel", group_size=40, ix=3, relu=False)
    model = AlqModel((5, 5, 2), 7, [conv, fc])
    validate(model, "test")
    assert fc.words == 2 and fc.length % fc.n
    run_alq_on_board(model, rng.integers(-128, 128, size=model.input_shape).astype(np.int8), tmp_path)


def test_digits_shaped_model_instructions_per_layer(tmp_path):
    rng = np.random.default_rng(0)
    model = digits_shaped_model(rng)
    counts = measure_alq_model(model, rng.integers(-128, 128, size=model.input_shape).astype(np.int8), tmp_path)
    assert len(counts) == len(model.layers) and min(counts) > 0


def test_a_wrong_layer_output_fails_the_board_check(tmp_path, monkeypatch):
    rng = np.random.default_rng(12)
    model = random_model(rng)
    x = rng.integers(-128, 128, size=model.input_shape).astype(np.int8)
    wrong = bench_alq_mcu.reference_crcs(model, x)
    wrong[2] ^= 1
    monkeypatch.setattr(bench_alq_mcu, "reference_crcs", lambda *_: wrong)
    with pytest.raises(BenchError, match="layer 2 output CRC-32"):
        run_alq_on_board(model, x, tmp_path)


def test_alq_digits_model_on_the_emulated_board_equals_the_reference(tmp_path, alq_digits):
    model, x = alq_digits
    report = run_alq_on_board(model, x, tmp_path)  # BenchError unless every layer's CRC matches
    assert len(report.layers) == len(model.layers) == 5
