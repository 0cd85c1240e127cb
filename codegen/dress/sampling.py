"""Row-based unstructured sampling (thesis Algorithm 3.2) with a global sparsity allocation (3.3.2).

Every conv, depthwise and fully connected layer is a table of rows:

- a *filter* is the weights of one output channel, flattened in the layout the
  kernels read: conv ``[Co, KH, KW, Ci]`` gives rows of KH*KW*Ci, FC ``[N, K]`` rows
  of K, depthwise ``[1, KH, KW, C]`` one row per output channel of its KH*KW taps
  (a depthwise channel has no other weights: that row is its whole filter, and
  its sum is the one accumulator the kernel keeps for that channel);
- with ``row=filter`` a row is a filter; with ``row=C`` (e.g. 256, so a column index
  fits one byte) a filter of length L is cut into g = ceil(L / C) chunks of equal
  length N = ceil(L / g) <= C. When g * N > L the filter is padded at its end with
  g * N - L (< g) *pad columns* of value 0, which rank after every real weight;
  a pad column is selected only when a row keeps more than its real weights.

Importance is |w|; within a row every weight shares its channel's scale, so the
order is that of |q|, ties broken by the lower column index (a stable sort).
Sub-net k keeps the first nnz_k entries of every row: its mask is a prefix of
sub-net k-1's, so the masks nest by construction.

The number nnz_k of a layer comes from one global sort per sparsity (3.3.2): the
(1 - s_k) * I weights of largest magnitude over all I weights of all sampled layers
are counted per layer, and that count is spread evenly over the layer's rows,
rounded half up, at least 1. The thesis compares real values (|q| * scale,
``allocation="real"``); in a quantized model that favours whichever layer's inputs
were quantized to the smallest range (ResNet-8's first conv kept 1 weight per row of
27 at 50%), so the default, ``output``, weighs |q| by the real requantization
multiplier instead (see :func:`weight_unit`); ``uniform`` gives every layer s_k.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .. import ir
from ..errors import InputError

MAX_ROW = 1 << 16  # a u16 column index addresses at most 65536 columns
MAX_SUBNETS = 255
ALLOCATIONS = ("output", "real", "uniform")  # see weight_unit; uniform: every layer at s_k


def parse_row(row: str | int) -> int:
    """``filter`` -> 0; a chunk length (e.g. ``256``) -> that length."""
    if row == "filter":
        return 0
    try:
        chunk = int(row)
    except (TypeError, ValueError):
        raise InputError(f"row {row!r}: give 'filter' or a chunk length such as 256") from None
    if not 2 <= chunk <= MAX_ROW:
        raise InputError(f"row chunk {chunk}: must be in 2..{MAX_ROW} (a column index is at most 16 bits)")
    return chunk


def check_sparsities(sparsities) -> tuple[float, ...]:
    """Sparsities as floats, each in (0, 1), strictly increasing; InputError otherwise."""
    s = tuple(float(v) for v in sparsities)
    if not 1 <= len(s) <= MAX_SUBNETS:
        raise InputError(f"need 1 to {MAX_SUBNETS} sparsities, got {len(s)}")
    bad = [v for v in s if not 0.0 < v < 1.0]
    if bad:
        raise InputError(f"sparsity {bad[0]:g} is outside (0, 1)")
    if any(b <= a for a, b in itertools.pairwise(s)):
        raise InputError(f"sparsities {', '.join(f'{v:g}' for v in s)} are not strictly increasing")
    return s


def parse_sparsities(text: str) -> tuple[float, ...]:
    """``0.5,0.75,0.9`` as checked sparsities; InputError (one line) otherwise."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"sparsities {text!r}: give comma-separated numbers such as 0.5,0.75,0.9") from None
    return check_sparsities(values)


def sampled_ops(graph: ir.Graph) -> list[int]:
    """Indices of the layers DRESS samples: every conv, depthwise and fully connected layer."""
    return [i for i, op in enumerate(graph.ops) if isinstance(op, (ir.Convolution, ir.FullyConnected))]


def filters(op: ir.Op, weights: np.ndarray) -> np.ndarray:
    """A layer's weights as [C, L]: one filter per output channel, in the kernel's order."""
    if isinstance(op, ir.DepthwiseConv2D):
        return weights.reshape(-1, weights.shape[-1]).T
    return weights.reshape(weights.shape[0], -1)


def unfilters(op: ir.Op, table: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`filters`."""
    if isinstance(op, ir.DepthwiseConv2D):
        return np.ascontiguousarray(table.T).reshape(shape)
    return table.reshape(shape)


@dataclass(frozen=True)
class RowShape:
    """How a layer's [C, L] filters become G = C * chunks rows of N columns."""

    channels: int  # C
    filter_length: int  # L
    chunks: int  # rows per filter
    row_length: int  # N

    @classmethod
    def of(cls, channels: int, filter_length: int, chunk: int) -> RowShape:
        chunks = -(-filter_length // chunk) if chunk else 1
        row_length = -(-filter_length // chunks)
        if row_length > MAX_ROW:
            raise InputError(f"rows of {row_length} weights do not fit a 16-bit column index; "
                             f"use a chunked row (e.g. --row 256)")
        return cls(channels, filter_length, chunks, row_length)

    @property
    def rows(self) -> int:
        return self.channels * self.chunks

    @property
    def pad(self) -> int:
        return self.chunks * self.row_length - self.filter_length

    def to_rows(self, table: np.ndarray, fill) -> np.ndarray:
        """[C, L] -> [G, N], pad columns set to ``fill``."""
        padded = np.full((self.channels, self.chunks * self.row_length), fill, dtype=table.dtype)
        padded[:, : self.filter_length] = table
        return padded.reshape(self.rows, self.row_length)

    def from_rows(self, rows: np.ndarray) -> np.ndarray:
        """[G, N] -> [C, L], pad columns dropped."""
        return rows.reshape(self.channels, -1)[:, : self.filter_length]


@dataclass
class LayerSample:
    """One layer's DRESS tables before re-calibration."""

    op_index: int
    shape: RowShape
    nnz: np.ndarray  # int [K], non-increasing, in 1..N
    columns: np.ndarray  # int [G, nnz_1], importance order
    values: np.ndarray  # int8 [G, nnz_1]


def importance_order(magnitudes: np.ndarray) -> np.ndarray:
    """Column order of every row by descending magnitude, ties to the lower column (a stable sort)."""
    return np.argsort(-magnitudes, axis=1, kind="stable")


def weight_unit(graph: ir.Graph, op: ir.Op, mode: str) -> np.ndarray:
    """What one weight step weighs in the global sort, per output channel.

    ``real``: its real value (the filter scale), the thesis' choice for float networks.
    ``output``: the output steps one input step moves through it (filter scale * input
    scale / output scale, the real requantization multiplier), which does not depend
    on the range each layer's activations were quantized to.
    """
    x, w = graph.op_inputs(op)[:2]
    y = graph.op_output(op)
    scale = np.broadcast_to(w.quant.scale.astype(np.float64), (y.shape[-1],))
    return scale if mode == "real" else scale * float(x.scale) / float(y.scale)


def global_kept(magnitudes: list[np.ndarray], s: float) -> np.ndarray:
    """How many of each layer's weights are among the (1 - s) * I largest of all I (one global sort)."""
    owner = np.concatenate([np.full(m.size, n) for n, m in enumerate(magnitudes)])
    order = np.argsort(-np.concatenate([m.ravel() for m in magnitudes]), kind="stable")
    return np.bincount(owner[order[: int(np.floor((1.0 - s) * owner.size + 0.5))]], minlength=len(magnitudes))


def spread(kept: int, shape: RowShape) -> int:
    """A layer's kept count as nnz per row: spread evenly, rounded half up, at least 1, at most a row."""
    return min(max(int(np.floor(kept / shape.rows + 0.5)), 1), shape.row_length)


def nnz_per_row(kept_by_sparsity, shapes: list[RowShape]) -> np.ndarray:
    """nnz per row, [layers, K], from each sparsity's kept count per layer (see :func:`spread`)."""
    return np.array([[spread(kept, shape) for kept, shape in zip(counts, shapes)] for counts in kept_by_sparsity],
                    dtype=np.int64).reshape(-1, len(shapes)).T


def _kept(graph: ir.Graph, ops: list[int], s: float, mode: str) -> np.ndarray:
    """How many weights of each layer the global sort keeps at sparsity ``s``."""
    tables = [np.abs(filters(graph.ops[i], graph.op_inputs(graph.ops[i])[1].data).astype(np.float64)) for i in ops]
    if mode == "uniform":
        return np.array([np.floor((1.0 - s) * t.size + 0.5) for t in tables])
    return global_kept([t * weight_unit(graph, graph.ops[i], mode)[:, None] for i, t in zip(ops, tables)], s)


def allocate(graph: ir.Graph, ops: list[int], shapes: list[RowShape], sparsities, mode: str = "output") -> np.ndarray:
    """nnz per row, [layers, K]: each layer's kept count spread over its rows."""
    if mode not in ALLOCATIONS:
        raise InputError(f"allocation {mode!r}: choose one of {', '.join(ALLOCATIONS)}")
    return nnz_per_row([_kept(graph, ops, s, mode) for s in sparsities], shapes)


def sample(graph: ir.Graph, sparsities, row: str | int = "filter", allocation: str = "output",
           nnz: np.ndarray | None = None) -> list[LayerSample]:
    """DRESS tables of every sampled layer for ``sparsities`` (InputError on a bad request);
    ``nnz`` [layers, K]: nnz per row as chosen elsewhere (by DRESS training) instead of ``allocation``."""
    sparsities = check_sparsities(sparsities)
    chunk = parse_row(row)
    ops = sampled_ops(graph)
    tables = [filters(graph.ops[i], graph.op_inputs(graph.ops[i])[1].data) for i in ops]
    shapes = [RowShape.of(t.shape[0], t.shape[1], chunk) for t in tables]
    if nnz is None:
        nnz = allocate(graph, ops, shapes, sparsities, allocation)
    layers = []
    for n, (index, table, shape) in enumerate(zip(ops, tables, shapes)):
        rows = shape.to_rows(table, 0)
        # pad columns get magnitude -1, so they rank after every real weight (zeros included)
        order = importance_order(shape.to_rows(np.abs(table.astype(np.int16)), -1))[:, : nnz[n, 0]]
        values = np.take_along_axis(rows, order, axis=1).astype(np.int8)
        layers.append(LayerSample(index, shape, nnz[n], order, values))
    return layers


def filter_positions(layer: LayerSample) -> np.ndarray:
    """[G, nnz_1]: each table entry's column within its filter (row r is chunk r % g of channel r // g);
    a position >= L is a pad column."""
    s = layer.shape
    return (np.arange(s.rows) % s.chunks)[:, None] * s.row_length + layer.columns


def masked_filters(layer: LayerSample, k: int) -> np.ndarray:
    """Sub-net k's [C, L] filters: the first nnz_k entries of every row, zeros elsewhere."""
    rows = np.zeros((layer.shape.rows, layer.shape.row_length), dtype=np.int8)
    keep = layer.nnz[k]
    np.put_along_axis(rows, layer.columns[:, :keep].astype(np.int64), layer.values[:, :keep], axis=1)
    return layer.shape.from_rows(rows)
