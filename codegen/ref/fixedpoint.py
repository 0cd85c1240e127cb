"""Integer primitives of TFLite Micro and gemmlowp, vectorized with NumPy.

Every function takes and returns int64 arrays holding int32 values and reproduces
the C semantics exactly: division truncates toward zero, shifts of negative
numbers are arithmetic, and saturation happens where the C code saturates.
These are the building blocks of the arithmetic contract; the generated C has
one function for each of them.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def as_i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x) -> np.ndarray:
    """Two's-complement wrap to int32 (what an int32 multiply does on every target)."""
    x = as_i64(x)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def trunc_div(a, b) -> np.ndarray:
    """C integer division: quotient rounded toward zero."""
    a, b = as_i64(a), as_i64(b)
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), saturating a=b=INT32_MIN."""
    a, b = as_i64(a), as_i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    result = trunc_div(ab + nudge, 1 << 31)
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, result)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero."""
    x, exponent = as_i64(x), as_i64(exponent)
    mask = (as_i64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLM MultiplyByQuantizedMultiplier with double rounding (the reference kernels' choice)."""
    x, multiplier, shift = as_i64(x), as_i64(multiplier), as_i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(wrap_int32(x << left), multiplier), right)


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT: x * 2^exponent, saturating up, rounding down."""
    x = as_i64(x)
    if exponent > 0:
        return np.clip(x << exponent, INT32_MIN, INT32_MAX)
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    return x


def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp RoundingHalfSum for int32: (a + b + sign) / 2 with C division."""
    s = as_i64(a) + as_i64(b)
    return trunc_div(s + np.where(s >= 0, 1, -1), 2)


def tflite_round(x: float) -> int:
    """TfLiteRound / std::round: half away from zero (Python's round() is half-to-even).

    ``a - floor(a)`` is exact in binary floating point, unlike ``floor(a + 0.5)``.
    """
    a = abs(float(x))
    whole = math.floor(a)
    rounded = int(whole) + (1 if a - whole >= 0.5 else 0)
    return rounded if x >= 0 else -rounded


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = M * 2^(shift - 31), M in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = tflite_round(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift
