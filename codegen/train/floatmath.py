"""The fp32 baseline's float32 arithmetic, in an order generated C reproduces bit for bit.

Every operation is one IEEE-754 float32 operation, rounded to nearest (no FMA,
no wider intermediate). Sums run sequentially over their reduced index: the
accumulator starts at +0 and each product, rounded to float32, is added in
index order. NumPy vectorizes over the other axes and takes the running sum
with ``cumsum`` (an accumulate is sequential by definition; ``sum`` is pairwise).
exp and log are our own range reduction and polynomial, so no libm takes part.
TRAINING.md ("fp32 baseline") states the contract.
"""
from __future__ import annotations

import functools

import numpy as np

from .intmath import TrainingOverflow

F32 = np.float32
ZERO = F32(0)
LOG2E = F32(1.44269504)
LN2 = F32(0.693147181)
LN2_HI = F32(0.693145752)  # few mantissa bits: k * LN2_HI is exact for the |k| <= 126 exp uses
LN2_LO = F32(1.42860677e-06)
EXP_UNDERFLOW = F32(-86.0)  # exp(x) below this is taken as 0 (2^k stays a normal float)
SQRT2 = F32(1.41421356)
#: exp(r) on |r| <= ln2/2: Taylor to r^6, Horner from the top
EXP_POLY = tuple(F32(1.0 / f) for f in (720, 120, 24, 6, 2, 1, 1))
#: log(m) = 2 atanh(s) = s * (2 + 2/3 z + 2/5 z^2 + 2/7 z^3 + 2/9 z^4), z = s^2, Horner from the top
LOG_POLY = tuple(F32(2.0 / d) for d in (9, 7, 5, 3, 1))


@functools.cache
def _layout(spec: str) -> tuple[tuple, tuple, bool]:
    """For each operand of ``spec``: the transpose and the new axes that line it up with the output
    axes followed by the reduced one; and whether there is a reduced axis."""
    inputs, out = spec.split("->")
    letters = inputs.split(",")
    reduced = "".join(ch for ch in dict.fromkeys("".join(letters)) if ch not in out)
    assert len(reduced) <= 1, spec
    full = out + reduced
    layouts = []
    for s in letters:
        order = tuple(sorted(range(len(s)), key=lambda i: full.index(s[i])))
        layouts.append((order, tuple(slice(None) if ch in s else None for ch in full)))
    return layouts[0], layouts[1], bool(reduced)


def dot(spec: str, a, b) -> np.ndarray:
    """``einsum(spec, a, b)`` in float32, each product rounded, each sum sequential from +0."""
    (order_a, index_a), (order_b, index_b), reduces = _layout(spec)
    products = np.multiply(np.asarray(a, F32).transpose(order_a)[index_a],
                           np.asarray(b, F32).transpose(order_b)[index_b])
    if not reduces:
        return products
    # +0 first: the C starts its accumulator there and skips padding taps, whose +-0 products change nothing
    return np.cumsum(products, axis=-1)[..., -1] + ZERO


def column_sum(x: np.ndarray) -> np.ndarray:
    """Sum over axis 0, sequential from the first row (bias gradients: pixels in order)."""
    return np.cumsum(np.asarray(x, F32), axis=0)[-1]


def _power_of_two(k: np.ndarray) -> np.ndarray:
    """2^k as float32 from its bits, for normal k (-126..127)."""
    return ((k.astype(np.int32) + 127) << 23).view(F32)


def exp(x: np.ndarray) -> np.ndarray:
    """exp(x) for x <= 0: x = k ln2 + r, exp(r) by polynomial, times 2^k; 0 below EXP_UNDERFLOW."""
    x = np.asarray(x, F32)
    live = x >= EXP_UNDERFLOW
    xs = np.where(live, x, ZERO)
    k = -np.floor(F32(0.5) - xs * LOG2E)  # x / ln2 rounded, ties down; the C truncates the positive 0.5 - t
    r = (xs - k * LN2_HI) - k * LN2_LO
    p = EXP_POLY[0]
    for c in EXP_POLY[1:]:
        p = p * r + c
    return np.where(live, p * _power_of_two(k), ZERO).astype(F32)


def log(x: F32) -> F32:
    """log(x) for a normal x > 0: x = m 2^e, m in [sqrt2/2, sqrt2), log m = 2 atanh((m-1)/(m+1))."""
    bits = int(np.asarray(x, F32).view(np.uint32))
    e = (bits >> 23) - 127
    m = np.array((bits & 0x7FFFFF) | 0x3F800000, np.uint32).view(F32)[()]
    if m > SQRT2:
        m, e = m * F32(0.5), e + 1
    f = m - F32(1)
    s = f / (F32(2) + f)
    z = s * s
    p = LOG_POLY[0]
    for c in LOG_POLY[1:]:
        p = p * z + c
    return F32(e) * LN2 + s * p


def softmax_cross_entropy(z: np.ndarray, label: int) -> tuple[F32, np.ndarray]:
    """Loss log(S) - d_label and gradient p - onehot, d = z - max z, S = sum exp(d) in order, p = exp(d) / S."""
    z = np.asarray(z, F32).ravel()
    if not np.all(np.isfinite(z)):
        raise TrainingOverflow("the logits are not finite; the run diverged")
    d = z - z.max()
    e = exp(d)
    total = np.cumsum(e)[-1]
    grad = e / total
    grad[label] = grad[label] - F32(1)
    return log(total) - d[label], grad
