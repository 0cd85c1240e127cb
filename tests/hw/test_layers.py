"""Whole models layer by layer through the simulated core, == the reference on every element: a random
model, and the ALQ digits model (tests/conftest.py) on each device's default configuration."""
import numpy as np
import pytest
from alq.alq_random import random_model

from codegen.alq import reference
from hw.devices import DEVICES
from hw.driver import simulate_layer


def _random():
    rng = np.random.default_rng(11)
    model = random_model(rng)
    return model, rng.integers(-128, 128, size=model.input_shape)


MODELS = {"random": _random}


@pytest.mark.parametrize("lanes, width, per_lane_acts", [(8, 64, False), (3, 32, True)])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_layer_equals_the_reference(name, lanes, width, per_lane_acts):
    """Both activation modes: on a broadcast core the depthwise layer runs a position a lane, a channel a set."""
    model, x = MODELS[name]()
    want = reference.forward(model, x)
    for index, (layer, frac) in enumerate(zip(model.layers, model.input_fracs())):
        y, cycles = simulate_layer(layer, x, frac, lanes, width, per_lane_acts=per_lane_acts)  # MismatchError unless ==
        assert np.array_equal(y, want[index])
        assert (cycles > 0) == layer.alq
        x = y


@pytest.mark.parametrize("device", sorted(DEVICES))
def test_alq_digits_model_on_the_device_defaults(alq_digits, device):
    model, x = alq_digits
    want = reference.forward(model, x)
    for index, (layer, frac) in enumerate(zip(model.layers, model.input_fracs())):
        y, _ = simulate_layer(layer, x, frac, **DEVICES[device].core_params())  # MismatchError unless ==
        assert np.array_equal(y, want[index])
        x = y
