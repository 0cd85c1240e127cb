"""Random ALQ layers for the RTL tests, beyond tests/alq/alq_random.py's model."""
from __future__ import annotations

import numpy as np
from alq.alq_random import random_layer


def random_fc(rng: np.random.Generator, units: int) -> tuple:
    """A fully connected layer of random length (rarely a multiple of 32), group size, I_g (0 included)
    and I_x = 1..4, with a random integer input: (layer, x, frac)."""
    n = int(rng.integers(1, 300))
    group = "channel" if rng.random() < 0.3 else "subchannel"
    layer = random_layer(rng, "fc", (1, 1, n), units, group=group, group_size=int(rng.integers(1, n + 1)),
                         i_max=int(rng.integers(1, 5)), ix=int(rng.integers(1, 5)), relu=bool(rng.random() < 0.5))
    frac = int(rng.integers(0, 8))
    return layer, rng.integers(-300, 300, size=(1, 1, n)), frac
