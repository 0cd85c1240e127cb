"""The integer arithmetic of ALQ layers: the one truth the Cortex-M kernel and the RTL are compared to.

A unit's sum over its input vector, every term an integer (FORMAT.md, "Arithmetic"):

    y = bias + XR * sum_g sum_i A_gi (n_g - 2 popcount(b_gi))
             + sum_g sum_i A_gi sum_j G_j (n_g - 2 popcount(b_gi XOR d_gj))

Inputs become activation codes by the nearest of the 2^I_x levels XR + sum_j +-G_j;
out-of-image taps take the code of the lowest level (every bit 1).
"""
from __future__ import annotations

import numpy as np

from ..ref.kernels import receptive_fields
from ..ref.params import make_window
from . import bits
from .format import AlqLayer, AlqModel


def levels(layer: AlqLayer) -> tuple[np.ndarray, np.ndarray]:
    """Every code c (bit j of c set: d_j = -1) as [2^I_x, I_x] bits, and its level at 2^-x_frac."""
    ix = layer.activation_bits
    codes = (np.arange(1 << ix)[:, None] >> np.arange(ix)) & 1
    values = layer.x_ref + ((1 - 2 * codes) * layer.gamma.astype(np.int64)).sum(axis=1)
    return codes.astype(np.uint8), values


def quantize(v: np.ndarray, frac: int, layer: AlqLayer) -> np.ndarray:
    """Integers at 2^-frac -> codes [..., I_x] (1 = -1): the nearest level; a tie goes to the lower
    level, equal levels to the smaller code."""
    codes, values = levels(layer)
    common = max(frac, layer.x_frac)
    scaled_v = np.asarray(v, np.int64) << (common - frac)
    scaled_levels = values << (common - layer.x_frac)
    order = np.lexsort((np.arange(len(values)), scaled_levels))  # by level, then code
    distance = np.abs(scaled_v[..., None] - scaled_levels[order])
    return codes[order[np.argmin(distance, axis=-1)]]  # argmin takes the first of equals


def input_vectors(layer: AlqLayer, codes: np.ndarray) -> np.ndarray:
    """Activation codes [H, W, C, I_x] -> every unit's input vectors [P, O or 1, N, I_x] in the
    layer's reduction order (P output positions; one vector for all units unless depthwise)."""
    ix = codes.shape[-1]
    if layer.kind == "fc":
        return codes.reshape(1, 1, -1, ix)
    h, w, c = layer.in_shape
    oh, ow, _ = layer.out_shape
    win = make_window((1, h, w, c), (1, oh, ow, c), layer.kernel, layer.stride, (1, 1), layer.padding)
    fields = receptive_fields(np.moveaxis(codes, -1, 0), win, (oh, ow), fill=1)  # [I_x, OH, OW, KH, KW, C]
    if layer.kind == "depthwise":
        return fields.reshape(ix, oh * ow, -1, c).transpose(1, 3, 2, 0)
    if layer.order == "chw":
        fields = fields.transpose(0, 1, 2, 5, 3, 4)
    return fields.reshape(ix, oh * ow, 1, -1).transpose(1, 2, 3, 0)


def pack_groups(layer: AlqLayer, vectors: np.ndarray) -> np.ndarray:
    """Vectors [..., N, I_x] of codes -> packed bit-planes [..., G, I_x, words]; padding bits 0."""
    g, n = layer.groups, layer.n
    padded = np.zeros((*vectors.shape[:-2], g * n, vectors.shape[-1]), np.uint8)
    padded[..., : layer.length, :] = vectors
    planes = np.moveaxis(padded.reshape(*vectors.shape[:-2], g, n, -1), -1, -2)  # [..., G, I_x, n]
    return bits.pack(1 - 2 * planes.astype(np.int8), layer.words)


def weight_sums(layer: AlqLayer) -> np.ndarray:
    """sum_g sum_i A_gi (n_g - 2 popcount(b_gi)) per unit: the weights against an all-ones input."""
    n_g = layer.group_lengths()[None, :, None]
    return (layer.alpha.astype(np.int64) * (n_g - 2 * bits.popcount(layer.bits).sum(axis=-1))).sum(axis=(1, 2))


def coefficient_sums(layer: AlqLayer, per_group: np.ndarray) -> np.ndarray:
    """sum_j G_j * sum_g per_group[g] * sum_i A_gi per unit, int64 [O]: a constant term of every (i, j) product
    that the backends fold into their start value (each with its own per-group count)."""
    coords = layer.alpha.astype(np.int64).sum(axis=2)  # [O, G]
    return (coords * np.asarray(per_group, np.int64)).sum(axis=1) * int(layer.gamma.astype(np.int64).sum())


def folded_bias(layer: AlqLayer) -> np.ndarray:
    """bias + XR * weight_sums: the x_ref term folded into the bias, int64 [O]."""
    return layer.bias.astype(np.int64) + layer.x_ref * weight_sums(layer)


def basis_sums(layer: AlqLayer, acts: np.ndarray) -> np.ndarray:
    """The xnor-popcount part for packed activations [P, O or 1, G, I_x, words] -> int64 [P, O]."""
    n_g = layer.group_lengths()[:, None, None]
    xor = layer.bits[None, :, :, :, None, :] ^ acts[:, :, :, None, :, :]  # [P, O, G, I_max, I_x, words]
    agreement = n_g - 2 * bits.popcount(xor).sum(axis=-1)  # [P, O, G, I_max, I_x]
    scaled = agreement * layer.gamma.astype(np.int64)
    return (scaled.sum(axis=-1) * layer.alpha.astype(np.int64)).sum(axis=(2, 3))


def layer_codes(layer: AlqLayer, x: np.ndarray, frac: int) -> np.ndarray:
    """A layer's packed input bit-planes [P, O or 1, G, I_x, words] from its integer input."""
    return pack_groups(layer, input_vectors(layer, quantize(x, frac, layer)))


def layer_forward(layer: AlqLayer, x: np.ndarray, frac: int) -> tuple[np.ndarray, int]:
    """One layer on one input [H, W, C] of integers at 2^-frac -> (int64 [OH, OW, O], its fraction bits)."""
    oh, ow, o = layer.out_shape
    if not layer.alq:
        win = make_window((1, *layer.in_shape), (1, *layer.out_shape), layer.kernel, layer.stride, (1, 1), "VALID")
        total = receptive_fields(np.asarray(x, np.int64)[None], win, (oh, ow), fill=0).sum(axis=(3, 4))[0]
        return total, frac + (layer.kernel[0] * layer.kernel[1]).bit_length() - 1
    y = folded_bias(layer) + basis_sums(layer, layer_codes(layer, x, frac))
    if layer.relu:
        y = np.maximum(y, 0)
    return y.reshape(oh, ow, o), layer.w_frac + layer.x_frac


def forward(model: AlqModel, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's output for one input [H, W, C] of integers at 2^-input_frac."""
    outs, frac = [], model.input_frac
    for layer in model.layers:
        x, frac = layer_forward(layer, x, frac)
        outs.append(x)
    return outs


def predict(model: AlqModel, x: np.ndarray) -> np.ndarray:
    """Class indices for a batch [B, H, W, C]: the argmax of the last layer (first of equals)."""
    return np.array([int(np.argmax(forward(model, xi)[-1].reshape(-1))) for xi in x])
