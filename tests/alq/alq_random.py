"""Random ALQ layers and models within the format's ranges, for tests on every backend."""
from __future__ import annotations

import numpy as np

from codegen.alq import bits
from codegen.alq.format import AlqLayer, AlqModel, validate
from codegen.ref.params import out_size


def random_weights(rng: np.random.Generator, layer: AlqLayer, i_max: int, alpha_max: int = 300,
                   zero_fraction: float = 0.25) -> None:
    """Fill counts (about ``zero_fraction`` of groups pruned to I_g = 0), alpha and bits."""
    o, g = layer.units, layer.groups
    counts = rng.integers(1, i_max + 1, size=(o, g))
    counts[rng.random((o, g)) < zero_fraction] = 0
    live = np.arange(i_max) < counts[..., None]
    alpha = np.where(live, rng.integers(1, alpha_max + 1, size=(o, g, i_max)), 0)
    signs = rng.choice(np.array([-1, 1], np.int8), size=(o, g, i_max, layer.n))
    signs[..., layer.length - layer.n * (g - 1):][:, -1] = 1  # the last group's padding stays bit 0
    signs[~live] = 1
    layer.counts, layer.alpha = counts.astype(np.uint8), alpha.astype(np.uint16)
    layer.bits = bits.pack(signs, layer.words)


def random_layer(rng: np.random.Generator, kind: str, in_shape, units: int, *, kernel=(3, 3), stride=(1, 1),
                 padding="SAME", group="channel", group_size=0, i_max=3, ix=2, relu=True) -> AlqLayer:
    h, w, c = in_shape
    if kind == "fc":
        out = (1, 1, units)
    else:
        out = (out_size(padding, h, kernel[0], stride[0], 1), out_size(padding, w, kernel[1], stride[1], 1),
               c if kind == "depthwise" else units)
    layer = AlqLayer(kind, tuple(in_shape), out, kernel, stride, padding, relu, group)
    layer.group_size = {"kernel": kernel[0] * kernel[1], "channel": layer.length}.get(group, group_size)
    random_weights(rng, layer, i_max)
    layer.w_frac, layer.x_frac = int(rng.integers(4, 10)), int(rng.integers(3, 8))
    layer.gamma = rng.integers(1, 1 << layer.x_frac, size=ix).astype(np.uint16)
    layer.x_ref = int(rng.integers(-(1 << layer.x_frac), 1 << layer.x_frac))
    layer.bias = rng.integers(-5000, 5000, size=layer.units).astype(np.int32)
    return layer


def random_model(rng: np.random.Generator) -> AlqModel:
    """conv (kernel-wise groups) -> depthwise /2 -> conv 1x1 (sub-channel groups) -> avgpool -> fc."""
    layers = [random_layer(rng, "conv", (6, 6, 3), 5, group="kernel")]
    layers.append(random_layer(rng, "depthwise", layers[-1].out_shape, 0, stride=(2, 2), ix=3))
    layers.append(random_layer(rng, "conv", layers[-1].out_shape, 8, kernel=(1, 1), padding="VALID",
                               group="subchannel", group_size=2, i_max=4))
    layers.append(AlqLayer("avgpool", layers[-1].out_shape, (1, 1, 8), (2, 2), (2, 2), "VALID"))
    layers.append(random_layer(rng, "fc", layers[-1].out_shape, 4, ix=1, relu=False))
    model = AlqModel((6, 6, 3), 7, layers)
    validate(model, "random")
    return model


def digits_shaped_model(rng: np.random.Generator, i_max: int = 3, ix: int = 2) -> AlqModel:
    """The digits model's shape with random weights: conv 3x3 1->8 on 8x8 (kernel-wise groups), depthwise 3x3 /2,
    pointwise 8->32, average pool 2x2, fully connected 128->10 (sub-channel groups of 32)."""
    layers = [random_layer(rng, "conv", (8, 8, 1), 8, group="kernel", i_max=i_max, ix=ix)]
    layers.append(random_layer(rng, "depthwise", layers[-1].out_shape, 0, stride=(2, 2), i_max=i_max, ix=ix))
    layers.append(random_layer(rng, "conv", layers[-1].out_shape, 32, kernel=(1, 1), padding="VALID", i_max=i_max,
                               ix=ix))
    layers.append(AlqLayer("avgpool", layers[-1].out_shape, (2, 2, 32), (2, 2), (2, 2), "VALID"))
    layers.append(random_layer(rng, "fc", layers[-1].out_shape, 10, group="subchannel", group_size=32, i_max=i_max,
                               ix=ix, relu=False))
    model = AlqModel((8, 8, 1), 7, layers)
    validate(model, "digits-shaped")
    return model
