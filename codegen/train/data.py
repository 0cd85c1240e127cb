"""Datasets for training: scikit-learn's bundled digits, fitted to a model's input.

``load_digits`` ships with scikit-learn (1797 8x8 images, 16 grey levels, no
download). The split is fixed: a permutation from seed 0, the last 20% held out
for testing. A model whose input is not 8x8x1 (an imported .tflite) gets the
images scaled by nearest neighbour to its height and width, repeated over its
channels. Pixels p in 0..16 become the int8 value min(8p, 127) with exponent -7
(real p / 16): every arithmetic starts from these exact numbers.

A pretrained model was trained on inputs in the real range its input
quantization covers (0..255 for an image model, -123..26 for KWS's MFCCs);
fed 0..1 its frozen features barely vary. Given that range, pixels map
linearly onto it instead (0 to the lowest value, 16 to the highest), rounded
to int8 with the smallest power-of-two exponent that holds it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

DATASETS = ("digits",)
LABELS = {"digits": 10}  # classes per dataset
SPLIT_SEED = 0
TEST_FRACTION = 0.2
INPUT_EXP = -7


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # int8 [N, *input_shape]
    y_train: np.ndarray  # int [N]
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    exp: int = INPUT_EXP


def _fit(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if len(shape) == 1:
        if shape[0] != images.shape[1] * images.shape[2]:
            raise InputError(f"digits are 8x8 images; a model input of shape {shape} cannot take them")
        return images.reshape(len(images), -1)
    h, w, c = shape
    rows = np.arange(h) * images.shape[1] // h
    cols = np.arange(w) * images.shape[2] // w
    scaled = images[:, rows][:, :, cols]
    return np.repeat(scaled[..., None], c, axis=-1)


def _to_range(pixels: np.ndarray, value_range: tuple[float, float]) -> tuple[np.ndarray, int]:
    lo, hi = value_range
    real = lo + (hi - lo) * pixels / 16.0
    exp = int(np.ceil(np.log2(max(abs(lo), abs(hi)) / 127)))
    q = np.sign(real) * np.floor(np.abs(real) / 2.0**exp + 0.5)
    return np.clip(q, -127, 127).astype(np.int64), exp


def labels(name: str) -> int:
    """The number of classes of dataset ``name``."""
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    return LABELS[name]


def load(name: str, input_shape: tuple[int, ...], classes: int,
         value_range: tuple[float, float] | None = None) -> Dataset:
    """The fixed split fitted to ``input_shape``; pixels in ``value_range`` (real) if given, else 0..1."""
    if classes < labels(name):
        raise InputError(f"digits has {LABELS[name]} classes; the model's loss has only {classes} outputs")
    from sklearn.datasets import load_digits

    digits = load_digits()
    if value_range is None:
        pixels, exp = np.minimum(digits.images.astype(np.int64) * 8, 127), INPUT_EXP
    else:
        pixels, exp = _to_range(digits.images, value_range)
    x = _fit(pixels, input_shape).astype(np.int8)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    n_test = round(len(y) * TEST_FRACTION)
    train, test = order[:-n_test], order[-n_test:]
    return Dataset(name, x[train], y[train], x[test], y[test], classes, exp)
