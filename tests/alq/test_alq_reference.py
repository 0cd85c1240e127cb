"""The ALQ integer reference against a plain integer convolution of the same numbers.

The oracle never packs or counts bits: it expands every weight to its integer value
sum_i +-A_gi and every activation to its level's integer value, and multiplies.
"""
from __future__ import annotations

import numpy as np
import pytest
from alq_random import random_layer, random_model

from codegen.alq import bits, format, reference
from codegen.errors import ModelError


def _weights(layer) -> np.ndarray:
    """Integer weights [O, N] in the layer's reduction order."""
    signs = bits.unpack(layer.bits, layer.n).astype(np.int64)  # [O, G, I_max, n]
    w = (signs * layer.alpha.astype(np.int64)[..., None]).sum(axis=2).reshape(layer.units, -1)
    return w[:, : layer.length]


def _oracle(layer, x, frac) -> np.ndarray:
    """Direct sums: the nearest level by brute force, explicit windows, lowest level outside the image."""
    _codes, values = reference.levels(layer)
    common = max(frac, layer.x_frac)
    v = x.astype(np.int64) << (common - frac)
    lv = values << (common - layer.x_frac)
    xhat = np.empty(x.shape, np.int64)
    for idx in np.ndindex(x.shape):
        best = min(range(len(lv)), key=lambda c: (abs(int(v[idx]) - int(lv[c])), int(lv[c]), c))
        xhat[idx] = values[best]
    w = _weights(layer)
    h, wd, c = layer.in_shape
    oh, ow, o = layer.out_shape
    bias = layer.bias.astype(np.int64)
    if layer.kind == "fc":
        y = bias + w @ xhat.reshape(-1)
        return np.maximum(y, 0).reshape(1, 1, o) if layer.relu else y.reshape(1, 1, o)
    kh, kw = layer.kernel
    sh, sw = layer.stride
    pad_h = max(0, (oh - 1) * sh + kh - h) // 2 if layer.padding == "SAME" else 0
    pad_w = max(0, (ow - 1) * sw + kw - wd) // 2 if layer.padding == "SAME" else 0
    low = int(values.min())
    y = np.zeros((oh, ow, o), np.int64)
    for oy, ox, u in np.ndindex(oh, ow, o):
        total = int(bias[u])
        for ky, kx in np.ndindex(kh, kw):
            iy, ix = oy * sh + ky - pad_h, ox * sw + kx - pad_w
            inside = 0 <= iy < h and 0 <= ix < wd
            if layer.kind == "depthwise":
                total += int(w[u, ky * kw + kx]) * (int(xhat[iy, ix, u]) if inside else low)
                continue
            for ci in range(c):
                r = ci * kh * kw + ky * kw + kx if layer.order == "chw" else (ky * kw + kx) * c + ci
                total += int(w[u, r]) * (int(xhat[iy, ix, ci]) if inside else low)
        y[oy, ox, u] = max(total, 0) if layer.relu else total
    return y


CASES = [
    {"kind": "conv", "in_shape": (5, 5, 3), "units": 4, "group": "kernel"},
    {"kind": "conv", "in_shape": (5, 4, 2), "units": 3, "kernel": (3, 2), "stride": (2, 1), "group": "subchannel", "group_size": 5},
    {"kind": "conv", "in_shape": (4, 4, 40), "units": 2, "kernel": (1, 1), "padding": "VALID", "group": "channel", "i_max": 5, "ix": 4},
    {"kind": "depthwise", "in_shape": (6, 5, 3), "units": 0, "stride": (2, 2), "group": "kernel", "ix": 3},
    {"kind": "fc", "in_shape": (1, 1, 70), "units": 5, "group": "subchannel", "group_size": 33, "relu": False, "ix": 1},
    {"kind": "fc", "in_shape": (2, 2, 9), "units": 3, "group": "channel", "i_max": 8, "ix": 8},
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_layer_matches_plain_integer_sums(case):
    rng = np.random.default_rng(100 + case)
    layer = random_layer(rng, **CASES[case])
    frac = int(rng.integers(0, 12))
    for _ in range(3):
        x = rng.integers(-300, 3000, size=layer.in_shape)
        y, out_frac = reference.layer_forward(layer, x, frac)
        assert out_frac == layer.w_frac + layer.x_frac
        assert np.array_equal(y, _oracle(layer, x, frac))


def test_quantize_takes_the_nearest_level_and_the_lower_on_ties():
    layer = random_layer(np.random.default_rng(0), "fc", (1, 1, 4), 1, ix=2)
    layer.x_ref, layer.gamma, layer.x_frac = 10, np.array([4, 2], np.uint16), 0  # levels 4, 8, 12, 16
    codes = reference.quantize(np.array([-5, 6, 7, 10, 100]), 0, layer)
    got = layer.x_ref + ((1 - 2 * codes.astype(np.int64)) * layer.gamma).sum(axis=1)
    assert got.tolist() == [4, 4, 8, 8, 16]  # 6 is halfway between 4 and 8: the lower


def test_bits_round_trip_and_padding_rule():
    rng = np.random.default_rng(3)
    signs = rng.choice(np.array([-1, 1], np.int8), size=(4, 45))
    packed = bits.pack(signs)
    assert packed.shape == (4, 2) and np.array_equal(bits.unpack(packed, 45), signs)
    assert int(packed[0, 0]) & 1 == (signs[0, 0] < 0)  # element 0 is bit 0 of word 0; bit 1 = -1
    assert bits.padding_clear(packed, 45) and not bits.padding_clear(packed | np.uint32(1 << 31), 45)


def test_model_file_round_trip(tmp_path):
    model = random_model(np.random.default_rng(7))
    path = tmp_path / "m.npz"
    format.write(path, model)
    again = format.read(path)
    x = np.random.default_rng(8).integers(0, 128, size=model.input_shape)
    for a, b in zip(reference.forward(model, x), reference.forward(again, x)):
        assert np.array_equal(a, b)
    assert model.input_fracs() == again.input_fracs()


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.update({"l0.counts": a["l0.counts"] + 9}), "more bases"),
    (lambda a: a.update({"l2.bits": a["l2.bits"] | (a["l2.alpha"][..., None] > 0).astype(np.uint32) << 31}),
     "bits past"),
    (lambda a: a.update({"l4.gamma": np.zeros_like(a["l4.gamma"])}), "positive"),
    (lambda a: a.update({"l1.x_frac": np.array(40), "l1.w_frac": np.array(0)}) or
     a.update({"l1.alpha": np.where(a["l1.alpha"] > 0, np.uint16(65535), np.uint16(0)),
               "l1.gamma": np.full_like(a["l1.gamma"], 65535)}), "accumulator"),
    (lambda a: a.pop("l3.stride"), "missing field 'l3.stride'"),
    (lambda a: a.update({"l0.out_shape": np.array([5, 5, 5])}), "does not match input"),
    (lambda a: a.update({"version": np.array(9)}), "version 9"),
])
def test_bad_files_get_one_line_errors(tmp_path, edit, message):
    model = random_model(np.random.default_rng(7))
    path = tmp_path / "m.npz"
    format.write(path, model)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    edit(arrays)
    np.savez(path, **arrays)
    with pytest.raises(ModelError, match=message) as err:
        format.read(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_truncated_file(tmp_path):
    path = tmp_path / "m.npz"
    format.write(path, random_model(np.random.default_rng(7)))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelError, match="not an ALQ"):
        format.read(path)
