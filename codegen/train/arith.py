"""The two arithmetics a training graph runs in: Octo int8 and the fp32 baseline.

:mod:`layers` says *what* each layer computes (which sums, which gathers);
an arithmetic object says *how numbers behave*: how an accumulator becomes an
activation, how a gradient is quantized, how a parameter is updated. Both
implement the same methods, so the layer code exists once.

A tensor travels as a :class:`Value`: data and a power-of-two exponent, real =
data * 2^exp (the exponent stays 0 in fp32).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from . import floatmath
from .intmath import (
    INT32_MAX,
    PROB_FRAC,
    Q_MAX,
    TrainingOverflow,
    bit_length,
    check_int32,
    quantize,
    shift_round,
    softmax_cross_entropy,
)
from .prng import XorShift32

LR_FRAC = 16  # learning rates are Q16 integers
BIAS_EXP = -24  # biases and LAC offsets: int32 with value b * 2^-24
MU_FRAC = 16  # LAC scale mu: Q16
POOL_FRAC = 23  # average pool multiplies by round(2^23 / taps)
WEIGHT_GROW_BELOW = 32  # re-range int8 weights whose max |q| fell under this
WEIGHT_EXP_LIMIT = 4  # int8 weights with exponent above this (|w| > 2^11) mean divergence
PRC_Z = 6  # PRC: clip backward tensors at 6 x mean |value|
LAC_DECAY_DIV = 100  # L2 penalty on the LAC parameters: a weight decay per step of lr / 100
LAC_LR_SHIFT = 3  # LAC learns at lr / 8: it trims the layer's error, it must not outrun the weights
MU_LIMIT = 1 << (MU_FRAC - 2)  # |mu| <= 1/4: a compensation, never a gain that could mute a channel
FP32_WEIGHT_LIMIT = 1e4


def lr_q16(lr: float) -> int:
    """A learning rate as the Q16 integer both arithmetics and the C step use."""
    q = int(np.floor(lr * (1 << LR_FRAC) + 0.5))
    if not 1 <= q <= INT32_MAX:
        raise InputError(f"learning rate {lr} is outside what a Q16 integer holds (2^-16 .. 2^15)")
    return q


@dataclass
class Value:
    data: np.ndarray
    exp: int = 0


@dataclass
class Params:
    """A weighted layer's trainable state."""

    w: np.ndarray  # int8 or float32, the layer's weight layout
    b: np.ndarray  # int32-valued int64 (exponent BIAS_EXP) or float32
    w_exp: int = 0
    mu: np.ndarray | None = None  # LAC, int8 mode only
    off: np.ndarray | None = None

    def copy(self) -> Params:
        return Params(self.w.copy(), self.b.copy(), self.w_exp,
                      None if self.mu is None else self.mu.copy(), None if self.off is None else self.off.copy())


def _relu_mask(y: np.ndarray, activation: str, six) -> np.ndarray:
    if activation == "NONE":
        return np.ones(y.shape, dtype=bool)
    mask = y > 0
    if activation == "RELU6":
        mask &= y < six
    return mask


def _pool_reciprocal(taps: np.ndarray) -> np.ndarray:
    """round(2^23 / taps) per output pixel, as a column to scale [pixels, channels]."""
    return np.floor((1 << POOL_FRAC) / taps + 0.5).astype(np.int64)[:, None]


def _aligned_sum(a: Value, b: Value) -> tuple[np.ndarray, int]:
    """a + b at the finer of the two exponents (exact left shifts)."""
    exp = min(a.exp, b.exp)
    return (a.data.astype(np.int64) << (a.exp - exp)) + (b.data.astype(np.int64) << (b.exp - exp)), exp


class Int8:
    """Octo int8 training: int8 tensors with power-of-two exponents, int32 sums, SR."""

    name = "int8"

    def __init__(self, lr: float, lac: bool = True, prc: bool = True, seed: int = 1):
        self.set_lr(lr_q16(lr))
        self.lac, self.prc = lac, prc
        self.prc_z = PRC_Z if prc else 0
        self.rng = XorShift32(seed)
        self.training = True

    def set_lr(self, lr_q: int) -> None:
        """The learning rate as a Q16 integer (a schedule changes it between steps); LAC's decay follows it."""
        self.lr_q = lr_q
        self.decay_q = (lr_q + LAC_DECAY_DIV // 2) // LAC_DECAY_DIV

    # -- parameters -------------------------------------------------------
    def init_params(self, layer) -> Params:
        w = layer.weights
        peak = float(np.abs(w).max())
        exp = int(np.ceil(np.log2(peak / Q_MAX))) if peak > 0 else -7
        q = np.clip(np.sign(w) * np.floor(np.abs(w) / 2.0**exp + 0.5), -Q_MAX, Q_MAX).astype(np.int8)
        b = np.floor(layer.bias / 2.0**BIAS_EXP + 0.5).astype(np.int64)
        channels = layer.out_shape[-1]
        mu = np.zeros(channels, np.int64) if self.lac else None
        off = np.zeros(channels, np.int64) if self.lac else None
        return Params(q, check_int32(b, f"{layer.where} bias"), exp, mu, off)

    def real_weights(self, p: Params) -> np.ndarray:
        return p.w.astype(np.float64) * 2.0**p.w_exp

    # -- forward ----------------------------------------------------------
    def dot(self, spec: str, a, b) -> np.ndarray:
        return np.einsum(spec, a.astype(np.int64), b.astype(np.int64))

    def _stream(self):
        return self.rng if self.training else None

    def _activate(self, acc, exp, activation):
        if activation in ("RELU", "RELU6"):
            acc = np.maximum(acc, 0)
        if activation == "RELU6":
            acc = np.minimum(acc, shift_round(np.int64(6), exp))
        return acc

    def _activation_out(self, acc, exp: int, layer) -> Value:
        """Activation, the int32 check, then dynamic quantization (SR while training)."""
        acc = check_int32(self._activate(acc, exp, layer.activation), f"{layer.where} output")
        return Value(*quantize(acc, exp, self._stream()))

    def output(self, acc, exp: int, layer, p: Params | None) -> Value:
        """Bias, LAC compensation, activation, then dynamic quantization with SR."""
        if p is not None:
            if exp < BIAS_EXP:  # a sum finer than the bias grid (dying inputs): move it to the grid
                acc, exp = shift_round(acc, BIAS_EXP - exp), BIAS_EXP
            acc = acc + shift_round(p.b, exp - BIAS_EXP)
            if p.mu is not None:
                acc = acc + shift_round(acc * p.mu, MU_FRAC) + shift_round(p.off, exp - BIAS_EXP)
        return self._activation_out(acc, exp, layer)

    def average(self, sums, exp: int, taps: np.ndarray, layer) -> Value:
        return self._activation_out(sums.astype(np.int64) * _pool_reciprocal(taps), exp - POOL_FRAC, layer)

    def add(self, a: Value, b: Value, layer) -> Value:
        return self._activation_out(*_aligned_sum(a, b), layer)

    def maximum(self, cols, valid, exp: int) -> Value:
        return Value(np.where(valid[..., None], cols, -Q_MAX).max(axis=1).astype(np.int8), exp)

    # -- loss and backward ------------------------------------------------
    def loss(self, logits: Value, label: int) -> tuple[int, Value]:
        loss, grad = softmax_cross_entropy(logits.data.ravel(), logits.exp, label)
        return loss, self.gradient(grad, -PROB_FRAC)

    def gradient(self, acc, exp: int) -> Value:
        """A backward tensor to int8: PRC clipping (if on), then SR."""
        return Value(*quantize(check_int32(acc, "gradient"), exp, self.rng, self.prc_z))

    def output_grad(self, g: Value, y: Value, layer, p: Params | None):
        """Through activation and LAC; returns the gradient at the accumulator and LAC's own."""
        six = shift_round(np.int64(6), y.exp)
        g1 = np.where(_relu_mask(y.data, layer.activation, six), g.data, 0).astype(np.int64)
        if p is None or p.mu is None:
            return Value(g1.astype(np.int8), g.exp), None
        axes = tuple(range(g1.ndim - 1))
        dmu = (g1 * y.data.astype(np.int64)).sum(axis=axes)  # y stands in for the pre-LAC sum
        doff = g1.sum(axis=axes)
        g2 = self.gradient(g1 + shift_round(g1 * p.mu, MU_FRAC), g.exp)
        return g2, (dmu, g.exp + y.exp, doff, g.exp)

    def _step(self, param, param_exp: int, grad, grad_exp: int, rng, lr_shift: int = 0):
        """param - lr * 2^-lr_shift * grad in the parameter's units: (lr_q * grad) >> (param_exp + 16 + lr_shift - grad_exp)."""
        t = -self.lr_q * check_int32(np.asarray(grad, np.int64), "weight gradient")
        return param.astype(np.int64) + shift_round(t, param_exp + LR_FRAC + lr_shift - grad_exp, rng)

    def update(self, layer, p: Params, dw, dw_exp: int, db, db_exp: int, lac) -> None:
        w = self._step(p.w, p.w_exp, dw, dw_exp, self.rng)
        # Written in place, saturated; a tensor that overshot the int8 range is halved for headroom.
        # (One pass in C, no wide copy of the weights.)
        at_edge = int(np.abs(w).max()) > Q_MAX
        w = np.clip(w, -Q_MAX, Q_MAX)
        peak = int(np.abs(w).max())
        if at_edge:
            w, p.w_exp = shift_round(w, 1), p.w_exp + 1
        elif 0 < peak < WEIGHT_GROW_BELOW:
            k = 7 - bit_length(peak)
            w, p.w_exp = w << k, p.w_exp - k
        if p.w_exp > WEIGHT_EXP_LIMIT:
            raise TrainingOverflow(f"{layer.where}: weights grew past 2^{WEIGHT_EXP_LIMIT + 7}; the run diverged")
        p.w = w.astype(np.int8)
        p.b = check_int32(self._step(p.b, BIAS_EXP, db, db_exp, None), f"{layer.where} bias")
        if lac is not None:
            dmu, dmu_exp, doff, doff_exp = lac
            decay = lambda v: shift_round(v * self.decay_q, 16)
            mu = self._step(p.mu, -MU_FRAC, dmu, dmu_exp, None, LAC_LR_SHIFT) - decay(p.mu)
            p.mu = np.clip(mu, -MU_LIMIT, MU_LIMIT)
            off = self._step(p.off, BIAS_EXP, doff, doff_exp, None, LAC_LR_SHIFT) - decay(p.off)
            p.off = check_int32(off, f"{layer.where} LAC offset")

    def merge(self, a: Value, b: Value) -> Value:
        return self.gradient(*_aligned_sum(a, b))

    def scaled(self, g: Value, taps: np.ndarray) -> tuple[np.ndarray, int]:
        """Average pool backward: each output gradient times round(2^23 / taps)."""
        return g.data.astype(np.int64) * _pool_reciprocal(taps), g.exp - POOL_FRAC

    def column_sum(self, g: np.ndarray) -> np.ndarray:
        """A bias gradient: the sum over pixels, exact."""
        return g.sum(axis=0, dtype=np.int64)


class Fp32:
    """The fp32 baseline: the same graph in float32, plain SGD, every sum in a fixed order (floatmath)."""

    name = "fp32"

    def __init__(self, lr: float, **_ignored):
        self.set_lr(lr_q16(lr))
        self.training = True

    def set_lr(self, lr_q: int) -> None:
        """The same Q16 learning rate as int8, so both follow one schedule exactly."""
        self.lr_q = lr_q
        self.lr = np.float32(lr_q / (1 << LR_FRAC))

    def init_params(self, layer) -> Params:
        return Params(layer.weights.astype(np.float32), layer.bias.astype(np.float32))

    def real_weights(self, p: Params) -> np.ndarray:
        return p.w.astype(np.float64)

    def dot(self, spec: str, a, b) -> np.ndarray:
        return floatmath.dot(spec, a, b)

    def column_sum(self, g: np.ndarray) -> np.ndarray:
        return floatmath.column_sum(g)

    def _activate(self, acc, activation):
        if activation in ("RELU", "RELU6"):
            acc = np.maximum(acc, np.float32(0))
        if activation == "RELU6":
            acc = np.minimum(acc, np.float32(6))
        return acc

    def output(self, acc, exp, layer, p: Params | None) -> Value:
        if p is not None:
            acc = acc + p.b
        return Value(self._activate(acc, layer.activation).astype(np.float32))

    def average(self, sums, exp, taps, layer) -> Value:
        return Value(self._activate(sums / taps[:, None].astype(np.float32), layer.activation).astype(np.float32))

    def add(self, a: Value, b: Value, layer) -> Value:
        return Value(self._activate(a.data + b.data, layer.activation))

    def maximum(self, cols, valid, exp) -> Value:
        return Value(np.where(valid[..., None], cols, -np.inf).max(axis=1).astype(np.float32))

    def loss(self, logits: Value, label: int) -> tuple[float, Value]:
        loss, grad = floatmath.softmax_cross_entropy(logits.data, label)
        return float(loss), Value(grad)

    def gradient(self, acc, exp) -> Value:
        return Value(np.asarray(acc, np.float32))

    def output_grad(self, g: Value, y: Value, layer, p):
        return Value(np.where(_relu_mask(y.data, layer.activation, np.float32(6)), g.data, 0).astype(np.float32)), None

    def update(self, layer, p: Params, dw, dw_exp, db, db_exp, lac) -> None:
        p.w = (p.w - self.lr * dw.astype(np.float32)).astype(np.float32)
        p.b = (p.b - self.lr * db.astype(np.float32)).astype(np.float32)
        if not (np.all(np.isfinite(p.w)) and np.abs(p.w).max() < FP32_WEIGHT_LIMIT):
            raise TrainingOverflow(f"{layer.where}: weights left the finite range below {FP32_WEIGHT_LIMIT:g}; the run diverged")

    def merge(self, a: Value, b: Value) -> Value:
        return Value(a.data + b.data)

    def scaled(self, g: Value, taps) -> tuple[np.ndarray, int]:
        return g.data / taps[:, None].astype(np.float32), 0


ARITHMETICS = {"int8": Int8, "fp32": Fp32}
