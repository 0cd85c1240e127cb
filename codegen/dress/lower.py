"""DRESS -> C: the dense pipeline for every layer DRESS did not sample, sparse kernels for the others.

A sampled layer's constants are the DRESS file's tables as they are (values and column
indices of the densest sub-net, every sub-net reading a prefix of each row) plus, per
sub-net, the folded bias and the requantization rows ([K * C], indexed at run time by
``<prefix>_set_subnet``); each sub-net's nnz goes into its constant filter struct (``sparse["nnz"]``).
The arithmetic is exactly sub-net k's in codegen/dress/reference.py.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import ir
from ..emit.c import render, write_files
from ..errors import UnsupportedError
from ..frontends import tflite
from ..passes.lower import Layer, lower
from ..passes.plan import plan_memory
from ..pipeline import Program
from ..ref.params import INT8_MAX, INT8_MIN, Window
from .format import DressLayer, DressModel, index_bytes
from .sampling import filter_positions

SPARSE_KERNELS = {ir.Conv2D: "tsn_sparse_convolve_s8", ir.DepthwiseConv2D: "tsn_sparse_depthwise_conv_s8",
                  ir.FullyConnected: "tsn_sparse_fully_connected_s8"}


#: the sparse kernels' DSP paths run this many output pixels at a time (TSN_NN_SPARSE_LANES)
SPARSE_LANES = 4
WORD_BYTES = 4
#: the sparse convolution packs two pixels per word: SPARSE_LANES / 2 words per filter position (TSN_NN_SPARSE_PAIRS)
SPARSE_PAIRS = 2
#: words per output channel of the sparse convolution's channel records (TSN_NN_SPARSE_CHANNEL_WORDS)
SPARSE_CHANNEL_WORDS = 9


def _window_extent(out: int, stride: int, k: int, dilation: int) -> int:
    """Input rows (columns) that out windows of k taps span (tsn_nn_window_extent)."""
    return (out - 1) * stride + (k - 1) * dilation + 1 if out > 0 else 0


#: int32 words of the depthwise scratch per filter position: its weight, its plane offset, a tap's offset and value
DEPTHWISE_TABLE_WORDS = 4
#: input channels the depthwise DSP path copies into planes at once (TSN_NN_DW_PLANES)
DEPTHWISE_PLANES = 4


def sparse_depthwise_buffer_size(window: Window, in_ch: int, out_h: int, out_w: int) -> int:
    """Bytes tsn_sparse_depthwise_conv_s8_get_buffer_size() returns: the DSP path's DEPTHWISE_PLANES padded planes
    of an input channel (the rows and columns the output windows span, a row's columns in stride_w phases, each
    plane rounded up to whole words) and its tap tables, or the portable path's k_h * k_w * in_ch byte patch if
    larger. Reserved whatever the target, so the host and Cortex-M builds share one arena plan."""
    plane_w = _window_extent(out_w, window.stride_w, window.kernel_w, window.dilation_w)
    row_bytes = -(-plane_w // window.stride_w) * window.stride_w
    plane = _window_extent(out_h, window.stride_h, window.kernel_h, window.dilation_h) * row_bytes
    positions = window.kernel_h * window.kernel_w
    tables = DEPTHWISE_TABLE_WORDS * positions * WORD_BYTES
    return max(DEPTHWISE_PLANES * -(-plane // WORD_BYTES) * WORD_BYTES + tables, positions * in_ch)


def sparse_conv_buffer_size(win: Window, input_shape: tuple, filter_shape: tuple, output_shape: tuple) -> int:
    """Bytes tsn_sparse_convolve_s8_get_buffer_size() returns (the same rule, so one arena plan fits every target):
    the channel records, then the packed patches of a whole output row when its pixels are whole blocks of
    SPARSE_LANES, else of one block and, when a tap falls outside the input, the input padded to every tap's extent."""
    out_ch, k_h, k_w, in_ch = filter_shape
    _, in_h, in_w, _ = input_shape
    _, out_h, out_w, _ = output_shape
    patch = SPARSE_PAIRS * k_h * k_w * in_ch * WORD_BYTES
    records = SPARSE_CHANNEL_WORDS * out_ch * WORD_BYTES
    if out_w % SPARSE_LANES == 0:
        return records + out_w // SPARSE_LANES * patch
    extent_h = _window_extent(out_h, win.stride_h, k_h, win.dilation_h)
    extent_w = _window_extent(out_w, win.stride_w, k_w, win.dilation_w)
    copy = win.pad_h > 0 or win.pad_w > 0 or extent_h > in_h or extent_w > in_w
    return records + patch + (extent_h * extent_w * in_ch if copy else 0)


def folded_bias(dl: DressLayer, input_offset: int, where: str) -> np.ndarray:
    """[K, C]: sub-net k's bias + input_offset * the sum of its kept values of each channel (exact in int64)."""
    g = dl.shape.rows // dl.shape.channels
    values = dl.values.astype(np.int64)
    kept = np.stack([values[:, :n].sum(axis=1).reshape(-1, g).sum(axis=1) for n in dl.nnz])
    folded = dl.bias.astype(np.int64) + input_offset * kept
    if np.any(np.abs(folded) >= 2**31):
        raise UnsupportedError(f"{where}: folded bias overflows int32")
    return folded.astype(np.int32)


#: TSN_NN_Q31_HALF: the fused requantization takes multipliers above it
Q31_HALF = 1 << 30
#: the fused requantization's right shifts (its 64-bit sum stays below 2^63)
FUSED_RIGHT_SHIFTS = range(1, 24)


#: integer words of a unit of the FC kernel's generated table (tsn_nn_sparse_fc_unit, before its row pointers):
#: the next unit's folded bias, then this unit's multiplier, rounding word and shift (the first unit's bias is
#: tsn_nn_sparse_fc_fused.bias)
FUSED_WORDS = 4
#: the FC kernel's requantization doubles the accumulator (SMMLAR), so it takes magnitudes below this
FUSED_ACC_BOUND = 1 << 30
#: entries per step of the sparse kernels' unrolled loops (TSN_NN_SPARSE_UNROLL)
SPARSE_UNROLL = 4
#: steps per pass of the FC kernel's unrolled row (TSN_NN_SPARSE_FC_STEPS)
FC_PASS_STEPS = 8
#: the TBB index that leaves the FC kernel's asm loop (TSN_NN_SPARSE_FC_EXIT)
FC_EXIT = FC_PASS_STEPS + 1


def fc_fast_path(nnz: int) -> dict:
    """Where the FC kernel's asm loop (one per column width, rows of one pass or several and nnz % SPARSE_UNROLL)
    enters a row of nnz >= SPARSE_UNROLL entries, as tsn_nn_sparse_fc_fused takes it: the TBB index (the steps of
    the row's first, partial pass; FC_PASS_STEPS for one whole pass, entered past the moves to the next pass; 0 for
    whole passes only), the entry its cursor starts at in every row (the end of that first pass, its entries
    counted back from there) and the passes."""
    steps, rest = divmod(nnz, SPARSE_UNROLL)
    passes = -(-steps // FC_PASS_STEPS)
    one_pass = passes == 1
    entry = FC_PASS_STEPS if one_pass and steps % FC_PASS_STEPS == 0 else steps % FC_PASS_STEPS
    return {"one_pass": int(one_pass), "rest": rest, "entry": entry, "start": entry * SPARSE_UNROLL,
            "passes": passes}


def fused_requant(bias: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, output_offset: int,
                  magnitude: np.ndarray) -> np.ndarray | None:
    """[C, FUSED_WORDS] int32: the FC kernel's unit words (per channel the next one's folded bias, 0 past the last,
    its multiplier m, rounding word h and right shift rs), or None when some channel does not take that form.
    magnitude: per channel the sum of |value| of its kept entries.

    The kernel computes (SMMLAR(2 acc, m, h + (2 acc >> 31)) >> rs) where the reference rounds twice
    (tsn_nn_requantize_s8: r = (acc m + 2^30) >> 31 to nearest, then r / 2^rs ties away from zero, + the output
    offset). For m > 2^30, r < 0 exactly when acc < 0, so the reference is
    floor((acc m + 2^30 + 2^(30 + rs) - [acc < 0] 2^31) / 2^(31 + rs)) + offset; doubled, that is
    floor((2 acc m + 2^31 + (h - [acc < 0]) 2^32) / 2^(32 + rs)) with h = offset 2^rs + 2^(rs - 1): SMMLAR's
    rounding constant is the 2^31 and its accumulate word h - [acc < 0]. Exact while 2 acc fits int32: the folded
    bias plus 128 times the magnitude stays below FUSED_ACC_BOUND."""
    rs = -shift.astype(np.int64)
    reach = np.abs(bias.astype(np.int64)) + 128 * magnitude.astype(np.int64)
    if np.any(multiplier <= Q31_HALF) or np.any(rs < FUSED_RIGHT_SHIFTS.start) \
            or np.any(rs >= FUSED_RIGHT_SHIFTS.stop) or np.any(reach >= FUSED_ACC_BOUND):
        return None
    h = (output_offset << rs) + (1 << (rs - 1))
    next_bias = np.append(bias[1:], 0).astype(np.int64)
    return np.stack([next_bias, multiplier.astype(np.int64), h, rs], axis=1).astype(np.int32)


def fc_units(path: dict, words: np.ndarray, bias: int, row_stride: int) -> dict:
    """A sub-net's fast path for the model template: path (fc_fast_path), the first unit's bias and per unit the
    TBB index the loop enters the next unit's row at (FC_EXIT past the last), its words and where in the next row
    that is (the first row past the last: a valid address nothing reads)."""
    units = len(words)
    return {**path, "bias": bias,
            "units": [{"entry": path["entry"] if u + 1 < units else FC_EXIT, "words": [int(w) for w in row],
                       "next": (u + 1) % units * row_stride + path["start"]} for u, row in enumerate(words)]}


def kernel_columns(dl: DressLayer) -> np.ndarray:
    """Column indices for the kernels: a pad column (value 0, past the filter's end) points at column 0 of its
    row instead, so no kernel reads past its patch; its product stays 0."""
    s = dl.shape
    pad = filter_positions(dl) >= s.filter_length
    assert not np.any(dl.values[pad]), "pad columns hold 0"
    return np.where(pad, 0, dl.columns).astype(np.uint8 if index_bytes(s.row_length) == 1 else np.uint16)


def sparse_layer(graph: ir.Graph, dense: Layer, dl: DressLayer) -> Layer:
    op, p, s = dense.op, dense.params, dl.shape
    where = f"{graph.source}: layer {dense.index} ({op.OP})"
    consts = {"values": dl.values.astype(np.int8), "columns": kernel_columns(dl),
              "bias": folded_bias(dl, p.input_offset, where).ravel(),
              "multiplier": dl.multiplier.astype(np.int32).ravel(), "shift": dl.shift.astype(np.int32).ravel()}
    geometry = {"channels": s.channels, "rows_per_filter": s.rows // s.channels, "row_length": s.row_length,
                "row_stride": dl.values.shape[1], "u8": index_bytes(s.row_length) == 1,
                "nnz": [int(n) for n in dl.nnz], "fused": [None] * len(dl.nnz)}
    if isinstance(op, ir.FullyConnected) and (p.act_min, p.act_max) == (INT8_MIN, INT8_MAX) \
            and geometry["rows_per_filter"] == 1:
        # the FC kernel's fast path (one row per filter, a whole step of SPARSE_UNROLL entries, the full int8
        # range) reads these words and entry constants instead of deriving them per unit and call
        magnitudes = [np.abs(dl.values[:, :n].astype(np.int64)).sum(axis=1) for n in dl.nnz]
        biases = consts["bias"].reshape(len(dl.nnz), -1)
        tables = [fused_requant(biases[k], dl.multiplier[k], dl.shift[k], p.output_offset, magnitudes[k])
                  if n >= SPARSE_UNROLL else None for k, n in enumerate(dl.nnz)]
        geometry["fused"] = [fc_units(fc_fast_path(n), t, int(biases[k][0]), geometry["row_stride"])
                             if t is not None else None for k, (n, t) in enumerate(zip(geometry["nnz"], tables))]
    scratch = 0
    if isinstance(op, ir.Convolution):
        w = graph.tensor(op.inputs[1]).shape
        x = graph.tensor(op.inputs[0]).shape
        y = graph.tensor(op.outputs[0]).shape
        if isinstance(op, ir.Conv2D):
            scratch = sparse_conv_buffer_size(p.window, x, w, y)
        else:
            scratch = sparse_depthwise_buffer_size(p.window, x[-1], y[1], y[2])
    return replace(dense, kernel=SPARSE_KERNELS[type(op)], consts=consts, scratch_bytes=scratch, sparse=geometry)


def compile_dress(model: DressModel, prefix: str | None = None, source: str = "dress_model") -> Program:
    """The Program of a DRESS model: dense layers as ``compile_graph`` lowers them, sampled layers sparse."""
    graph = tflite.parse(model.tflite, source)  # its name, from ``source``, is the default prefix
    graph.validate()
    layers = lower(graph)
    for dl in model.layers:
        layers[dl.op_index] = sparse_layer(graph, layers[dl.op_index], dl)
    return Program(graph, layers, plan_memory(graph, layers), prefix or graph.name, tuple(model.sparsities))


def write_c(model: DressModel, out_dir: Path, target: str = "host", prefix: str | None = None,
            source: str = "dress_model") -> tuple[Program, list[Path]]:
    """Generate the C of a DRESS model into ``out_dir`` (atomically, as ``tinysyn gen`` does for a .tflite)."""
    program = compile_dress(model, prefix, source)
    return program, write_files(render(program, target), out_dir)


def sparse_table_bytes(program: Program) -> int:
    """Bytes of the sparse weight tables (values and column indices) the generated C stores for all sub-nets."""
    return sum(layer.consts[name].nbytes for layer in program.layers if layer.sparse
               for name in ("values", "columns"))
