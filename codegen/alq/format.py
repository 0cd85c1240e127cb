"""The ALQ multi-bit model file (``.npz``; every field in FORMAT.md).

A model is a chain of layers: ALQ layers (fully connected, conv, depthwise) whose
weights are binary bases with integer coordinates, and average pools. :func:`write`
replaces a file atomically; :func:`read` checks every field and raises one-line
:class:`ModelError`s naming the file, the layer and the field.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..files import write_atomically
from . import bits

FORMAT = "tinysyn-alq"
VERSION = 1
KINDS = ("fc", "conv", "depthwise", "avgpool")
GROUPS = ("kernel", "channel", "subchannel")
PADDINGS = ("SAME", "VALID")
ACC_BITS = 32  # every sum, partial or whole, fits a signed 32-bit accumulator
MAX_BASES = 8  # I_g and I_x: at most 8 binary bases
COORD_BITS = 16  # alpha and gamma are unsigned 16-bit; x_ref is signed 16-bit


@dataclass
class AlqLayer:
    kind: str
    in_shape: tuple[int, int, int]  # H, W, C of the input
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: str = "VALID"
    relu: bool = False
    group: str = "channel"
    group_size: int = 0  # n; the last group of a unit may be shorter
    counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint8))  # I_g [O, G]
    alpha: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.uint16))  # [O, G, I_max]
    bits: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0, 0), np.uint32))  # [O, G, I_max, words]
    w_frac: int = 0  # alpha = A * 2^-w_frac
    x_ref: int = 0  # x_ref = XR * 2^-x_frac
    gamma: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint16))  # [I_x], gamma_j = G_j * 2^-x_frac
    x_frac: int = 0
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # [O] at 2^-(w_frac + x_frac)

    @property
    def alq(self) -> bool:
        return self.kind != "avgpool"

    @property
    def units(self) -> int:
        return self.out_shape[2]

    @property
    def length(self) -> int:
        """N: the length of one unit's input vector."""
        h, w, c = self.in_shape
        if self.kind == "fc":
            return h * w * c
        if self.kind == "conv":
            return self.kernel[0] * self.kernel[1] * c
        return self.kernel[0] * self.kernel[1]

    @property
    def n(self) -> int:
        """The group size."""
        return self.group_size

    @property
    def groups(self) -> int:
        return -(-self.length // self.n)

    def group_lengths(self) -> np.ndarray:
        """n_g per group: n, except a shorter last group."""
        lengths = np.full(self.groups, self.n, np.int64)
        lengths[-1] = self.length - self.n * (self.groups - 1)
        return lengths

    @property
    def words(self) -> int:
        return bits.words(self.n)

    @property
    def activation_bits(self) -> int:
        """I_x."""
        return len(self.gamma)

    @property
    def order(self) -> str:
        """Reduction order of a conv's input vector: kernel-wise groups keep each channel's window together."""
        return "chw" if self.group == "kernel" and self.kind == "conv" else "hwc"


@dataclass
class AlqModel:
    input_shape: tuple[int, int, int]
    input_frac: int  # the model input is integers at 2^-input_frac
    layers: list[AlqLayer]

    def input_fracs(self) -> list[int]:
        """The fraction bits of each layer's input: an ALQ layer's output has w_frac + x_frac,
        an average pool adds log2 of its window."""
        fracs = [self.input_frac]
        for layer in self.layers:
            area = layer.kernel[0] * layer.kernel[1]
            fracs.append(layer.w_frac + layer.x_frac if layer.alq else fracs[-1] + area.bit_length() - 1)
        return fracs[:-1]

    def layer_file(self, index: int) -> AlqModel:
        """Layer ``index`` alone, with its input's fraction bits: what ``tinysyn hw sim --layer`` reads."""
        layer = self.layers[index]
        return AlqModel(layer.in_shape, self.input_fracs()[index], [layer])


def _fields(layer: AlqLayer) -> dict[str, np.ndarray]:
    out = {"kind": np.array(layer.kind), "in_shape": np.array(layer.in_shape, np.int64),
           "out_shape": np.array(layer.out_shape, np.int64), "kernel": np.array(layer.kernel, np.int64),
           "stride": np.array(layer.stride, np.int64), "padding": np.array(layer.padding)}
    if layer.alq:
        out.update(relu=np.array(int(layer.relu)), group=np.array(layer.group), group_size=np.array(layer.group_size),
                   counts=layer.counts.astype(np.uint8), alpha=layer.alpha.astype(np.uint16),
                   bits=layer.bits.astype(np.uint32), w_frac=np.array(layer.w_frac), x_ref=np.array(layer.x_ref),
                   gamma=layer.gamma.astype(np.uint16), x_frac=np.array(layer.x_frac), bias=layer.bias.astype(np.int32))
    return out


def to_bytes(model: AlqModel) -> bytes:
    arrays = {"format": np.array(FORMAT), "version": np.array(VERSION),
              "input_shape": np.array(model.input_shape, np.int64), "input_frac": np.array(model.input_frac),
              "layers": np.array(len(model.layers))}
    for i, layer in enumerate(model.layers):
        arrays.update({f"l{i}.{k}": v for k, v in _fields(layer).items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write(path: str | Path, model: AlqModel) -> None:
    """Check the model, then write the whole file or leave the old one."""
    validate(model, str(path))
    write_atomically(Path(path), to_bytes(model))


def read(path: str | Path) -> AlqModel:
    where = str(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ModelError(f"{where}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ModelError(f"{where}: not an ALQ .npz file ({e})") from None
    return from_arrays(arrays, where)


def from_arrays(arrays: dict[str, np.ndarray], where: str) -> AlqModel:
    def get(key: str, ctx: str = "") -> np.ndarray:
        if key not in arrays:
            raise ModelError(f"{where}: {ctx}missing field {key!r}")
        return arrays[key]

    def scalar(key: str, ctx: str = "") -> int:
        v = get(key, ctx)
        if v.shape != () or not np.issubdtype(v.dtype, np.integer):
            raise ModelError(f"{where}: {ctx}field {key!r} must be an integer scalar")
        return int(v)

    def text(key: str, choices: tuple[str, ...], ctx: str) -> str:
        v = get(key, ctx)
        if v.shape != () or v.dtype.kind != "U" or str(v) not in choices:
            raise ModelError(f"{where}: {ctx}field {key!r} must be one of {', '.join(choices)}")
        return str(v)

    def shape(key: str, size: int, ctx: str = "") -> tuple[int, ...]:
        v = get(key, ctx)
        if v.shape != (size,) or not np.issubdtype(v.dtype, np.integer) or (v < 1).any():
            raise ModelError(f"{where}: {ctx}field {key!r} must be {size} positive integers")
        return tuple(int(d) for d in v)

    def typed(key: str, dtype, ndim: int, ctx: str) -> np.ndarray:
        v = get(key, ctx)
        if v.dtype != np.dtype(dtype) or v.ndim != ndim:
            raise ModelError(f"{where}: {ctx}field {key!r} must be a {ndim}-d {np.dtype(dtype).name} array")
        return v

    if "format" not in arrays or arrays["format"].shape != () or str(arrays["format"]) != FORMAT:
        raise ModelError(f"{where}: not a tinysyn ALQ file (no 'format' = {FORMAT!r})")
    if scalar("version") != VERSION:
        raise ModelError(f"{where}: ALQ format version {int(arrays['version'])}; this tinysyn reads version {VERSION}")
    layers = []
    for i in range(scalar("layers")):
        ctx, p = f"layer {i}: ", f"l{i}."
        kind = text(p + "kind", KINDS, ctx)
        layer = AlqLayer(kind, shape(p + "in_shape", 3, ctx), shape(p + "out_shape", 3, ctx),
                         shape(p + "kernel", 2, ctx), shape(p + "stride", 2, ctx), text(p + "padding", PADDINGS, ctx))
        if layer.alq:
            layer.relu = bool(scalar(p + "relu", ctx))
            layer.group = text(p + "group", GROUPS, ctx)
            layer.group_size = scalar(p + "group_size", ctx)
            layer.counts = typed(p + "counts", np.uint8, 2, ctx)
            layer.alpha = typed(p + "alpha", np.uint16, 3, ctx)
            layer.bits = typed(p + "bits", np.uint32, 4, ctx)
            layer.w_frac = scalar(p + "w_frac", ctx)
            layer.x_ref = scalar(p + "x_ref", ctx)
            layer.gamma = typed(p + "gamma", np.uint16, 1, ctx)
            layer.x_frac = scalar(p + "x_frac", ctx)
            layer.bias = typed(p + "bias", np.int32, 1, ctx)
        layers.append(layer)
    model = AlqModel(shape("input_shape", 3), scalar("input_frac"), layers)
    validate(model, where)
    return model


def accumulator_bound(layer: AlqLayer) -> np.ndarray:
    """Per unit, the largest |sum| any input can reach (every term at its largest magnitude)."""
    n_g = layer.group_lengths()
    coords = layer.alpha.astype(np.int64).sum(axis=2)  # [O, G]
    per_input = abs(layer.x_ref) + int(layer.gamma.astype(np.int64).sum())
    return np.abs(layer.bias.astype(np.int64)) + (coords * n_g).sum(axis=1) * per_input


def validate(model: AlqModel, where: str) -> None:
    """Every shape and range FORMAT.md states; one-line :class:`ModelError` on the first violation."""
    shape = tuple(model.input_shape)
    if not model.layers:
        raise ModelError(f"{where}: the model has no layers")
    for i, layer in enumerate(model.layers):
        ctx = f"{where}: layer {i} ({layer.kind}): "
        if tuple(layer.in_shape) != shape:
            raise ModelError(f"{ctx}input shape {tuple(layer.in_shape)} does not follow the previous output {shape}")
        _check_geometry(layer, ctx)
        if layer.alq:
            _check_weights(layer, ctx)
        shape = tuple(layer.out_shape)


def _check_geometry(layer: AlqLayer, ctx: str) -> None:
    from ..ref.params import out_size

    h, w, c = layer.in_shape
    oh, ow, o = layer.out_shape
    if layer.kind == "fc":
        if (oh, ow) != (1, 1):
            raise ModelError(f"{ctx}a fully connected output is 1x1xO, not {layer.out_shape}")
        return
    want = tuple(out_size(layer.padding, s, k, st, 1) for s, k, st in zip((h, w), layer.kernel, layer.stride))
    if (oh, ow) != want:
        raise ModelError(f"{ctx}output {oh}x{ow} does not match input {h}x{w}, kernel {layer.kernel}, "
                         f"stride {layer.stride}, {layer.padding} ({want[0]}x{want[1]})")
    if layer.kind in ("depthwise", "avgpool") and o != c:
        raise ModelError(f"{ctx}{layer.kind} keeps the channels: {c} in, {o} out")
    if layer.kind == "avgpool":
        area = layer.kernel[0] * layer.kernel[1]
        if layer.padding != "VALID" or area & (area - 1):
            raise ModelError(f"{ctx}an average pool needs VALID padding and a power-of-two window, not "
                             f"{layer.padding} {layer.kernel}")


def _check_weights(layer: AlqLayer, ctx: str) -> None:
    if layer.group == "kernel" and layer.kind == "fc":
        raise ModelError(f"{ctx}kernel-wise groups need a kernel; use channel or subchannel groups")
    if not 1 <= layer.group_size <= layer.length:
        raise ModelError(f"{ctx}group size {layer.group_size} outside 1..{layer.length}")
    o, g, words = layer.units, layer.groups, layer.words
    counts, alpha, packed = layer.counts, layer.alpha, layer.bits
    if counts.shape != (o, g):
        raise ModelError(f"{ctx}counts has shape {counts.shape}, expected ({o}, {g}) (units, groups)")
    i_max = alpha.shape[2] if alpha.ndim == 3 else -1
    if alpha.shape != (o, g, i_max) or not 0 <= i_max <= MAX_BASES:
        raise ModelError(f"{ctx}alpha has shape {alpha.shape}, expected ({o}, {g}, I_max <= {MAX_BASES})")
    if packed.shape != (o, g, i_max, words):
        raise ModelError(f"{ctx}bits has shape {packed.shape}, expected ({o}, {g}, {i_max}, {words})")
    if (counts > i_max).any():
        raise ModelError(f"{ctx}a group has more bases ({int(counts.max())}) than I_max {i_max}")
    unused = np.arange(i_max) >= counts[..., None]
    if alpha[unused].any() or packed[unused].any():
        raise ModelError(f"{ctx}bases past a group's count must be all zero (alpha and bits)")
    lengths = layer.group_lengths()
    for gi, n_g in enumerate(lengths):
        if not bits.padding_clear(packed[:, gi], int(n_g)):
            raise ModelError(f"{ctx}group {gi}: bits past its {n_g} elements must be 0")
    if not 1 <= layer.activation_bits <= MAX_BASES or not (layer.gamma > 0).all():
        raise ModelError(f"{ctx}gamma must hold 1..{MAX_BASES} positive coordinates, not {layer.gamma.tolist()}")
    if not -(1 << (COORD_BITS - 1)) <= layer.x_ref < 1 << (COORD_BITS - 1):
        raise ModelError(f"{ctx}x_ref {layer.x_ref} does not fit a signed {COORD_BITS}-bit integer")
    if layer.bias.shape != (o,):
        raise ModelError(f"{ctx}bias has shape {layer.bias.shape}, expected ({o},)")
    bound = int(accumulator_bound(layer).max())
    if bound >= 1 << (ACC_BITS - 1):
        raise ModelError(f"{ctx}sums can reach {bound}, past the signed {ACC_BITS}-bit accumulator: "
                         f"lower w_frac ({layer.w_frac}) or x_frac ({layer.x_frac})")
