"""C for a whole ALQ model (templates/alq): one function per layer, ``const`` tables, a static arena.

Every layer's int32 output equals :func:`reference.forward`'s for that layer. The generator does the
arithmetic that depends on the weights alone, exactly, in Python integers:

- the bias absorbs the x_ref term and the ``n_g * sum_j G_j`` part of every base's sum, so the
  kernel only accumulates ``A_gi * sum_j G_j * popcount(beta_gi XOR d_gj)`` (tsn_alq_dot_s32);
- the activation quantizer becomes ascending int32 thresholds in the input's own units: an input v is
  nearer level k + 1 than level k iff ``2 v 2^x_frac > (L_k + L_{k+1}) 2^frac``, i.e. iff v is above
  the floor of that midpoint, so the C compares int32 values with no shift and no 64-bit arithmetic;
- each layer's input gather becomes an indirection table of uint16 code indices in the layer's
  reduction order, taps outside the image pointing at pad codes past the image;
- the weights become one stream of live bases (pruned groups and unused bases left out), each with
  the offset of the bit-planes it reads.

    files = render(model, prefix="digits", target="cortex-m4")
    write_c(model, Path("build/digits"), prefix="digits")
    outs = run_host(model, Path("build/digits"), inputs)   # every layer, ASan + UBSan
"""
from __future__ import annotations

import hashlib
from itertools import pairwise
from pathlib import Path

import numpy as np

from .. import __version__
from ..build import TOOLCHAINS, build_runner
from ..emit.c import environment, write_files
from ..errors import BuildError, ModelError
from ..hostrun import run_sanitized_exe
from ..ref.kernels import receptive_fields
from ..ref.params import make_window
from . import reference
from .format import ACC_BITS, AlqLayer, AlqModel, _fields, accumulator_bound, validate

#: the layer function of each kind (fully connected: one position; depthwise: one input vector per unit)
KERNELS = {"fc": "tsn_alq_convolve_s32", "conv": "tsn_alq_convolve_s32", "depthwise": "tsn_alq_convolve_s32",
           "avgpool": "tsn_alq_avgpool_s32"}
OPS = {"fc": "ALQ_FULLY_CONNECTED", "conv": "ALQ_CONV_2D", "depthwise": "ALQ_DEPTHWISE_CONV_2D",
       "avgpool": "ALQ_AVERAGE_POOL_2D"}
#: what every ALQ layer calls besides its layer function
ALQ_SOURCES = ("tsn_alq_pack_planes", "tsn_alq_dot_s32")
HEADERS = ("nn/tsn_nn_types.h", "nn/tsn_nnsupportfunctions.h", "nn/tsn_model.h", "alq/tsn_alq_functions.h")
INPUT_TYPES = {"s8": "int8_t", "s32": "int32_t"}
INT32_MIN, INT32_MAX = -(1 << (ACC_BITS - 1)), (1 << (ACC_BITS - 1)) - 1
TAP_LIMIT = 1 << 16  # taps are uint16 code indices
WORD_BYTES = 4
OFFSET_SHIFT = 16  # a base's head word: A_gi | plane offset << OFFSET_SHIFT (TSN_ALQ_OFFSET_SHIFT)
WORD_BITS = 32


def _align(n: int) -> int:
    return -(-n // WORD_BYTES) * WORD_BYTES


def model_hash(model: AlqModel) -> str:
    """SHA-256 over the model's fields (the .npz container itself carries zip timestamps)."""
    digest = hashlib.sha256(np.array([*model.input_shape, model.input_frac]).tobytes())
    for layer in model.layers:
        for key, value in _fields(layer).items():
            digest.update(key.encode() + np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def vectors(layer: AlqLayer) -> int:
    """Input vectors per output position: one per unit (channel) for a depthwise layer, else one for all units."""
    return layer.units if layer.kind == "depthwise" else 1


def taps(layer: AlqLayer) -> np.ndarray:
    """[positions, N] code indices of every unit input element, in the layer's reduction order; taps outside
    the image index the pad codes past the image (depthwise: channel 0's, channel c adds c)."""
    h, w, c = layer.in_shape
    if layer.kind == "fc":
        return np.arange(h * w * c)[None]
    oh, ow, _ = layer.out_shape
    win = make_window((1, h, w, c), (1, oh, ow, c), layer.kernel, layer.stride, (1, 1), layer.padding)
    fields = receptive_fields(np.arange(h * w * c).reshape(1, h, w, c), win, (oh, ow), fill=h * w * c)[0]
    if layer.kind == "depthwise":
        fields = fields[..., 0]
    elif layer.order == "chw":
        fields = fields.transpose(0, 1, 4, 2, 3)
    return fields.reshape(oh * ow, -1)


def quantizer(layer: AlqLayer, frac: int) -> tuple[np.ndarray, np.ndarray]:
    """(int32 thresholds, uint8 level codes) of the nearest-level rule for inputs at 2^-frac (module doc), padded
    to 2^I_x - 1 thresholds and 2^I_x codes for the C's fixed-step binary search."""
    _, values = reference.levels(layer)
    order = np.lexsort((np.arange(len(values)), values))  # by level, then code
    distinct, first = np.unique(values[order], return_index=True)
    bounds = [(int(a) + int(b)) * (1 << frac) // (1 << (layer.x_frac + 1)) for a, b in pairwise(distinct)]
    # a threshold past int32 compares like the int32 limit: inputs lie strictly inside (check_ranges)
    thresholds = np.full(len(values) - 1, INT32_MAX, np.int64)
    thresholds[: len(bounds)] = np.clip(bounds, INT32_MIN, INT32_MAX)
    codes = np.zeros(len(values), np.uint8)
    codes[: len(first)] = order[first]
    return thresholds.astype(np.int32), codes


def folded_bias(layer: AlqLayer) -> np.ndarray:
    """bias + the x_ref term + sum_j G_j * sum_g n_g sum_i A_gi: all of the unit sum the input does not change."""
    bias = reference.folded_bias(layer) + reference.coefficient_sums(layer, layer.group_lengths())
    assert np.abs(bias).max() < 1 << (ACC_BITS - 1), "the format's accumulator bound covers the folded bias"
    return bias.astype(np.int32)


def input_bounds(model: AlqModel) -> list[int]:
    """The largest |value| of each layer's input: int8, an ALQ layer's accumulator bound, a pool's window sum."""
    bounds = [1 << 7]
    for layer in model.layers:
        area = layer.kernel[0] * layer.kernel[1]
        bounds.append(int(accumulator_bound(layer).max()) if layer.alq else bounds[-1] * area)
    return bounds


def check_ranges(model: AlqModel, where: str) -> None:
    """What the C adds to the format: the first layer reads int8, every value fits int32 strictly inside its
    range, code indices fit uint16."""
    if not model.layers[0].alq:
        raise ModelError(f"{where}: the C model reads its int8 input with an ALQ layer, not {model.layers[0].kind}")
    for i, (layer, bound) in enumerate(zip(model.layers, input_bounds(model)[1:])):
        if bound > INT32_MAX:
            raise ModelError(f"{where}: layer {i} ({layer.kind}) can reach {bound}, past int32")
        if layer.alq and int(np.prod(layer.in_shape)) + layer.in_shape[2] > TAP_LIMIT:
            raise ModelError(f"{where}: layer {i} ({layer.kind}) has {np.prod(layer.in_shape)} inputs; the "
                             f"C kernels index at most {TAP_LIMIT - layer.in_shape[2]}")
        if layer.alq and vectors(layer) * layer.groups * layer.activation_bits * layer.words > 1 << OFFSET_SHIFT:
            raise ModelError(f"{where}: layer {i} ({layer.kind}) has more bit-plane words per position than a "
                             f"base's {OFFSET_SHIFT}-bit offset reaches")


def _describe(layer: AlqLayer) -> str:
    shapes = f"{list(layer.in_shape)} -> {list(layer.out_shape)}"
    if layer.kind == "fc":
        head = "fully connected"
    else:
        head = (f"{layer.kind} {layer.kernel[0]}x{layer.kernel[1]} stride {layer.stride[0]}x{layer.stride[1]} "
                f"{layer.padding}")
    if not layer.alq:
        return f"{head}, window sums: {shapes}"
    return (f"{head}: {shapes}; {layer.group} groups of {layer.n} ({layer.groups} per unit), "
            f"I_g <= {int(layer.counts.max())}, I_x = {layer.activation_bits}{', ReLU' if layer.relu else ''}")


def base_stream(layer: AlqLayer) -> np.ndarray:
    """tsn_alq_filter.bases: per unit its live bases' count, then per base its head word (A_gi | plane offset <<
    OFFSET_SHIFT) and bit words; a depthwise unit reads its own vector's planes, the others vector 0's."""
    live = np.arange(layer.alpha.shape[2]) < layer.counts[..., None]  # [O, G, I_max]
    vector = np.arange(layer.units) if vectors(layer) > 1 else np.zeros(layer.units, np.int64)
    offsets = (vector[:, None] * layer.groups + np.arange(layer.groups)) * layer.activation_bits * layer.words
    heads = layer.alpha.astype(np.int64) | offsets[..., None] << OFFSET_SHIFT  # [O, G, I_max]
    records = np.concatenate([heads[..., None], layer.bits], axis=-1)  # [O, G, I_max, 1 + words]
    units = [np.concatenate([[live[u].sum()], records[u][live[u]].ravel()]) for u in range(layer.units)]
    return np.concatenate(units).astype(np.uint32)


def _alq_tables(layer: AlqLayer, frac: int, tap_table: np.ndarray) -> dict[str, np.ndarray]:
    thresholds, level_codes = quantizer(layer, frac)
    return {
        "gamma": layer.gamma.astype(np.uint16),
        "thresholds": thresholds,
        "level_codes": level_codes,
        "bases": base_stream(layer),
        "bias": folded_bias(layer),
        "taps": tap_table.astype(np.uint16),
    }


def _layer_context(layer: AlqLayer, index: int, frac: int) -> dict:
    oh, ow, o = layer.out_shape
    ctx = {"index": index, "kind": layer.kind, "op": OPS[layer.kind], "function": KERNELS[layer.kind],
           "describe": _describe(layer), "output_bytes": oh * ow * o * WORD_BYTES,
           "input_dtype": "s8" if index == 0 else "s32"}
    ctx["input_ctype"] = INPUT_TYPES[ctx["input_dtype"]]
    if not layer.alq:
        ctx.update(tables={}, stride=layer.stride, input_dims=(1, *layer.in_shape), output_dims=(1, *layer.out_shape),
                   filter_dims=(1, *layer.kernel, 1), macs=oh * ow * o * layer.kernel[0] * layer.kernel[1],
                   codes_bytes=0, scratch_bytes=0)
        return ctx
    tap_table = taps(layer)
    inputs = int(np.prod(layer.in_shape))
    plane_words = layer.groups * layer.words  # of one activation basis
    pad = vectors(layer) if (tap_table == inputs).any() else 0
    ctx.update(tables=_alq_tables(layer, frac, tap_table), act_bits=layer.activation_bits, units=o, groups=layer.groups,
               group_size=layer.n, length=layer.length, words=layer.words, relu=int(layer.relu),
               positions=tap_table.shape[0], vectors=vectors(layer), input_count=inputs, pad_codes=pad,
               macs=oh * ow * o * layer.length, codes_bytes=_align(inputs + pad),
               scratch_bytes=(WORD_BITS + vectors(layer) * layer.activation_bits * WORD_BYTES) * plane_words)
    return ctx


def render(model: AlqModel, prefix: str = "alq", target: str = "host", source_name: str = "model.npz",
           staged_input: np.ndarray | None = None) -> dict[str, str]:
    """All files of the generated model, name -> text; ``staged_input`` (int8, the input's shape) initialises the
    entry file's staging buffer, the sample a bench built with -DBENCH_INPUT_STAGED runs."""
    validate(model, source_name)
    check_ranges(model, source_name)
    fracs = model.input_fracs()
    layers = [_layer_context(layer, i, frac) for i, (layer, frac) in enumerate(zip(model.layers, fracs))]
    # layer i writes region i % 2 and reads region (i + 1) % 2; the int8 input is layer 0's, in region 1
    input_bytes = int(np.prod(model.input_shape))
    regions = [_align(max([ly["output_bytes"] for ly in layers[k::2]] + [input_bytes if k else 0])) for k in (0, 1)]
    for ly in layers:
        ly["output_offset"] = regions[0] if ly["index"] % 2 else 0
        ly["input_offset"] = f"LAYER_{ly['index'] - 1}_OUTPUT_OFFSET" if ly["index"] else "INPUT_OFFSET"
    codes_offset = sum(regions)
    scratch_offset = codes_offset + max(ly["codes_bytes"] for ly in layers)
    scratch_bytes = max(ly["scratch_bytes"] for ly in layers)
    last = model.layers[-1]
    area = last.kernel[0] * last.kernel[1]
    output_frac = last.w_frac + last.x_frac if last.alq else fracs[-1] + area.bit_length() - 1
    common = {"version": __version__, "source_name": Path(source_name).name, "model_hash": model_hash(model),
              "prefix": prefix, "PREFIX": prefix.upper(), "target": target}
    context = {
        **common, "layers": layers, "arena_bytes": scratch_offset + scratch_bytes, "input_offset": regions[0],
        "codes_offset": codes_offset, "scratch_offset": scratch_offset, "scratch_bytes": scratch_bytes,
        "input_bytes": input_bytes, "input_shape": list(model.input_shape), "input_frac": model.input_frac,
        "output_bytes": layers[-1]["output_bytes"], "output_shape": list(last.out_shape),
        "output_frac": output_frac, "output_scale": 2.0 ** -output_frac,
        "weight_bytes": sum(t.nbytes for ly in layers for t in ly["tables"].values()),
    }
    env = environment()
    files = {Path(h).name: env.get_template(f"{h}.j2").render(common) for h in HEADERS}
    kinds = {layer.kind for layer in model.layers}
    for src in sorted({*ALQ_SOURCES, *(KERNELS[k] for k in kinds)}):
        files[f"{src}.c"] = env.get_template(f"alq/{src}.c.j2").render(common)
    for dtype in sorted({ly["input_dtype"] for ly in layers if ly["kind"] != "avgpool"}):
        files[f"tsn_alq_quantize_{dtype}.c"] = env.get_template("alq/tsn_alq_quantize.c.j2").render(
            common, dtype=dtype, ctype=INPUT_TYPES[dtype])
    files[f"{prefix}.h"] = env.get_template("alq/model.h.j2").render(context)
    files[f"{prefix}.c"] = env.get_template("alq/model.c.j2").render(context)
    staged = {} if staged_input is None else {"staged_input": np.asarray(staged_input, np.int8).reshape(-1)}
    files[f"{prefix}_entry.c"] = env.get_template("model/entry.c.j2").render(context, **staged)
    cc, ar, cflags = TOOLCHAINS[target]
    files["Makefile"] = env.get_template("model/Makefile.j2").render(context, cc=cc, ar=ar, cflags=cflags)
    return files


def write_c(model: AlqModel, out_dir: Path, prefix: str = "alq", target: str = "host",
            source_name: str = "model.npz", staged_input: np.ndarray | None = None) -> list[Path]:
    """Render and write the model into ``out_dir`` atomically (replacing earlier output)."""
    return write_files(render(model, prefix, target, source_name, staged_input), out_dir)


def layer_shapes(model: AlqModel) -> list[tuple[int, int, int]]:
    return [tuple(layer.out_shape) for layer in model.layers]


def run_host(model: AlqModel, gen_dir: Path, inputs: np.ndarray, sanitize: bool = True) -> list[np.ndarray]:
    """Every layer's int32 output for a batch of int8 inputs [B, H, W, C], from the C in ``gen_dir`` built into
    the project's host runner (templates/host/tsn_host_runner.c.j2), by default under ASan and UBSan."""
    gen_dir = Path(gen_dir)
    work = gen_dir / "build"
    work.mkdir(parents=True, exist_ok=True)
    runner_c = work / "tsn_host_runner.c"
    runner_c.write_text(environment().get_template("host/tsn_host_runner.c.j2").render(
        version=__version__, source_name="model.npz", model_hash=model_hash(model)))
    exe = build_runner(gen_dir, runner_c, work / ("runner-asan" if sanitize else "runner"), sanitize=sanitize)
    x = np.ascontiguousarray(inputs, dtype=np.int8)
    data = np.frombuffer(run_sanitized_exe(exe, x.tobytes(), "ALQ host runner"), dtype="<i4")
    sizes = [int(np.prod(s)) for s in layer_shapes(model)]
    if data.size != sum(sizes) * len(x):
        raise BuildError(f"ALQ host runner wrote {data.size} values, expected {sum(sizes) * len(x)}")
    per_sample = data.reshape(len(x), -1)
    bounds = np.cumsum([0, *sizes])
    return [per_sample[:, a:b].reshape(len(x), *s) for a, b, s in zip(bounds, bounds[1:], layer_shapes(model))]
