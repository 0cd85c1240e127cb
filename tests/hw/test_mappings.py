"""The driver's two lane mappings (hw/driver.py): lanes = output units or lanes = output positions of one unit.
Both == the reference on random layers, with the cycle model == the simulation; the per-layer choice; units
grouped by alike bases and their results un-permuted."""
import numpy as np
import pytest
from alq.alq_random import random_layer

from codegen.alq import reference
from hw.core import CoreParams
from hw.driver import (
    MAPPINGS,
    _unit_sets,
    cycle_model,
    params_for,
    schedule,
    simulate_layer,
)


def _prune(layer, units):
    layer.counts[units] = 0
    layer.alpha[units] = 0
    layer.bits[units] = 0
    return layer


def _layers():
    """Every kind, I_g 0..8 (random 1..8, about a quarter of the groups pruned), I_x 1..8, groups of several W = 32
    words, and units pruned whole (two, so that the units mapping on 2 lanes has a set with nothing live)."""
    rng = np.random.default_rng(21)
    layers = [
        (random_layer(rng, "conv", (5, 4, 3), 6, group="kernel", i_max=8, ix=1), 2),
        (random_layer(rng, "conv", (3, 3, 4), 5, kernel=(1, 1), padding="VALID", group="subchannel", group_size=3,
                      i_max=3, ix=8), 2),
        (random_layer(rng, "depthwise", (5, 5, 3), 0, stride=(2, 2), i_max=5, ix=3), 0),
        (random_layer(rng, "fc", (1, 2, 40), 7, group="subchannel", group_size=35, i_max=8, ix=5, relu=False), 2),
    ]
    return [(_prune(layer, list(range(1, 1 + dead))), rng.integers(-200, 200, size=layer.in_shape), 6)
            for layer, dead in layers]


LAYERS = _layers()


@pytest.mark.parametrize("mapping", MAPPINGS)
@pytest.mark.parametrize("index", range(len(LAYERS)))
def test_both_mappings_equal_the_reference_in_the_modelled_cycles(index, mapping):
    layer, x, frac = LAYERS[index]
    per_lane = layer.kind == "depthwise" and mapping == "units"  # a depthwise units set needs a lane's own input
    params = params_for(layer, 2, 32, per_lane_acts=per_lane)
    sets = schedule(layer, reference.layer_codes(layer, x, frac), params, mapping)
    assert {s.mapping for s in sets} == {mapping}
    if mapping == "units" and layer.kind != "depthwise":  # two units pruned whole share a set: one beat an output
        assert any(s.beats == 1 and len(s.config) == 3 + 2 + 1 for s in sets)
    y, cycles = simulate_layer(layer, x, frac, 2, 32, mapping=mapping, per_lane_acts=per_lane)  # MismatchError if !=
    assert np.array_equal(y, reference.layer_forward(layer, x, frac)[0])
    assert cycles == cycle_model(sets, params.latency)


def test_an_output_s_beats_in_each_mapping():
    """positions: exactly I_x * sum_g I_g * words_g of the set's unit; units: the most bases of its lanes per group."""
    layer, x, frac = LAYERS[3]
    params = params_for(layer, 2, 32)
    words = -(-layer.group_lengths() // 32)
    codes = reference.layer_codes(layer, x, frac)
    for mapping in MAPPINGS:
        for s in schedule(layer, codes, params, mapping):
            units = np.unique(s.outputs[s.outputs >= 0] % layer.units)
            assert len(units) == (1 if mapping == "positions" else min(2, len(units)))
            bases = layer.counts[units].max(axis=0)
            want = layer.activation_bits * int((bases * words).sum()) if bases.any() else 1
            assert s.beats == want


def test_the_mapping_of_fewer_modelled_cycles_is_picked():
    rng = np.random.default_rng(22)
    conv_many_positions = random_layer(rng, "conv", (6, 6, 1), 4, group="kernel", i_max=4, ix=2)
    conv_few_positions = random_layer(rng, "conv", (1, 2, 8), 8, kernel=(1, 1), padding="VALID", i_max=2, ix=2)
    conv_few_positions.counts[:] = 2  # alike units: a units set wastes nothing, a positions set idles 2 of 4 lanes
    fc = random_layer(rng, "fc", (1, 1, 30), 6, ix=2)
    depthwise = random_layer(rng, "depthwise", (4, 4, 3), 0, ix=2)
    for layer, want in ((conv_many_positions, "positions"), (conv_few_positions, "units"), (fc, "units"),
                        (depthwise, "positions")):
        params = params_for(layer, 4, 32)
        codes = reference.layer_codes(layer, rng.integers(-100, 100, size=layer.in_shape), 5)
        cycles = {m: cycle_model(schedule(layer, codes, params, m), params.latency)
                  for m in MAPPINGS if layer.kind != "depthwise" or m == "positions"}
        assert min(cycles, key=cycles.get) == want, (layer.kind, cycles)
        assert {s.mapping for s in schedule(layer, codes, params)} == {want}
    with pytest.raises(ValueError, match="the units mapping does not fit depthwise"):  # one activation word, 3 inputs
        schedule(depthwise, codes, params_for(depthwise, 4, 32), "units")
    small_table = CoreParams(4, 32, max_groups=1)  # the positions mapping needs an entry per activation base
    codes = reference.layer_codes(conv_many_positions, np.zeros(conv_many_positions.in_shape, np.int64), 5)
    assert {s.mapping for s in schedule(conv_many_positions, codes, small_table)} == {"units"}


def _grouping(cost, lanes):
    return sorted(sorted(row) for row in _unit_sets(cost, lanes).tolist())


def test_units_of_alike_bases_share_a_set_and_their_results_are_unpermuted():
    rng = np.random.default_rng(23)
    layer = random_layer(rng, "fc", (1, 1, 64), 5, group="subchannel", group_size=32, i_max=8, ix=2)
    layer.counts[:] = [[8, 0], [0, 8], [8, 0], [0, 8], [8, 0]]  # in order, every set would pay 8 bases in both groups
    live = np.arange(8) < layer.counts[..., None]
    layer.alpha[~live], layer.bits[~live] = 0, 0
    assert _grouping(layer.counts.astype(np.int64), 2) == [[-1, 4], [0, 2], [1, 3]]
    assert _grouping(np.array([[8, 0], [0, 8], [8, 0]]), 2) == [[-1, 1], [0, 2]]  # a move into an idle lane
    x = rng.integers(-100, 100, size=(1, 1, 64))
    y, cycles = simulate_layer(layer, x, 5, 2, 32)  # MismatchError unless every unit's result is in its place
    assert np.array_equal(y, reference.layer_forward(layer, x, 5)[0])
    assert cycles == 3 * (2 * 8 + params_for(layer, 2, 32).latency)
