"""The layer driver: an ALQ layer and its input as the core's stream beats, run in the Amaranth simulator.

Output units go to the lanes in sets of P (the last set pads with idle lanes: coefficient 0, bias 0).
Per set the driver writes the configuration (the live-group table, I_x, relu and each lane's bias),
then streams every output position's beats in the core's order (hw/README.md), each activation
beat with every lane's coefficient A_gi * G_j, and collects one result beat per position. An average pool has no ALQ arithmetic: the host computes it
(``reference.layer_forward``) in zero core cycles.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codegen.alq import reference
from codegen.alq.format import AlqLayer, accumulator_bound
from codegen.errors import InputError, MismatchError

from .core import CONFIG_LAYOUT, CoreParams, Reg, XnorCore

WORD = 32  # the model file's word


@dataclass
class UnitSet:
    """One set of lanes: its configuration writes and beats (payloads as integers)."""

    units: np.ndarray  # [lanes] output unit per lane, -1 for an idle lane
    config: list[tuple[int, int]]  # (address, value)
    weights: list[int]  # one per (entry, i, word), the order of one output
    acts: list[int]  # one per (position, entry, i, word, j)
    positions: int
    beats: int  # per output: I_x * sum over live entries of I_e * words_e


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
    """A core whose table and word counter are just large enough for ``layer``."""
    return CoreParams(lanes, width, max_groups=layer.groups, max_words=-(-layer.n // width), **params)


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


def schedule(layer: AlqLayer, codes: np.ndarray, core: CoreParams) -> list[UnitSet]:
    """The unit sets of ``layer`` for activation codes [positions, O or 1, G, I_x, words32].

    A depthwise layer (an input per unit) on a core with one activation word for all lanes goes one
    unit a set, the other lanes idle."""
    lanes, width, ix = core.lanes, core.width, layer.activation_bits
    alphas, planes = layer.alpha, layer.bits
    if not alphas.shape[2]:  # I_max = 0, every group pruned: one basis of zeros, so the sets below yield the biases
        alphas = np.zeros((*alphas.shape[:2], 1), np.uint16)
        planes = np.zeros((*planes.shape[:2], 1, planes.shape[3]), np.uint32)
    own_input = codes.shape[1] > 1
    step = 1 if own_input and not core.per_lane_acts else lanes
    w_bits, a_bits = _chunks(planes, width), _chunks(codes, width)  # [O, G, I, c, .], [P, O|1, G, I_x, c, .]
    lengths = layer.group_lengths()
    group_words = -(-lengths // width)
    bias = core_bias(layer, width)
    gamma = layer.gamma.astype(np.int64)
    coef_at = core.act_layout["coef"].offset
    sets = []
    for first in range(0, layer.units, step):
        units = np.full(lanes, -1)
        units[:step] = np.arange(first, first + step)
        units[units >= layer.units] = -1
        real = units >= 0
        counts = np.where(real[:, None], layer.counts[units], 0).max(axis=0)
        live, words = np.flatnonzero(counts), group_words
        if not len(live):  # every group pruned: one word of coefficient 0 (I_x beats) yields the bias
            live, counts, words = np.array([0]), np.ones_like(counts), np.ones_like(words)
        seq = [(g, i, w) for g in live for i in range(counts[g]) for w in range(words[g])]
        g_w, i_w, w_w = (np.array(v) for v in zip(*seq))
        w_lane = np.where(real[:, None, None], w_bits[units][:, g_w, i_w, w_w], 0)  # [lanes, beats, .]
        alpha = np.where(real[:, None], alphas[units][:, g_w, i_w], 0)  # [lanes, weight beats]
        coefs = _fields((np.repeat(alpha, ix, axis=1) * np.tile(gamma, len(seq))).T, core.coef_bits)
        g_a, w_a, j_a = np.repeat(g_w, ix), np.repeat(w_w, ix), np.tile(np.arange(ix), len(seq))
        sources = np.where(real, units, 0) if own_input else np.zeros(lanes, int)
        acts = a_bits[:, sources[: core.act_words]][:, :, g_a, j_a, w_a].swapaxes(1, 2)  # [positions, beats, ., .]
        acts = [b | c << coef_at for b, c in zip(_ints(acts.reshape(-1, *acts.shape[2:])), coefs * len(codes))]
        config = [(Reg.LIVE, len(live) - 1), (Reg.IX, ix - 1), (Reg.RELU, int(layer.relu))]
        # The start may pass the bound; it is sent modulo 2^32, as the core's sums wrap (core.py).
        config += [(Reg.BIAS + k, int(bias[u]) & 0xFFFFFFFF if u >= 0 else 0) for k, u in enumerate(units)]
        for e, g in enumerate(live):
            entry = core.entry_layout.const({"bases_m1": counts[g] - 1, "words_m1": words[g] - 1})
            config.append((Reg.TABLE + e, entry.as_value().value))
        sets.append(UnitSet(units, config, _ints(w_lane.swapaxes(0, 1)), acts, len(codes), len(seq) * ix))
    return sets


def unpack_results(params: CoreParams, beats: list[int]) -> np.ndarray:
    """Result beats as integers -> int64 [beats, lanes], each lane's y sign-extended."""
    acc = params.acc_width
    sign = 1 << (acc - 1)
    return np.array([[((v >> (k * acc)) & (2 * sign - 1) ^ sign) - sign for k in range(params.lanes)] for v in beats],
                    np.int64).reshape(-1, params.lanes)


def cycle_model(sets: list[UnitSet], latency: int) -> int:
    """Core cycles with every stream fed each cycle: per set, one beat a cycle, then the pipeline's latency."""
    return sum(s.positions * s.beats + latency for s in sets)


def run(params: CoreParams, sets: list[UnitSet], vcd: str | None = None,
        result_ready: Callable[[int], bool] | None = None) -> tuple[np.ndarray, int]:
    """Simulate ``sets`` on a core of ``params`` -> (results [positions, units of all sets], cycles).

    Cycles count, per set, from the cycle of the first weight beat to that of the last result
    (configuration writes excluded); ``result_ready(cycle)`` models a consumer that is not always ready.
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
            ai = wi = 0  # activation and weight beats taken; the weights repeat for every position
            start = None
            got = []
            while len(got) < s.positions:
                ctx.set(core.acts.valid, ai < len(s.acts))
                ctx.set(core.acts.payload.as_value(), s.acts[ai] if ai < len(s.acts) else 0)
                w_valid = wi < s.positions * len(s.weights)
                ctx.set(core.weights.valid, w_valid)
                ctx.set(core.weights.payload.as_value(), s.weights[wi % len(s.weights)])
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
            outs.append(unpack_results(params, got)[:, s.units >= 0])

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return np.concatenate(outs, axis=1), total[0]


def simulate_layer(layer: AlqLayer, x: np.ndarray, frac: int, lanes: int, width: int, vcd: str | None = None, *,
                   result_ready: Callable[[int], bool] | None = None, **params) -> tuple[np.ndarray, int]:
    """One layer on the simulated core -> (int64 [OH, OW, O], cycles); :class:`MismatchError` unless every
    element == ``reference.layer_forward``. ``params`` go to :class:`CoreParams` (acc_width, per_lane_acts, ...)."""
    check_params(layer, x, lanes, width, **params)
    want, _ = reference.layer_forward(layer, x, frac)
    if not layer.alq:
        return want, 0
    params = params_for(layer, lanes, width, **params)
    y, cycles = run(params, schedule(layer, reference.layer_codes(layer, x, frac), params), vcd, result_ready)
    y = y.reshape(want.shape)
    if not np.array_equal(y, want):
        where = tuple(int(v) for v in np.argwhere(y != want)[0])
        raise MismatchError(f"RTL differs from the reference at {where}: {int(y[where])} != {int(want[where])} "
                            f"({int((y != want).sum())} of {y.size} elements)", {"cycles": cycles})
    return y, cycles
