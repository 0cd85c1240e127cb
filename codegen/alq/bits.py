"""Bit-planes: {-1, +1} vectors packed into uint32 words (the order FORMAT.md states).

Element k of a group is bit k % 32 of word k // 32 (LSB first); bit 1 means -1 and
bit 0 means +1, Larq's convention. Bits past the group's end are 0 in weights and
activations alike, so their XOR is 0 and they never reach a popcount.
"""
from __future__ import annotations

import numpy as np

WORD_BITS = 32


def words(n: int) -> int:
    """uint32 words that hold an n-element group."""
    return -(-n // WORD_BITS)


def pack(signs: np.ndarray, n_words: int | None = None) -> np.ndarray:
    """[..., n] of +-1 -> [..., n_words] uint32; padding bits 0."""
    signs = np.asarray(signs)
    n = signs.shape[-1]
    n_words = words(n) if n_words is None else n_words
    bits = np.zeros((*signs.shape[:-1], n_words * WORD_BITS), np.uint64)
    bits[..., :n] = signs < 0
    weights = np.uint64(1) << np.arange(WORD_BITS, dtype=np.uint64)
    return (bits.reshape(*signs.shape[:-1], n_words, WORD_BITS) * weights).sum(axis=-1).astype(np.uint32)


def unpack(packed: np.ndarray, n: int) -> np.ndarray:
    """[..., words] uint32 -> [..., n] int8 of +-1 (inverse of :func:`pack`)."""
    packed = np.asarray(packed, np.uint32)
    shifts = np.arange(WORD_BITS, dtype=np.uint32)
    bits = (packed[..., None] >> shifts) & 1
    flat = bits.reshape(*packed.shape[:-1], packed.shape[-1] * WORD_BITS)[..., :n]
    return (1 - 2 * flat.astype(np.int8)).astype(np.int8)


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per uint32 element, as int64."""
    x = np.asarray(x, np.uint32)
    return np.unpackbits(x[..., None].view(np.uint8), axis=-1).sum(axis=-1, dtype=np.int64)


def padding_clear(packed: np.ndarray, n: int) -> bool:
    """Whether every bit at or past element n of each group is 0."""
    packed = np.asarray(packed, np.uint32)
    return bool(np.array_equal(pack(unpack(packed, n), packed.shape[-1]), packed))
