"""The core through the layer driver: random dot products, the zero-cycle skip, back-pressure, the cycle model."""
import numpy as np
import pytest
from alq.alq_random import random_layer
from amaranth.sim import Simulator
from hw_layers import random_fc

from codegen.alq import reference
from codegen.alq.format import accumulator_bound
from codegen.errors import InputError
from hw.core import CoreParams, Reg, XnorCore
from hw.driver import MAPPINGS, cycle_model, params_for, run, schedule, simulate_layer


def test_1000_random_dot_products_equal_the_reference():
    rng = np.random.default_rng(6)
    done = 0
    for width in (32, 64, 96, 32, 64, 128, 64, 32):  # 8 layers of 125 units: 1000 dot products
        layer, x, frac = random_fc(rng, 125)
        y, _ = simulate_layer(layer, x, frac, lanes=8, width=width)  # raises MismatchError unless ==
        assert np.array_equal(y, reference.layer_forward(layer, x, frac)[0])
        done += y.size
    assert done == 1000


def _pruned(rng):
    """An fc layer of 6 groups of 70 with groups 1, 3 and 4 pruned in every unit, and units 4..7 pruned whole."""
    layer = random_layer(rng, "fc", (1, 1, 400), 12, group="subchannel", group_size=70, ix=3)
    dead = np.zeros((12, 6), bool)
    dead[:, [1, 3, 4]] = True
    dead[4:8] = True  # the second set of 4 lanes: nothing live
    layer.counts[dead] = 0
    layer.alpha[dead] = 0
    layer.bits[dead] = 0
    return layer, rng.integers(-300, 300, size=(1, 1, 400)), 5


def test_pruned_groups_cost_zero_cycles():
    layer, x, frac = _pruned(np.random.default_rng(7))
    params = params_for(layer, 4, 32)
    _, cycles = simulate_layer(layer, x, frac, lanes=4, width=32, mapping="units")
    sets = schedule(layer, reference.layer_codes(layer, x, frac), params, "units")
    words = -(-layer.group_lengths() // 32)
    want = 0
    for s in sets:
        bases = layer.counts[s.outputs[s.outputs >= 0]].max(axis=0)  # one position: an output is its unit
        assert not bases[[1, 3, 4]].any()
        # the all-pruned set (units 4..7): one word of alpha 0 yields the bias
        want += (layer.activation_bits * int((bases * words).sum()) if bases.any() else 1) + params.latency
    assert sorted(sorted(s.outputs[s.outputs >= 0]) for s in sets if s.beats == 1) == [[4, 5, 6, 7]]
    assert cycles == want


def test_a_layer_pruned_whole_yields_its_biases():
    rng = np.random.default_rng(15)
    layer = random_layer(rng, "fc", (1, 1, 50), 5, group="subchannel", group_size=20)
    layer.counts[:] = 0
    layer.alpha, layer.bits = layer.alpha[:, :, :0], layer.bits[:, :, :0]  # I_max = 0
    x = rng.integers(-300, 300, size=(1, 1, 50))
    y, cycles = simulate_layer(layer, x, 3, lanes=4, width=32)
    assert np.array_equal(y.reshape(-1), np.maximum(layer.bias, 0))
    assert cycles == 2 * (1 + params_for(layer, 4, 32).latency)


@pytest.mark.parametrize("pattern", [lambda c: c % 3 != 0, lambda c: (c // 5) % 2 == 0])
def test_back_pressure_keeps_the_results(pattern):
    rng = np.random.default_rng(8)
    layer, x, frac = random_fc(rng, 10)
    y, cycles = simulate_layer(layer, x, frac, lanes=3, width=32, result_ready=pattern)
    assert np.array_equal(y, reference.layer_forward(layer, x, frac)[0])
    params = params_for(layer, 3, 32)
    assert cycles >= cycle_model(schedule(layer, reference.layer_codes(layer, x, frac), params), params.latency)


@pytest.mark.parametrize("options", [{}, {"result_fifo": 8}], ids=["stall", "fifo"])
def test_back_pressure_on_one_beat_outputs(options):
    """Outputs one beat long (I_x = 1, one live word) come every cycle: a stalled result holds the pipeline, or
    (a result FIFO of the fewest entries, latency + 2) the core takes no beat while the FIFO may fill."""
    rng = np.random.default_rng(9)
    layer = random_layer(rng, "conv", (4, 4, 2), 3, kernel=(1, 1), padding="VALID", i_max=1, ix=1)
    layer.counts[:] = 1  # no pruned group, one base
    layer.alpha[:, :, 0] = rng.integers(1, 300, size=layer.alpha.shape[:2])
    x = rng.integers(-128, 128, size=(4, 4, 2))
    if options:  # the fewest entries CoreParams allows
        assert params_for(layer, 3, 32, **options).latency + 2 == options["result_fifo"]
    y, _ = simulate_layer(layer, x, 7, lanes=3, width=32, result_ready=lambda c: c % 4 == 1, **options)
    assert np.array_equal(y, reference.layer_forward(layer, x, 7)[0])
    for mapping in MAPPINGS:  # a consumer always ready: the fewest entries keep one beat a cycle
        params = params_for(layer, 3, 32, **options)
        _, cycles = simulate_layer(layer, x, 7, lanes=3, width=32, mapping=mapping, **options)
        assert cycles == cycle_model(schedule(layer, reference.layer_codes(layer, x, 7), params, mapping),
                                     params.latency)


@pytest.mark.parametrize("options", [{}, {"result_fifo": 9, "mul_reg": True}], ids=["stall", "fifo"])
def test_gaps_in_the_source_and_the_consumer_keep_the_results(options):
    """Beats offered two cycles in three and results taken one in four: a cycle with no beat taken, inside an output,
    must add nothing (its coefficient is zero), stalled or not."""
    rng = np.random.default_rng(23)
    layer, x, frac = random_fc(rng, 9)
    params = params_for(layer, 3, 32, **options)
    sets = schedule(layer, reference.layer_codes(layer, x, frac), params)
    y, cycles = run(params, sets, result_ready=lambda c: c % 4 == 1, source_valid=lambda c: c % 3 != 0)
    assert np.array_equal(y.reshape(-1), reference.layer_forward(layer, x, frac)[0].reshape(-1))
    assert cycles > cycle_model(sets, params.latency)


def test_a_result_fifo_shorter_than_the_latency_is_refused():
    with pytest.raises(ValueError, match="result FIFO of 8 < 9, the outputs a stream of one-beat outputs keeps "
                                         "counted"):
        CoreParams(3, 32, result_fifo=8, mul_reg=True)


@pytest.mark.parametrize("mapping", MAPPINGS)
def test_cycle_model_equals_simulated_cycles(mapping):
    rng = np.random.default_rng(10)
    depthwise = random_layer(rng, "depthwise", (4, 4, 5), 0, kernel=(3, 3), ix=2)
    cases = [(*random_fc(rng, 11), lanes, width, {}) for lanes, width in ((8, 64), (5, 32), (2, 96))]
    cases += [(depthwise, rng.integers(-100, 100, size=(4, 4, 5)), 6, 4, 32, {"per_lane_acts": per_lane})
              for per_lane in (False, True) if per_lane or mapping == "positions"]
    cases.append((*random_fc(rng, 7), 3, 32, {"mul_reg": True, "regs_first": 3}))
    cases.append((*random_fc(rng, 9), 4, 64, {"mul_reg": True, "result_fifo": 9, "bias_reg": True}))
    for layer, x, frac, lanes, width, kw in cases:
        params = params_for(layer, lanes, width, **kw)
        _, cycles = simulate_layer(layer, x, frac, lanes, width, mapping=mapping, **kw)
        sets = schedule(layer, reference.layer_codes(layer, x, frac), params, mapping)
        assert len(sets) == (-(-layer.units // lanes) if mapping == "units" else layer.units)
        assert cycles == cycle_model(sets, params.latency)


@pytest.mark.parametrize("options", [{"bias_reg": True}, {"bias_reg": True, "result_fifo": 6}], ids=["stall", "fifo"])
def test_a_bias_register_is_exact_at_the_shortest_latency(options):
    """The tightest case for the bias register: one popcount register, no product register, and every unit set
    writing its biases last, right before its first beat, which then meets the register's new value."""
    rng = np.random.default_rng(21)
    layer, x, frac = random_fc(rng, 10)
    params = params_for(layer, 3, 32, regs_every=5, **options)
    assert params.popcount_latency == 1 and not params.mul_reg
    sets = schedule(layer, reference.layer_codes(layer, x, frac), params)
    for s in sets:
        s.config.sort(key=lambda write: Reg.BIAS <= write[0] < Reg.TABLE)
    assert len(sets) > 1 and all(Reg.BIAS <= s.config[-1][0] < Reg.TABLE for s in sets)
    y, cycles = run(params, sets)
    assert np.array_equal(y.reshape(-1), reference.layer_forward(layer, x, frac)[0].reshape(-1))
    assert cycles == cycle_model(sets, params.latency)


def test_coefficients_wider_than_the_core_are_one_line_errors():
    rng = np.random.default_rng(16)
    layer, x, frac = random_fc(rng, 4)
    layer.alpha[layer.alpha > 0] = 300
    layer.gamma[:] = 300  # 90000 >= 2^16
    with pytest.raises(InputError, match="coefficient of 16 bits too narrow: the layer's largest A\\*G_j is 90000; "
                                         "re-export it with fewer alpha or gamma fraction bits"):
        simulate_layer(layer, x, frac, lanes=4, width=32)
    simulate_layer(layer, x, frac, lanes=4, width=32, coef_bits=17)


def test_eight_bases_and_a_narrow_accumulator():
    """I_g = I_x = 8, the format's most, and an accumulator one bit wider than the layer's bound (25 bits)."""
    rng = np.random.default_rng(14)
    layer = random_layer(rng, "fc", (1, 1, 40), 6, group="subchannel", group_size=13, i_max=8, ix=8)
    x = rng.integers(-300, 300, size=(1, 1, 40))
    bound = int(accumulator_bound(layer).max())
    acc_width = bound.bit_length() + 1
    assert acc_width < 32
    y, _ = simulate_layer(layer, x, 4, lanes=4, width=32, acc_width=acc_width)
    assert np.array_equal(y, reference.layer_forward(layer, x, 4)[0])


def test_no_beat_is_taken_the_cycle_after_a_configuration_write():
    """What makes synthesis' don't-care read/write collisions (hw/synth.py NO_RW_CHECK) safe: the block RAMs' outputs
    in the cycle after a write are never used. Beats wait from the write on; the core takes none right after it."""
    dut = XnorCore(CoreParams(2, 32))
    taken = []

    async def bench(ctx):
        ctx.set(dut.config.valid, 1)
        ctx.set(dut.config.payload, {"addr": Reg.TABLE, "data": 0})
        await ctx.tick().until(dut.config.ready)  # the write happens at this edge
        ctx.set(dut.config.valid, 0)
        ctx.set(dut.acts.valid, 1)
        ctx.set(dut.weights.valid, 1)
        for _ in range(3):
            taken.append(ctx.get(dut.acts.ready))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert taken == [0, 1, 1]
