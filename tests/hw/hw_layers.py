"""Random ALQ layers for the RTL tests, beyond tests/alq/alq_random.py's model."""
from __future__ import annotations

import numpy as np
from alq.alq_random import random_layer

from codegen.alq.format import AlqLayer, AlqModel, validate


def random_fc(rng: np.random.Generator, units: int) -> tuple:
    """A fully connected layer of random length (rarely a multiple of 32), group size, I_g (0 included)
    and I_x = 1..4, with a random integer input: (layer, x, frac)."""
    n = int(rng.integers(1, 300))
    group = "channel" if rng.random() < 0.3 else "subchannel"
    layer = random_layer(rng, "fc", (1, 1, n), units, group=group, group_size=int(rng.integers(1, n + 1)),
                         i_max=int(rng.integers(1, 5)), ix=int(rng.integers(1, 5)), relu=bool(rng.random() < 0.5))
    frac = int(rng.integers(0, 8))
    return layer, rng.integers(-300, 300, size=(1, 1, n)), frac


def small_model(rng: np.random.Generator) -> AlqModel:
    """Every layer kind in about 1.5 KB of frames for a 2 x 32 core (the emulated board takes about 250 B/s):
    conv 3x3 (kernel-wise groups) -> depthwise /2 -> average pool -> fc (sub-channel groups)."""
    layers = [random_layer(rng, "conv", (3, 3, 1), 3, group="kernel", i_max=2, ix=2)]
    layers.append(random_layer(rng, "depthwise", layers[-1].out_shape, 0, stride=(2, 2), i_max=2, ix=1))
    layers.append(AlqLayer("avgpool", layers[-1].out_shape, (1, 1, 3), (2, 2), (2, 2), "VALID"))
    layers.append(random_layer(rng, "fc", layers[-1].out_shape, 3, group="subchannel", group_size=2, ix=2, relu=False))
    model = AlqModel((3, 3, 1), 7, layers)
    validate(model, "small")
    return model
