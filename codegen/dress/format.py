"""The DRESS CSR file: K sub-nets of one int8 model in one file (byte layout in FORMAT.md).

:func:`to_bytes` / :func:`from_bytes` are exact inverses; :func:`write` replaces a
file atomically, :func:`read` raises one-line :class:`ModelError`s that name the
byte offset of a truncated, inconsistent or corrupted field.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import ir
from ..errors import InputError, ModelError
from ..files import write_atomically
from ..frontends import tflite
from .sampling import LayerSample, RowShape, filters, sampled_ops

MAGIC = b"DRES"
VERSION = 1
HEADER = struct.Struct("<4sHHHI")  # magic, version, K, layers, row (0 = filter)
LAYER = struct.Struct("<HBBIIII")  # op index, index bytes, reserved, C, L, G, N


def index_bytes(row_length: int) -> int:
    """A column index is a u8 when a row has at most 256 columns, else a u16."""
    return 1 if row_length <= 256 else 2


@dataclass
class DressLayer(LayerSample):
    """A sampled layer with every sub-net's quantization parameters, [K, C] each."""

    bias: np.ndarray  # int32
    scale: np.ndarray  # float32: the filter scale of each channel (encodes the multiplier)
    multiplier: np.ndarray  # int32, as codegen/ref/params.py derives it from ``scale``
    shift: np.ndarray  # int32


@dataclass
class DressModel:
    sparsities: tuple[float, ...]
    row: int  # 0 = filter, else the chunk length
    layers: list[DressLayer]
    tflite: bytes  # the source model: everything dense

    @property
    def subnets(self) -> int:
        return len(self.sparsities)


def to_bytes(model: DressModel) -> bytes:
    parts = [HEADER.pack(MAGIC, VERSION, model.subnets, len(model.layers), model.row),
             np.asarray(model.sparsities, dtype="<f8").tobytes(), struct.pack("<I", len(model.tflite))]
    for layer in model.layers:
        s = layer.shape
        width = index_bytes(s.row_length)
        parts += [LAYER.pack(layer.op_index, width, 0, s.channels, s.filter_length, s.rows, s.row_length),
                  np.asarray(layer.nnz, dtype="<u4").tobytes(),
                  layer.columns.astype(f"<u{width}").tobytes(), layer.values.astype(np.int8).tobytes()]
        for k in range(model.subnets):
            parts += [layer.bias[k].astype("<i4").tobytes(), layer.scale[k].astype("<f4").tobytes(),
                      layer.multiplier[k].astype("<i4").tobytes(), layer.shift[k].astype("<i4").tobytes()]
    parts.append(model.tflite)
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def write(path: str | Path, model: DressModel) -> None:
    """Write the whole file or leave the old one."""
    write_atomically(Path(path), to_bytes(model))


def is_dress(path: str | Path) -> bool:
    """Whether ``path`` starts with the DRESS magic (anything unreadable is left to the caller's reader)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def read(path: str | Path) -> DressModel:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ModelError(f"{path}: cannot read DRESS file ({err.strerror})") from None
    return from_bytes(data, str(path))


class _Cursor:
    """Sequential little-endian reads that name the offset of whatever is missing or wrong."""

    def __init__(self, data: bytes, source: str):
        self.data, self.source, self.pos = data, source, 0

    def fail(self, offset: int, what: str) -> ModelError:
        return ModelError(f"{self.source}: byte offset {offset}: {what}")

    def take(self, size: int, what: str) -> tuple[int, bytes]:
        if size > len(self.data) - self.pos:
            raise self.fail(self.pos, f"truncated: {what} needs {size} bytes, {len(self.data) - self.pos} remain")
        start, self.pos = self.pos, self.pos + size
        return start, self.data[start:self.pos]

    def unpack(self, fmt: struct.Struct, what: str) -> tuple[int, tuple]:
        start, raw = self.take(fmt.size, what)
        return start, fmt.unpack(raw)

    def array(self, dtype: str, count: int, what: str, shape=None) -> tuple[int, np.ndarray]:
        start, raw = self.take(count * np.dtype(dtype).itemsize, what)
        return start, np.frombuffer(raw, dtype=dtype).reshape(shape or (count,)).copy()


def from_bytes(data: bytes, source: str = "<bytes>") -> DressModel:
    c = _Cursor(data, source)
    at, (magic, version, subnets, count, row) = c.unpack(HEADER, "the header")
    if magic != MAGIC:
        raise c.fail(at, f"not a DRESS file (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise c.fail(at + 4, f"DRESS format version {version}, this reader knows {VERSION}")
    if subnets < 1:
        raise c.fail(at + 6, "no sub-nets (K = 0)")
    at, sparsities = c.array("<f8", subnets, "the sparsities")
    if not (np.all((sparsities > 0) & (sparsities < 1)) and np.all(np.diff(sparsities) > 0)):
        raise c.fail(at, f"sparsities {sparsities.tolist()} are not strictly increasing in (0, 1)")
    _, (model_bytes,) = c.unpack(struct.Struct("<I"), "the source model length")
    layers = [_layer(c, subnets, row) for _ in range(count)]
    tflite_at, tflite_bytes = c.take(model_bytes, "the source model")
    crc_at, (stored,) = c.unpack(struct.Struct("<I"), "the CRC-32 trailer")
    if c.pos != len(data):
        raise c.fail(c.pos, f"{len(data) - c.pos} bytes after the CRC-32 trailer")
    if stored != zlib.crc32(data[:crc_at]):
        raise c.fail(crc_at, f"CRC-32 mismatch (stored {stored:#010x}, the bytes before it give "
                             f"{zlib.crc32(data[:crc_at]):#010x}): the file is corrupted")
    model = DressModel(tuple(float(s) for s in sparsities), row, [layer for _, layer in layers], tflite_bytes)
    _check_against_model(c, model, [at for at, _ in layers], tflite_at)
    return model


def _layer(c: _Cursor, subnets: int, row: int) -> tuple[int, DressLayer]:
    at, (op_index, width, reserved, channels, length, rows, row_length) = c.unpack(LAYER, "a layer record")
    try:
        shape = RowShape.of(channels, length, row) if channels and length else None
    except InputError:
        shape = None
    if shape is None or (shape.rows, shape.row_length) != (rows, row_length):
        raise c.fail(at + 4, f"layer {op_index}: {rows} rows of {row_length} do not split {channels} filters "
                             f"of {length} with row {row or 'filter'}")
    if width != index_bytes(row_length) or reserved:
        raise c.fail(at + 2, f"layer {op_index}: {width}-byte column indices for rows of {row_length}")
    nnz_at, nnz = c.array("<u4", subnets, f"layer {op_index}'s nnz")
    if nnz[-1] < 1 or nnz[0] > row_length or np.any(np.diff(nnz.astype(np.int64)) > 0):
        raise c.fail(nnz_at, f"layer {op_index}: nnz {nnz.tolist()} not non-increasing in 1..{row_length}")
    kept = int(nnz[0])
    col_at, columns = c.array(f"<u{width}", rows * kept, f"layer {op_index}'s column indices", (rows, kept))
    distinct = np.all(np.diff(np.sort(columns, axis=1), axis=1) > 0)
    if np.any(columns >= row_length) or not distinct:
        raise c.fail(col_at, f"layer {op_index}: a row's column indices repeat or reach {row_length}")
    _, values = c.array("i1", rows * kept, f"layer {op_index}'s values", (rows, kept))
    params = [[c.array(dtype, channels, f"layer {op_index} sub-net {k}'s {name}")[1]
               for name, dtype in (("bias", "<i4"), ("scale", "<f4"), ("multiplier", "<i4"), ("shift", "<i4"))]
              for k in range(subnets)]
    bias, scale, multiplier, shift = (np.stack(p) for p in zip(*params))
    return at, DressLayer(op_index, shape, nnz.astype(np.int64), columns.astype(np.int64), values,
                          bias, scale, multiplier, shift)


def _check_against_model(c: _Cursor, model: DressModel, offsets: list[int], tflite_at: int) -> None:
    """Every layer record must describe a sampled layer of the embedded model, in order."""
    graph = tflite.parse(model.tflite, f"{c.source} (embedded model at byte offset {tflite_at})")
    ops = sampled_ops(graph)
    if [layer.op_index for layer in model.layers] != ops:
        raise c.fail(offsets[0] if offsets else tflite_at, f"layers {[layer.op_index for layer in model.layers]} "
                                                           f"are not the model's conv/FC layers {ops}")
    for at, layer in zip(offsets, model.layers):
        op = graph.ops[layer.op_index]
        expected = filters(op, graph.op_inputs(op)[1].data).shape
        if (layer.shape.channels, layer.shape.filter_length) != expected:
            raise c.fail(at + 4, f"layer {layer.op_index} ({op.OP}): {layer.shape.channels} filters of "
                                 f"{layer.shape.filter_length}, the model has {expected[0]} of {expected[1]}")


def graph_of(model: DressModel) -> ir.Graph:
    """The embedded source model as IR."""
    return tflite.parse(model.tflite, "<DRESS source model>")
