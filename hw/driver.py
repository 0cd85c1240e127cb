"""The layer driver: an ALQ layer and its input as the core's stream beats, run in the Amaranth simulator.

The core's lanes share one schedule and one broadcast slot; each has its own "weights" slot. XNOR is
symmetric, so a set of lanes maps either output units (the per-lane slot each unit's weights, the broadcast
slot the activations) or output positions of one unit (the per-lane slot each position's activations, the
broadcast slot the unit's weights): :func:`schedule` picks per layer the mapping of fewer cycles. Per set the
driver writes the configuration (the live-group table, I_x, relu and each lane's start value), then streams
the beats in the core's order (hw/README.md), each activation beat with every lane's coefficient
A_gi * G_j, and collects one result beat per P outputs. An average pool has no ALQ arithmetic: the host
computes it (``reference.layer_forward``) in zero core cycles.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations, product

import numpy as np

from codegen.alq import reference
from codegen.alq.format import AlqLayer, accumulator_bound
from codegen.errors import InputError, MismatchError

from .core import CONFIG_LAYOUT, CoreParams, Reg, XnorCore

WORD = 32  # the model file's word
MAPPINGS = ("units", "positions")


@dataclass
class UnitSet:
    """One set of lanes: its configuration writes, its beats in the order the core takes them (payloads as
    integers) and where each lane's results go."""

    mapping: str  # "units": a lane per output unit; "positions": a lane per output position of one unit
    outputs: np.ndarray  # [result beats, lanes] the output (position * O + unit) of each lane, -1 for an idle lane
    config: list[tuple[int, int]]  # (address, value)
    weights: list[int]  # the per-lane slot, one per IX beats: (result beat, entry, i, word)
    acts: list[int]  # the broadcast slot and the coefficients, one per beat: (result beat, entry, i, word, j)
    beats: int  # per result beat: IX * sum over live entries of I_e * words_e


def check_params(layer: AlqLayer, x: np.ndarray, lanes: int, width: int, **params) -> None:
    """One-line :class:`InputError` for parameters or an input that do not fit the layer; ``params`` go to
    :class:`CoreParams`."""
    try:
        core = params_for(layer, lanes, width, **params) if layer.alq else CoreParams(lanes, width, **params)
    except ValueError as e:
        raise InputError(str(e)) from None
    x = np.asarray(x)
    if x.shape != tuple(layer.in_shape) or not np.issubdtype(x.dtype, np.integer):
        raise InputError(f"input is {x.dtype} {x.shape}; the layer reads integers {tuple(layer.in_shape)}")
    if layer.alq:
        bound = int(accumulator_bound(layer).max())
        if bound >= 1 << (core.acc_width - 1):
            raise InputError(f"accumulator of {core.acc_width} bits too narrow: the layer's sums reach {bound}")
        largest = int(layer.alpha.max(initial=0)) * int(layer.gamma.max())
        if largest >= 1 << core.coef_bits:
            raise InputError(f"coefficient of {core.coef_bits} bits too narrow: the layer's largest A*G_j is "
                             f"{largest}; re-export it with fewer alpha or gamma fraction bits")


def params_for(layer: AlqLayer, lanes: int, width: int, **params) -> CoreParams:
    """A core whose table and word counter are just large enough for ``layer`` in either mapping (a table entry
    per live group and activation base in the positions mapping, up to the core's 1024)."""
    entries = max(layer.groups, min(1024, layer.groups * layer.activation_bits))
    return CoreParams(lanes, width, max_groups=entries, max_words=-(-layer.n // width), **params)


def core_bias(layer: AlqLayer, width: int) -> np.ndarray:
    """The accumulator's start per unit, int64 [O], for a core that adds ``2 * c * popcount(w XNOR a)`` over
    all W bits of each word. A word's term is ``c (n_valid - 2 popcount(w XOR a))`` (FORMAT.md), and the
    XNOR counts the W - n_valid padding bits too, so the word adds ``c (2 W - n_valid)`` too many:
    the start is the folded bias less ``A_gi G_j (2 W words_g - n_g)`` over every group, base and j."""
    lengths = layer.group_lengths()
    return reference.folded_bias(layer) - reference.coefficient_sums(layer, 2 * width * -(-lengths // width) - lengths)


def _chunks(packed: np.ndarray, width: int) -> np.ndarray:
    """[..., words32] -> [..., W-bit words, width / 32]: groups as the core's W-bit words."""
    per = width // WORD
    chunks = -(-packed.shape[-1] // per)
    padded = np.zeros((*packed.shape[:-1], chunks * per), np.uint32)
    padded[..., : packed.shape[-1]] = packed
    return padded.reshape(*packed.shape[:-1], chunks, per)


def _ints(words: np.ndarray) -> list[int]:
    """[beats, ...] of unsigned words -> one little-endian integer per beat."""
    rows = np.ascontiguousarray(words).reshape(len(words), -1)
    return [int.from_bytes(row.tobytes(), "little") for row in rows]


def _fields(values: np.ndarray, bits: int) -> list[int]:
    """[beats, fields] of unsigned integers -> one integer per beat, ``bits`` a field, the first lowest."""
    return [sum(int(v) << (bits * k) for k, v in enumerate(row)) for row in values]


def _unit_sets(cost: np.ndarray, lanes: int) -> np.ndarray:
    """Units in sets of ``lanes``, [sets, lanes] (-1: an idle lane), whose lanes have alike per-group bases. A set's
    output takes the sum over groups of its lanes' most beats there (``cost`` [O, G]: I_g * words_g), so units are
    sorted by their own beats, then two lanes of two sets (a unit and an idle lane: a move) swap while that saves
    beats."""
    order = np.full(-(-len(cost) // lanes) * lanes, -1)
    order[: len(cost)] = np.argsort(-cost.sum(axis=1), kind="stable")
    sets = order.reshape(-1, lanes)
    padded = np.vstack([cost, np.zeros_like(cost[:1])])  # row -1: an idle lane costs nothing

    def beats(*rows):
        return sum(int(padded[r].max(axis=0).sum()) for r in rows)

    improved = True
    while improved:
        improved = False
        for a, b in combinations(range(len(sets)), 2):
            for x, y in product(range(lanes), repeat=2):
                before = beats(sets[a], sets[b])
                sets[a, x], sets[b, y] = sets[b, y], sets[a, x]
                if beats(sets[a], sets[b]) < before:
                    improved = True
                else:
                    sets[a, x], sets[b, y] = sets[b, y], sets[a, x]
    return sets[(sets >= 0).any(axis=1)]  # a set emptied by moves is gone


def mappings(layer: AlqLayer, core: CoreParams) -> list[str]:
    """The mappings of :data:`MAPPINGS` that can run ``layer`` on ``core``."""
    fit = []
    if layer.kind != "depthwise" or core.per_lane_acts:  # units: the broadcast slot carries one input for all lanes
        fit.append("units")
    live = max(1, int((layer.counts > 0).sum(axis=1).max(initial=0)))
    if live * layer.activation_bits <= core.max_groups:  # positions: an entry per live group and activation base
        fit.append("positions")
    return fit


def schedule(layer: AlqLayer, codes: np.ndarray, core: CoreParams, mapping: str | None = None) -> list[UnitSet]:
    """The unit sets of ``layer`` for activation codes [positions, O or 1, G, I_x, words32] in ``mapping``, by
    default the one of fewer cycles by :func:`cycle_model` among those that fit the core (both are built: the
    streams are small beside the simulation).

    ``units``: a lane per output unit (sets of P units), the per-lane slot the unit's weights, held over the I_x
    activation beats (IX = I_x), the broadcast slot the position's activations; not for a depthwise layer (an
    input per unit) on a broadcast core. ``positions``: a unit a set and a lane per output position (P positions a
    result beat): XNOR is symmetric, so the per-lane slot carries each position's activations and the broadcast
    slot the unit's weights, both advancing every beat (IX = 1; a table entry per live group and activation base).
    A positions set's output takes exactly I_x * sum_g I_g * words_g beats of its unit; a units set's pays, per
    group, the most bases of its lanes. A positions set idles the lanes past the last position (fc has one), and
    it has a unit's table, so O sets (and latencies) against ceil(O / P)."""
    fit = mappings(layer, core)
    if not fit:  # a depthwise layer on a broadcast core whose table is too small for the positions mapping
        raise InputError(f"{layer.kind}: a core of {core.max_groups} table entries without per-lane activations "
                         f"cannot run it (the positions mapping needs an entry per live group and activation base)")
    if mapping is not None and mapping not in fit:
        raise ValueError(f"the {mapping} mapping does not fit {layer.kind} on this core")
    options = [_schedule(layer, codes, core, m) for m in ([mapping] if mapping else fit)]
    return min(options, key=lambda sets: cycle_model(sets, core.latency))


def _lanes(layer: AlqLayer, positions: int, lanes: int, mapping: str, words: np.ndarray):
    """Each set's lanes per result beat as (unit, position, real), each [result beats, lanes]; an idle lane
    (real False) repeats a real lane's indices, so every lane's operands are the set's."""
    if mapping == "units":
        for row in _unit_sets(layer.counts.astype(np.int64) * words, lanes):
            shape = (positions, lanes)
            yield (np.broadcast_to(np.where(row >= 0, row, row.max()), shape),
                   np.broadcast_to(np.arange(positions)[:, None], shape), np.broadcast_to(row >= 0, shape))
    else:
        at = np.arange(-(-positions // lanes) * lanes).reshape(-1, lanes)
        for unit in range(layer.units):
            yield np.full(at.shape, unit), np.minimum(at, positions - 1), at < positions


def _schedule(layer: AlqLayer, codes: np.ndarray, core: CoreParams, mapping: str) -> list[UnitSet]:
    lanes, width, ix = core.lanes, core.width, layer.activation_bits
    alphas, planes = layer.alpha, layer.bits
    if not alphas.shape[2]:  # I_max = 0, every group pruned: one basis of zeros, so the sets below yield the biases
        alphas = np.zeros((*alphas.shape[:2], 1), np.uint16)
        planes = np.zeros((*planes.shape[:2], 1, planes.shape[3]), np.uint32)
    own_input = codes.shape[1] > 1
    w_bits, a_bits = _chunks(planes, width), _chunks(codes, width)  # [O, G, I, c, .], [P, O|1, G, I_x, c, .]
    group_words = -(-layer.group_lengths() // width)
    bias = core_bias(layer, width)
    gamma = layer.gamma.astype(np.int64)
    coef_at = core.act_layout["coef"].offset
    sets = []
    for unit, pos, real in _lanes(layer, len(codes), lanes, mapping, group_words):
        counts = layer.counts[unit[real]].max(axis=0)
        live, words = np.flatnonzero(counts), group_words
        # Table entries: a live group with its I_x activation bases innermost (IX = I_x), or one per activation base.
        inner, set_ix = ([range(ix)], ix) if mapping == "units" else ([range(j, j + 1) for j in range(ix)], 1)
        if not len(live):  # every group pruned: one beat of coefficient 0 yields the bias
            live, counts, words, inner, set_ix = np.array([0]), np.ones_like(counts), np.ones_like(words), [range(1)], 1
        entries = [(g, js) for g in live for js in inner]
        g_b, i_b, w_b, j_b = (np.array(v) for v in zip(*[(g, i, w, j) for g, js in entries for i in range(counts[g])
                                                        for w in range(words[g]) for j in js]))
        u, p = unit[..., None], pos[..., None]  # [R, lanes, 1] against the beats [B]
        own = a_bits[p, u if own_input else 0, g_b, j_b, w_b]  # [R, lanes, B, .]: each lane's activations
        weights = w_bits[u, g_b, i_b, w_b]  # each lane's unit's weights
        held, shared = (weights, own) if mapping == "units" else (own, weights)
        coefs = np.where(real[..., None], alphas[u, g_b, i_b] * gamma[j_b], 0)  # [R, lanes, B]; idle lanes 0
        shared = shared[:, : core.act_words].swapaxes(1, 2)  # an idle lane's copy is a real lane's
        acts = [b | c << coef_at for b, c in zip(_ints(shared.reshape(-1, *shared.shape[2:])),
                                                  _fields(coefs.swapaxes(1, 2).reshape(-1, lanes), core.coef_bits))]
        held = held[:, :, set_ix - 1::set_ix].swapaxes(1, 2)  # one per set_ix beats: the core holds it for IX
        config = [(Reg.LIVE, len(entries) - 1), (Reg.IX, set_ix - 1), (Reg.RELU, int(layer.relu))]
        # The start may pass the bound; it is sent modulo 2^32, as the core's sums wrap (core.py).
        starts = np.where(real.any(axis=0), bias[unit[0]], 0)
        config += [(Reg.BIAS + k, int(v) & 0xFFFFFFFF) for k, v in enumerate(starts)]
        for e, (g, _) in enumerate(entries):
            entry = core.entry_layout.const({"bases_m1": counts[g] - 1, "words_m1": words[g] - 1})
            config.append((Reg.TABLE + e, entry.as_value().value))
        outputs = np.where(real, pos * layer.units + unit, -1)
        sets.append(UnitSet(mapping, outputs, config, _ints(held.reshape(-1, *held.shape[2:])), acts, len(g_b)))
    return sets


def unpack_results(params: CoreParams, beats: list[int]) -> np.ndarray:
    """Result beats as integers -> int64 [beats, lanes], each lane's y sign-extended."""
    acc = params.acc_width
    sign = 1 << (acc - 1)
    return np.array([[((v >> (k * acc)) & (2 * sign - 1) ^ sign) - sign for k in range(params.lanes)] for v in beats],
                    np.int64).reshape(-1, params.lanes)


def gather(sets: list[UnitSet], results: list[np.ndarray]) -> np.ndarray:
    """Each set's results [result beats, lanes] -> the layer's outputs, flat [positions * O]: every output is
    some lane's of exactly one set."""
    y = np.zeros(sum(int((s.outputs >= 0).sum()) for s in sets), np.int64)
    for s, r in zip(sets, results):
        y[s.outputs[s.outputs >= 0]] = r[s.outputs >= 0]
    return y


def cycle_model(sets: list[UnitSet], latency: int) -> int:
    """Core cycles with every stream fed each cycle: per set, one beat a cycle, then the pipeline's latency."""
    return sum(len(s.outputs) * s.beats + latency for s in sets)


def run(params: CoreParams, sets: list[UnitSet], vcd: str | None = None,
        result_ready: Callable[[int], bool] | None = None,
        source_valid: Callable[[int], bool] | None = None) -> tuple[np.ndarray, int]:
    """Simulate ``sets`` on a core of ``params`` -> (the layer's outputs, flat [positions * O], cycles).

    Cycles count, per set, from the cycle of the first weight beat to that of the last result
    (configuration writes excluded); ``result_ready(cycle)`` models a consumer that is not always ready,
    ``source_valid(cycle)`` a source of weight and activation beats that is not always valid.
    """
    from amaranth.sim import Simulator

    core = XnorCore(params)
    outs, total = [], [0]
    data_at = CONFIG_LAYOUT["data"].offset

    async def testbench(ctx):
        cycle = 0
        for s in sets:
            for addr, value in s.config:
                ctx.set(core.config.valid, 1)
                ctx.set(core.config.payload.as_value(), addr | value << data_at)
                taken = False
                while not taken:
                    _, _, taken = await ctx.tick().sample(core.config.ready)
                    cycle += 1
            ctx.set(core.config.valid, 0)
            ai = wi = 0  # activation and weight beats taken
            start = None
            got = []
            while len(got) < len(s.outputs):
                offered = source_valid is None or source_valid(cycle)
                ctx.set(core.acts.valid, offered and ai < len(s.acts))
                ctx.set(core.acts.payload.as_value(), s.acts[ai] if ai < len(s.acts) else 0)
                w_valid = offered and wi < len(s.weights)
                ctx.set(core.weights.valid, w_valid)
                ctx.set(core.weights.payload.as_value(), s.weights[wi] if w_valid else 0)
                ready = result_ready is None or result_ready(cycle)
                ctx.set(core.results.ready, ready)
                _, _, a_ok, w_ok, r_ok, r_val = await ctx.tick().sample(
                    core.acts.ready, core.weights.ready, core.results.valid, core.results.payload.as_value())
                w_ok &= w_valid  # ready alone is no handshake
                if (a_ok or w_ok) and start is None:
                    start = cycle
                ai, wi = ai + a_ok, wi + w_ok
                if r_ok and ready:
                    got.append(r_val)
                    end = cycle
                cycle += 1
            total[0] += end - start + 1
            outs.append(unpack_results(params, got))

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return gather(sets, outs), total[0]


def simulate_layer(layer: AlqLayer, x: np.ndarray, frac: int, lanes: int, width: int, vcd: str | None = None, *,
                   result_ready: Callable[[int], bool] | None = None, mapping: str | None = None,
                   **params) -> tuple[np.ndarray, int]:
    """One layer on the simulated core -> (int64 [OH, OW, O], cycles); :class:`MismatchError` unless every
    element == ``reference.layer_forward``. ``mapping`` as :func:`schedule`'s; ``params`` go to
    :class:`CoreParams` (acc_width, per_lane_acts, ...)."""
    check_params(layer, x, lanes, width, **params)
    want, _ = reference.layer_forward(layer, x, frac)
    if not layer.alq:
        return want, 0
    params = params_for(layer, lanes, width, **params)
    sets = schedule(layer, reference.layer_codes(layer, x, frac), params, mapping)
    y, cycles = run(params, sets, vcd, result_ready)
    y = y.reshape(want.shape)
    if not np.array_equal(y, want):
        where = tuple(int(v) for v in np.argwhere(y != want)[0])
        raise MismatchError(f"RTL differs from the reference at {where}: {int(y[where])} != {int(want[where])} "
                            f"({int((y != want).sum())} of {y.size} elements)", {"cycles": cycles})
    return y, cycles
