"""int8 SOFTMAX through TFLite Micro's fixed-point exp path (gemmlowp), exactly.

Fixed-point numbers are int32 raw values with a stated number of integer bits
(Q(ib).(31-ib)); the helpers below name the format in their docstrings. The
constants are gemmlowp's, each the rounded fixed-point value of the real number
given beside it.
"""
from __future__ import annotations

import numpy as np

from .fixedpoint import (
    INT32_MAX,
    as_i64,
    multiply_by_quantized_multiplier,
    rounding_divide_by_pot,
    rounding_half_sum,
    saturating_rounding_doubling_high_mul,
    saturating_rounding_multiply_by_pot,
)
from .params import SOFTMAX_SCALED_DIFF_INTEGER_BITS, SoftmaxParams

ACCUMULATION_INTEGER_BITS = 12
EXP_MINUS_ONE_EIGHTH_Q0 = 1895147668  # exp(-1/8)
ONE_THIRD_Q0 = 715827883  # 1/3
FORTY_EIGHT_OVER_SEVENTEEN_Q2 = 1515870810  # 48/17
MINUS_THIRTY_TWO_OVER_SEVENTEEN_Q2 = -1010580540  # -32/17
# exp(-2^k) in Q0.31 for k = -2..4: the barrel shifter of exp_on_negative_values
EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401), (4, 242))

_mul = saturating_rounding_doubling_high_mul  # fixed-point multiply: Q(a) * Q(b) -> Q(a + b)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8."""
    x = a + (1 << 28)  # a + 1/8
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(_mul(x4_over_4 + x3, ONE_THIRD_Q0) + x2, -1)
    return EXP_MINUS_ONE_EIGHTH_Q0 + _mul(EXP_MINUS_ONE_EIGHTH_Q0, x + poly)


def exp_on_negative_values(a) -> np.ndarray:
    """exp(a) for a <= 0: input Q5.26, output Q0.31."""
    fractional_bits = 31 - SOFTMAX_SCALED_DIFF_INTEGER_BITS
    a = as_i64(a)
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, SOFTMAX_SCALED_DIFF_INTEGER_BITS)
    )
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in EXP_BARREL:
        if SOFTMAX_SCALED_DIFF_INTEGER_BITS > exponent:
            bit = (remainder & (1 << (fractional_bits + exponent))) != 0
            result = np.where(bit, _mul(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1): input Q0.31, output Q0.31, by Newton-Raphson in Q2.29."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = FORTY_EIGHT_OVER_SEVENTEEN_Q2 + _mul(half_denominator, MINUS_THIRTY_TWO_OVER_SEVENTEEN_Q2)
    one_q2 = 1 << 29
    for _ in range(3):
        one_minus_half_denominator_times_x = one_q2 - _mul(half_denominator, x)
        x = x + saturating_rounding_multiply_by_pot(_mul(x, one_minus_half_denominator_times_x), 2)
    return saturating_rounding_multiply_by_pot(x, 1)


def _count_leading_zeros32(x) -> np.ndarray:
    x = as_i64(x) & 0xFFFFFFFF
    bits = np.zeros_like(x)
    for shift in (16, 8, 4, 2, 1):
        fits = x < (1 << (32 - shift))
        bits = np.where(fits, bits + shift, bits)
        x = np.where(fits, x << shift, x)
    return np.where(x < (1 << 31), bits + 1, bits)


def _reciprocal(x, integer_digits: int):
    """TFLite GetReciprocal: (1 / x as Q0.31, num_bits_over_unit)."""
    headroom_plus_one = _count_leading_zeros32(x)
    num_bits_over_unit = integer_digits - headroom_plus_one
    shifted_sum_minus_one = (((as_i64(x) << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)).astype(np.int64)
    return _one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def softmax(x: np.ndarray, p: SoftmaxParams) -> np.ndarray:
    """int8 -> int8 softmax over the last axis (output scale 1/256, zero point -128)."""
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    diff = rows - rows.max(axis=1, keepdims=True)
    live = diff >= p.diff_min
    rescaled = multiply_by_quantized_multiplier(diff, p.input_multiplier, p.input_left_shift)
    exps = exp_on_negative_values(rescaled)
    # Rescale Q0.31 to Q12.19 before summing, then take the reciprocal of the sum
    terms = saturating_rounding_multiply_by_pot(exps, -ACCUMULATION_INTEGER_BITS)
    sums = np.where(live, terms, 0).sum(axis=1, keepdims=True)
    scale, bits_over_unit = _reciprocal(sums, ACCUMULATION_INTEGER_BITS)
    out = rounding_divide_by_pot(_mul(scale, exps), bits_over_unit + 31 - 8) - 128
    out = np.where(live, np.clip(out, -128, 127), -128)
    return out.astype(np.int8).reshape(x.shape)
