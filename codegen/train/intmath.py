"""Integer primitives of int8 training: rounding shifts, dynamic quantization, loss.

Every function here is written so a C loop can do the same integer operations:
values are int64 NumPy arrays, shifts are arithmetic (floor), and random draws
are consumed one per element in flat (row-major, NHWC) order. TRAINING.md states
the contract; these functions are its definition.
"""
from __future__ import annotations

import numpy as np

from ..errors import TrainingError
from ..ref.softmax import exp_on_negative_values
from .prng import XorShift32

Q_MAX = 127  # int8 tensors are symmetric: -127..127, so negation never overflows
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
EXP_INPUT_FRAC = 26  # exp_on_negative_values takes Q5.26
PROB_FRAC = 30  # probabilities and the logit gradient: Q1.30
LOSS_FRAC = 16  # the loss is reported in Q16.16
MAX_SHIFT = 62
LN2_Q16 = 45426  # round(ln(2) * 2^16)
LOG2_TABLE_BITS = 8
# log2(1 + i/256) in Q16, i = 0..256: the mantissa table of :func:`log2_q16`
LOG2_TABLE = np.floor(np.log2(1.0 + np.arange(257) / 256.0) * 65536.0 + 0.5).astype(np.int64)


class TrainingOverflow(TrainingError):
    """An integer left the range the C kernels hold it in: the run diverged."""


def check_int32(values: np.ndarray, what: str) -> np.ndarray:
    """The C keeps ``values`` in int32; outside that range the run has diverged."""
    if values.size and (values.min() < INT32_MIN or values.max() > INT32_MAX):
        raise TrainingOverflow(f"{what} overflows int32 (max |value| {int(np.abs(values).max())}); the run diverged")
    return values


def bit_length(x: int) -> int:
    return int(x).bit_length()


def shift_round(x: np.ndarray, shift: int, rng: XorShift32 | None = None) -> np.ndarray:
    """x * 2^-shift as an integer.

    shift <= 0: an exact left shift. shift > 0: floor((x + u) / 2^shift) where u
    is the top ``shift`` bits of one draw per element (stochastic rounding,
    unbiased) or, without a stream, u = 2^(shift - 1) (round half up). Right
    shifts saturate at MAX_SHIFT: the int64 arithmetic of the C stays defined,
    and every |x| this code shifts is far below 2^MAX_SHIFT, so the result is
    the same as for any larger shift.
    """
    x = np.asarray(x, dtype=np.int64)
    shift = min(shift, MAX_SHIFT)
    if shift <= 0:
        return x << -shift
    if rng is None:
        return (x + (1 << (shift - 1))) >> shift
    if shift > 32:  # draws are 32 bits: scale them up, the low bits stay zero
        u = rng.draw(x.size).astype(np.int64) << (shift - 32)
    else:
        u = rng.draw(x.size).astype(np.int64) >> (32 - shift)
    return (x + u.reshape(x.shape)) >> shift


def clip_range(acc: np.ndarray, prc_z: int) -> int:
    """The largest magnitude a tensor is quantized for.

    Without PRC (prc_z = 0) the tensor's max |value|. With PRC, Octo's
    parameterized range clipping: min(max, floor(prc_z * sum|value| / n)), a
    multiple of the mean magnitude (about 0.8 sigma for a Gaussian), so a few
    outliers do not spend the int8 range.
    """
    a = np.abs(acc)
    peak = int(a.max()) if a.size else 0
    if prc_z <= 0 or peak == 0:
        return peak
    return min(peak, (prc_z * int(a.sum())) // a.size)


def quantize(acc: np.ndarray, exp: int, rng: XorShift32 | None, prc_z: int = 0) -> tuple[np.ndarray, int]:
    """Dynamic int8 quantization of an integer tensor with value acc * 2^exp.

    The shift puts the (clipped) range R at 64..127: s = bit_length(R) - 7,
    negative s scales small tensors up exactly. Values beyond R saturate at
    +-127. Returns the int8 data and its exponent exp + s.
    """
    r = clip_range(acc, prc_z)
    s = bit_length(r) - 7 if r else 0
    q = np.clip(shift_round(acc, s, rng), -Q_MAX, Q_MAX)
    return q.astype(np.int8), exp + s


def log2_q16(x: np.ndarray) -> np.ndarray:
    """log2(x) in Q16 for integers x >= 1: exponent plus a table-interpolated mantissa."""
    x = np.asarray(x, dtype=np.int64)
    n = np.array([bit_length(v) - 1 for v in x.ravel()], dtype=np.int64).reshape(x.shape)
    m = np.where(n >= 16, x >> np.maximum(n - 16, 0), x << np.maximum(16 - n, 0)) - (1 << 16)
    idx, frac = m >> LOG2_TABLE_BITS, m & ((1 << LOG2_TABLE_BITS) - 1)
    lo, hi = LOG2_TABLE[idx], LOG2_TABLE[idx + 1]
    return (n << 16) + lo + (((hi - lo) * frac + (1 << (LOG2_TABLE_BITS - 1))) >> LOG2_TABLE_BITS)


def softmax_cross_entropy(logits: np.ndarray, exp: int, label: int) -> tuple[int, np.ndarray]:
    """Loss (Q16) and logit gradient p - onehot (Q1.30, exponent -30) of int8 logits.

    Differences to the largest logit go to Q5.26 and through TFLM's fixed-point
    exp (exp(0) is INT32_MAX); p_i = floor(exp_i * 2^30 / sum). The loss is
    ln(sum / exp_label) = (log2 sum - log2 exp_label) * ln 2, rounded half up.
    """
    q = logits.astype(np.int64)
    diff = q - q.max()
    shift = EXP_INPUT_FRAC + exp
    scaled = np.maximum(shift_round(diff, -shift), INT32_MIN)
    e = exp_on_negative_values(scaled).astype(np.int64)
    total = int(e.sum())
    p = (e << PROB_FRAC) // total
    grad = p.copy()
    grad[label] -= 1 << PROB_FRAC
    log_ratio = int(log2_q16(np.array([total]))[0] - log2_q16(np.array([max(int(e[label]), 1)]))[0])
    loss = (log_ratio * LN2_Q16 + (1 << 15)) >> 16
    return loss, grad
