"""The integer primitives of int8 training, against definitions written independently here."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codegen.train import intmath
from codegen.train.prng import XorShift32


class ListStream:
    """A stand-in stream that returns chosen 32-bit draws, to enumerate every rounding offset."""

    def __init__(self, values):
        self.values = list(values)

    def draw(self, n):
        out, self.values = self.values[:n], self.values[n:]
        return np.array(out, dtype=np.uint32)


def test_xorshift32_is_marsaglias_generator():
    # Marsaglia (2003), "Xorshift RNGs": seed 2463534242 gives 723471715 first
    assert XorShift32().draw(1)[0] == 723471715
    x, expected = 2463534242, []
    for _ in range(1000):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        expected.append(x)
    r = XorShift32()
    got = np.concatenate([r.draw(1), r.draw(10), r.draw(989)])
    assert got.tolist() == expected
    assert r.state == expected[-1]


@given(st.integers(-10**6, 10**6), st.integers(1, 6))
def test_stochastic_rounding_is_exactly_unbiased(x, shift):
    """Over all 2^shift offsets the rounded values sum to exactly x (floor((x+u)/2^s) summed over u)."""
    draws = [u << (32 - shift) for u in range(1 << shift)]
    got = intmath.shift_round(np.full(1 << shift, x), shift, ListStream(draws))
    assert int(got.sum()) == x
    assert set(got.tolist()) <= {x >> shift, (x >> shift) + 1}


@given(st.integers(-10**9, 10**9), st.integers(-20, 70))
def test_nearest_shift_rounds_half_up(x, shift):
    got = int(intmath.shift_round(np.array([x]), shift)[0])
    s = min(shift, intmath.MAX_SHIFT)
    expected = x * 2**-s if s <= 0 else math.floor(x / 2**s + 0.5)
    assert got == expected


def test_quantize_uses_the_full_range_and_tracks_the_exponent():
    acc = np.array([1000, -3000, 5, 0])
    q, e = intmath.quantize(acc, -10, None)
    assert 64 <= np.abs(q).max() <= 127
    assert e == -10 + (3000).bit_length() - 7
    assert np.allclose(q * 2.0**e, acc * 2.0**-10, atol=2.0**e)
    small, es = intmath.quantize(np.array([3, -1]), 0, None)  # small tensors scale up exactly
    assert small.tolist() == [96, -32] and es == -5


def test_prc_clips_outliers_and_keeps_resolution_for_the_rest():
    acc = np.concatenate([np.arange(-50, 51), [100000]])
    plain, e_plain = intmath.quantize(acc, 0, None, prc_z=0)
    clipped, e_clip = intmath.quantize(acc, 0, None, prc_z=6)
    assert e_clip < e_plain  # a finer grid for the bulk
    assert clipped[-1] == 127  # the outlier saturates
    assert len(set(clipped[:-1].tolist())) > len(set(plain[:-1].tolist()))


def test_log2_q16_is_within_table_precision():
    xs = np.array([1, 2, 3, 7, 255, 1000, 65535, 123456789, 2**40 + 12345])
    got = intmath.log2_q16(xs) / 65536
    assert np.all(np.abs(got - np.log2(xs.astype(float))) < 2**-13)


@pytest.mark.parametrize("exp", [-7, -3, 0])
def test_softmax_cross_entropy_matches_float(exp):
    rng = np.random.default_rng(exp + 10)
    logits = rng.integers(-127, 128, 10).astype(np.int8)
    label = 3
    loss, grad = intmath.softmax_cross_entropy(logits, exp, label)
    z = logits * 2.0**exp
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert abs(loss / 65536 - (-np.log(max(p[label], 1e-300)))) < 2e-3 or p[label] < 1e-9
    onehot = np.eye(10)[label]
    assert np.allclose(grad / 2.0**30, p - onehot, atol=1e-6)
