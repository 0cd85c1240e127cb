"""The trainable state as bytes: one layout for the generated C, the board and the host.

The C step exposes its trainable parameters as a table of blocks
(``<prefix>_blocks()``); the board sends their bytes back over serial; the host
decodes them into :class:`~codegen.train.arith.Params` and compares them with
the reference. All three follow :func:`layout`, so the order is stated once:

per updated layer, in layer order:
  int8: weights (int8, the layer's weight layout), weights exponent (int32),
        bias (int32 per channel), then with LAC mu (int16) and offset (int32)
  fp32: weights (float32), bias (float32)

Frozen layers never change and are not part of the state. Little-endian, as
both the host and Cortex-M are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ProtocolError
from .arith import Params
from .model import TrainModel


@dataclass(frozen=True)
class Block:
    layer: int
    field: str  # "w", "w_exp", "b", "mu" or "off": the Params attribute
    dtype: str  # numpy dtype of the bytes, little-endian
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def layout(model: TrainModel) -> list[Block]:
    blocks = []
    for layer in model.graph.trainable:
        p = model.params[layer.index]
        channels = (len(p.b),)
        if model.mode == "int8":
            blocks += [Block(layer.index, "w", "<i1", p.w.shape), Block(layer.index, "w_exp", "<i4", ()),
                       Block(layer.index, "b", "<i4", channels)]
            if p.mu is not None:
                blocks += [Block(layer.index, "mu", "<i2", channels), Block(layer.index, "off", "<i4", channels)]
        else:
            blocks += [Block(layer.index, "w", "<f4", p.w.shape), Block(layer.index, "b", "<f4", channels)]
    return blocks


def state_bytes(model: TrainModel, params: dict[int, Params] | None = None) -> bytes:
    """The reference's trainable state in the board's byte layout."""
    params = model.params if params is None else params
    return b"".join(np.asarray(getattr(params[b.layer], b.field)).astype(b.dtype).tobytes() for b in layout(model))


def decode(model: TrainModel, data: bytes, where: str) -> dict[int, Params]:
    """Parameters of the updated layers from state bytes (frozen layers taken from the model)."""
    blocks = layout(model)
    expected = sum(b.nbytes for b in blocks)
    if len(data) != expected:
        raise ProtocolError(f"{where}: trainable state is {len(data)} bytes, the model's layout has {expected}")
    out = {i: p.copy() for i, p in model.params.items()}
    offset = 0
    for b in blocks:
        value = np.frombuffer(data, b.dtype, int(np.prod(b.shape, dtype=np.int64)), offset).reshape(b.shape)
        offset += b.nbytes
        if b.field == "w_exp":
            value = int(value)
        elif model.mode == "int8" and b.field != "w":
            value = value.astype(np.int64)  # the reference keeps integer sums as int64
        else:
            value = value.copy()
        setattr(out[b.layer], b.field, value)
    return out
