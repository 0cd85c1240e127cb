"""The generated ALQ C on the host (portable path) == codegen/alq/reference.py, every layer, every element.

Built with -Wall -Wextra -Werror, under ASan and UBSan. The layer cases cover kernel-wise, channel and
sub-channel groups, groups of one word, of several words and not a multiple of 32 long, pruned groups
(I_g = 0), I_x from 1 to 8, negative x_ref, SAME padding at strides 1 and 2, VALID, ReLU and none; every
int8 value is an input, so every tie between two levels that int8 inputs can reach is met. The
Cortex-M4 DSP path is checked on QEMU (test_alq_qemu.py).
"""
import re

import numpy as np
import pytest
from alq.alq_random import digits_shaped_model, random_layer, random_model

from codegen.alq import reference
from codegen.alq.emit import quantizer, render, run_host, write_c
from codegen.alq.format import AlqModel, validate

#: (kind, input shape, units, keyword arguments of random_layer)
LAYERS = {
    "conv-kernel-ix8": ("conv", (5, 5, 3), 4, {"group": "kernel", "ix": 8, "i_max": 2}),
    "conv-channel-stride2": ("conv", (7, 6, 3), 5, {"stride": (2, 2), "ix": 3}),
    "conv-subchannel-2words": ("conv", (4, 4, 10), 3, {"padding": "VALID", "group": "subchannel", "group_size": 40}),
    "depthwise-ix5": ("depthwise", (7, 7, 4), 0, {"stride": (2, 2), "ix": 5}),
    "fc-subchannel-33": ("fc", (2, 5, 10), 6,
                         {"group": "subchannel", "group_size": 33, "ix": 4, "relu": False, "i_max": 4}),
    "fc-channel-3words": ("fc", (1, 1, 70), 3, {"ix": 1, "i_max": 8}),
}


def every_int8(shape) -> np.ndarray:
    """Samples of `shape` holding every int8 value at least once."""
    size = int(np.prod(shape))
    values = np.arange(-128, 128)
    values = np.resize(values, -(-values.size // size) * size)
    return values.reshape(-1, *shape).astype(np.int8)


def one_layer_model(rng: np.random.Generator, kind, in_shape, units, kwargs) -> AlqModel:
    layer = random_layer(rng, kind, in_shape, units, **kwargs)
    layer.x_ref = -abs(layer.x_ref) - 1  # negative x_ref
    model = AlqModel(tuple(in_shape), 7, [layer])
    validate(model, "test")
    return model


def assert_equal_to_reference(model: AlqModel, outs: list[np.ndarray], x: np.ndarray) -> None:
    for k, sample in enumerate(x):
        for i, want in enumerate(reference.forward(model, sample)):
            np.testing.assert_array_equal(outs[i][k], want, err_msg=f"sample {k}, layer {i} ({model.layers[i].kind})")


@pytest.mark.parametrize("case", LAYERS)
def test_layer_equals_reference_under_sanitizers(tmp_path, case):
    kind, in_shape, units, kwargs = LAYERS[case]
    model = one_layer_model(np.random.default_rng(len(case)), kind, in_shape, units, kwargs)
    write_c(model, tmp_path)
    x = every_int8(model.input_shape)
    assert_equal_to_reference(model, run_host(model, tmp_path, x), x)


def test_cases_cover_the_format():
    layers = [one_layer_model(np.random.default_rng(len(c)), *LAYERS[c]).layers[0] for c in LAYERS]
    assert any((layer.counts == 0).any() for layer in layers)  # pruned groups
    assert {layer.activation_bits for layer in layers} >= {1, 8}
    assert any(layer.words > 1 and layer.length % layer.n for layer in layers)  # partial last group, several words
    assert any(layer.n % 32 for layer in layers if layer.words > 1)


def test_models_equal_reference_under_sanitizers(tmp_path):
    """Whole models: later layers quantize int32 inputs (the outputs of ALQ layers and of the average pool)."""
    rng = np.random.default_rng(7)
    for name, model in (("random", random_model(rng)), ("digits", digits_shaped_model(rng))):
        write_c(model, tmp_path / name)
        x = rng.integers(-128, 128, size=(4, *model.input_shape)).astype(np.int8)
        assert_equal_to_reference(model, run_host(model, tmp_path / name, x), x)


def test_alq_digits_model_equals_reference_under_sanitizers(tmp_path, alq_digits):
    model, sample = alq_digits
    write_c(model, tmp_path)
    x = np.stack([sample, np.full_like(sample, 127), np.zeros_like(sample)])  # a digit, the extremes
    assert_equal_to_reference(model, run_host(model, tmp_path, x), x)


def test_optimized_host_build_without_sanitizers(tmp_path):
    model = random_model(np.random.default_rng(3))
    write_c(model, tmp_path)
    x = np.random.default_rng(4).integers(-128, 128, size=(2, *model.input_shape)).astype(np.int8)
    assert_equal_to_reference(model, run_host(model, tmp_path, x, sanitize=False), x)


def test_one_changed_alpha_in_the_generated_tables_is_detected(tmp_path):
    model = one_layer_model(np.random.default_rng(1), "conv", (5, 5, 2), 3, {"relu": False, "group": "kernel"})
    write_c(model, tmp_path)
    source = (tmp_path / "alq.c").read_text()
    table = re.search(r"layer_0_bases\[\d+\] = \{\s*(\d+), (\d+)", source)
    assert int(table.group(1)) > 0  # unit 0 has live bases: the second word is its first base's head
    head = int(table.group(2))  # A in its low half
    (tmp_path / "alq.c").write_text(source[:table.start(2)] + str(head + 1) + source[table.end(2):])
    x = every_int8(model.input_shape)
    with pytest.raises(AssertionError, match="layer 0"):
        assert_equal_to_reference(model, run_host(model, tmp_path, x), x)


def test_quantizer_thresholds_are_the_reference_rule():
    """Every int8 input, and int32 inputs around every threshold, take the reference's code."""
    layer = random_layer(np.random.default_rng(2), "fc", (1, 1, 8), 2, ix=4)
    for frac in (0, 3, 7, 12):
        thresholds, level_codes = quantizer(layer, frac)
        t = thresholds.astype(np.int64)
        v = np.unique(np.concatenate([np.arange(-128, 128), t - 1, t, t + 1]))
        codes = reference.quantize(v, frac, layer) @ (1 << np.arange(layer.activation_bits))
        np.testing.assert_array_equal(level_codes[np.searchsorted(thresholds, v, side="left")], codes)


def test_generated_c_is_commented_and_named():
    model = random_model(np.random.default_rng(0))
    source = render(model, prefix="demo", target="cortex-m4")["demo.c"]
    assert source.startswith("/*\n * Generated by tinysyn")
    for i, layer in enumerate(model.layers):
        assert re.search(rf"/\* layer {i}: {layer.kind}", source.replace("fully connected", "fc"))
    assert "static const uint32_t layer_0_bases" in source and "static union" in source
