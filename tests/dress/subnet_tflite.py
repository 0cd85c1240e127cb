"""The oracle's input: a dense .tflite of DRESS sub-net k, built from the file's tables alone.

It edits the source flatbuffer with the schema from the tflite-micro wheel: in each
sampled layer, the weights become the first nnz_k (column, value) pairs of every
row scattered into zeros (written out here, independently of codegen/dress), the
bias becomes sub-net k's, and the filter scales become sub-net k's float32 scales,
from which TFLM derives its own requantization multipliers.
"""
from __future__ import annotations

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

DEPTHWISE_AXIS = 3  # depthwise filters [1, KH, KW, C] are quantized along their last axis


def dense_filters(layer, k: int) -> np.ndarray:
    """Sub-net k's [C, L] filters from the row tables: row r is chunk r % g of channel r // g."""
    s = layer.shape
    table = np.zeros((s.channels, s.chunks * s.row_length), dtype=np.int8)
    for r in range(s.rows):
        for j in range(int(layer.nnz[k])):
            table[r // s.chunks, (r % s.chunks) * s.row_length + int(layer.columns[r, j])] = layer.values[r, j]
    assert not table[:, s.filter_length:].any(), "a pad column holds a nonzero value"
    return table[:, : s.filter_length]


def _buffer(model, data: np.ndarray) -> int:
    b = fb.BufferT()
    b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
    model.buffers.append(b)
    return len(model.buffers) - 1


def subnet_tflite(dress, k: int) -> bytes:
    model = fb.ModelT.InitFromPackedBuf(dress.tflite, 0)
    sg = model.subgraphs[0]
    depthwise = fb.BuiltinOperator.DEPTHWISE_CONV_2D
    for layer in dress.layers:
        op = sg.operators[layer.op_index]
        code = model.operatorCodes[op.opcodeIndex]
        is_depthwise = max(code.builtinCode, code.deprecatedBuiltinCode) == depthwise
        w, b = sg.tensors[op.inputs[1]], sg.tensors[op.inputs[2]]
        table = dense_filters(layer, k)
        shape = tuple(w.shape)
        weights = table.T.reshape(shape) if is_depthwise else table.reshape(shape)
        w.buffer = _buffer(model, weights)
        b.buffer = _buffer(model, layer.bias[k].astype("<i4"))
        scales = [float(s) for s in layer.scale[k]]
        if len(w.quantization.scale) > 1 or len(set(scales)) > 1:
            w.quantization.scale = scales
            w.quantization.zeroPoint = [0] * len(scales)
            w.quantization.quantizedDimension = DEPTHWISE_AXIS if is_depthwise else 0
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
