"""Receptive fields of windowed layers as gather indices, shared by both arithmetics.

Pixels are numbered row-major; index H*W stands for the zero padding, so
gathering from the input with one extra zero row yields every receptive field,
and the transpose (input gradients) is a scatter-add through the same indices.
"""
from __future__ import annotations

import numpy as np

from ..ref.params import Window


class Patches:
    def __init__(self, in_shape: tuple[int, int, int], out_shape: tuple[int, ...], win: Window):
        h, w, _ = in_shape
        oh, ow = out_shape[0], out_shape[1]
        oy = np.arange(oh)[:, None, None, None] * win.stride_h - win.pad_h
        ox = np.arange(ow)[None, :, None, None] * win.stride_w - win.pad_w
        ky = np.arange(win.kernel_h)[None, None, :, None] * win.dilation_h
        kx = np.arange(win.kernel_w)[None, None, None, :] * win.dilation_w
        y, x = oy + ky, ox + kx
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        self.pixels = h * w
        self.index = np.where(inside, y * w + x, self.pixels).reshape(oh * ow, win.kernel_h * win.kernel_w)
        self.valid = inside.reshape(self.index.shape)
        self.count = self.valid.sum(axis=1)  # taps inside the image, per output pixel

    def gather(self, x: np.ndarray) -> np.ndarray:
        """[H, W, C] -> [P, KH*KW, C], padding taps zero."""
        flat = x.reshape(self.pixels, -1)
        ext = np.concatenate([flat, np.zeros((1, flat.shape[1]), flat.dtype)])
        return ext[self.index]

    def scatter(self, patches: np.ndarray, in_shape) -> np.ndarray:
        """Transpose of :meth:`gather`: sum every tap back onto its input pixel."""
        ext = np.zeros((self.pixels + 1, patches.shape[-1]), patches.dtype)
        np.add.at(ext, self.index, patches)
        return ext[: self.pixels].reshape(in_shape)
