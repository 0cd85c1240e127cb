"""The fixed-point primitives against values worked out by hand from their definitions."""
import numpy as np
import pytest

from codegen.ref import fixedpoint as fp


@pytest.mark.parametrize("x, expected", [(2.5, 3), (-2.5, -3), (0.5, 1), (-0.5, -1), (0.49999999999999994, 0),
                                         (1.4999999, 1), (-7.0, -7), (0.0, 0)])
def test_tflite_round_is_half_away_from_zero(x, expected):
    assert fp.tflite_round(x) == expected


@pytest.mark.parametrize("real, expected", [
    (0.5, (1 << 30, 0)),          # 0.5 = 2^30 * 2^(0 - 31)
    (1.0, (1 << 30, 1)),
    (0.75, (3 << 29, 0)),
    (0.25, (1 << 30, -1)),
    (0.0, (0, 0)),
    (1.0 - 2.0**-40, (1 << 30, 1)),  # rounds up to 2^31, renormalised
    (2.0**-40, (0, 0)),           # shift below -31 flushes to zero
])
def test_quantize_multiplier(real, expected):
    assert fp.quantize_multiplier(real) == expected


def test_doubling_high_mul_rounds_and_saturates():
    srdhm = fp.saturating_rounding_doubling_high_mul
    assert srdhm(1 << 30, 1 << 30) == 1 << 29  # 0.5 * 0.5 in Q31
    assert srdhm(fp.INT32_MIN, fp.INT32_MIN) == fp.INT32_MAX
    assert srdhm(3, 1 << 30) == 2  # 1.5 rounds half up
    assert srdhm(-3, 1 << 30) == -1  # -1.5: gemmlowp's nudge rounds ties up, not away from zero
    assert srdhm(-7, 1 << 29) == -2  # -1.75 rounds to nearest
    assert srdhm(1, 1) == 0


@pytest.mark.parametrize("x, e, expected", [(5, 1, 3), (-5, 1, -3), (4, 1, 2), (7, 2, 2), (-6, 2, -2), (-7, 2, -2),
                                            (6, 2, 2), (-1, 31, 0), (fp.INT32_MAX, 31, 1)])
def test_rounding_divide_by_pot(x, e, expected):
    assert fp.rounding_divide_by_pot(x, e) == expected


def test_multiply_by_quantized_multiplier_matches_exact_rational_rounding():
    """Against exact rational arithmetic: the high mul rounds ties up, the divide rounds ties away from zero."""
    rng = np.random.default_rng(7)
    for _ in range(2000):
        x = int(rng.integers(-(1 << 20), 1 << 20))
        m = int(rng.integers(1 << 30, (1 << 31) - 1))
        shift = int(rng.integers(-20, 4))
        left, right = max(shift, 0), max(-shift, 0)
        prod = x * (1 << left) * m
        hi = (prod + (1 << 30)) >> 31  # floor(prod / 2^31 + 1/2)
        q, r = divmod(abs(hi), 1 << right)
        out = q + (1 if right and 2 * r >= (1 << right) else 0)
        assert fp.multiply_by_quantized_multiplier(x, m, shift) == (out if hi >= 0 else -out)
