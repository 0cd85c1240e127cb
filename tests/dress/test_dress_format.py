"""The DRESS CSR file: byte layout as FORMAT.md documents it, round trip, atomic write, one-line errors."""
import struct
import zlib

import numpy as np
import pytest
from conftest import model_path

from codegen.dress import format as dress_format
from codegen.dress import oneshot
from codegen.errors import ModelError


@pytest.fixture(scope="module", params=["filter", "256", "100"])
def model(request):
    """One-shot DRESS of ResNet-8 (rows of up to 576: u16 indices with rows=filter, u8 in chunks)."""
    source = model_path("pretrainedResnet_quant").read_bytes()
    return oneshot.one_shot(source, (0.5, 0.75, 0.9), request.param, recalibrate="none")


def test_layout_matches_format_md(model):
    """Walk the bytes with FORMAT.md's offsets (not the reader) and find the model's tables."""
    data = dress_format.to_bytes(model)
    assert data[:4] == b"DRES"
    version, k, layers, row = struct.unpack_from("<HHHI", data, 4)
    assert (version, k, layers, row) == (1, 3, len(model.layers), model.row)
    assert struct.unpack_from("<3d", data, 14) == model.sparsities
    (tflite_bytes,) = struct.unpack_from("<I", data, 14 + 8 * k)
    at = 18 + 8 * k
    for layer in model.layers:
        op, width, reserved, c, length, g, n = struct.unpack_from("<HBBIIII", data, at)
        assert (op, reserved, c, length, g, n) == (layer.op_index, 0, layer.shape.channels,
                                                    layer.shape.filter_length, layer.shape.rows,
                                                    layer.shape.row_length)
        assert width == (1 if n <= 256 else 2)
        nnz = struct.unpack_from(f"<{k}I", data, at + 20)
        assert list(nnz) == layer.nnz.tolist()
        at += 20 + 4 * k
        columns = np.frombuffer(data, f"<u{width}", g * nnz[0], at).reshape(g, nnz[0])
        at += columns.nbytes
        values = np.frombuffer(data, np.int8, g * nnz[0], at).reshape(g, nnz[0])
        at += values.nbytes
        assert np.array_equal(columns, layer.columns) and np.array_equal(values, layer.values)
        for s in range(k):
            for name, dtype in (("bias", "<i4"), ("scale", "<f4"), ("multiplier", "<i4"), ("shift", "<i4")):
                assert np.array_equal(np.frombuffer(data, dtype, c, at), getattr(layer, name)[s]), name
                at += 4 * c
    assert data[at:at + tflite_bytes] == model.tflite
    assert struct.unpack_from("<I", data, at + tflite_bytes)[0] == zlib.crc32(data[:at + tflite_bytes])
    assert len(data) == at + tflite_bytes + 4


def test_round_trip(model, tmp_path):
    path = tmp_path / "m.dress"
    dress_format.write(path, model)
    back = dress_format.read(path)
    assert dress_format.to_bytes(back) == path.read_bytes() == dress_format.to_bytes(model)
    assert (back.sparsities, back.row) == (model.sparsities, model.row)


def test_index_type_follows_the_row_length(model):
    widths = {dress_format.index_bytes(layer.shape.row_length) for layer in model.layers}
    assert widths == ({1, 2} if model.row == 0 else {1})  # ResNet-8's 3x3x32 and 3x3x64 filters need u16


def test_a_failed_write_leaves_the_old_file(model, tmp_path, monkeypatch):
    path = tmp_path / "m.dress"
    path.write_bytes(b"old")
    monkeypatch.setattr(dress_format, "to_bytes", lambda m: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        dress_format.write(path, model)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["m.dress"]


def one_line_error(data: bytes) -> str:
    with pytest.raises(ModelError) as err:
        dress_format.from_bytes(data, "m.dress")
    message = str(err.value)
    assert "\n" not in message and message.startswith("m.dress: byte offset ")
    return message


def test_every_truncation_is_a_one_line_error_at_or_before_the_cut(model):
    data = dress_format.to_bytes(model)
    for cut in list(range(64)) + list(range(64, len(data), 997)) + [len(data) - 1]:
        message = one_line_error(data[:cut])
        offset = int(message.split("byte offset ")[1].split(":")[0])
        assert offset <= cut and "truncated" in message, message


def test_a_flipped_byte_fails_the_crc(model):
    data = bytearray(dress_format.to_bytes(model))
    data[-5] ^= 0x01  # the last byte of the embedded model: nothing but the CRC can tell
    message = one_line_error(bytes(data))
    assert "CRC-32 mismatch" in message and f"byte offset {len(data) - 4}:" in message


def test_an_impossible_column_index_is_named_by_offset(model):
    data = bytearray(dress_format.to_bytes(model))
    first_column = 18 + 8 * 3 + 20 + 4 * 3
    data[first_column] = 0xFF
    assert f"byte offset {first_column}: layer 0: a row's column indices" in one_line_error(bytes(data))


@pytest.mark.parametrize("offset, value, needle", [
    (0, b"X", "not a DRESS file"),
    (4, b"\x02", "version 2"),
    (14, struct.pack("<d", 0.8), "strictly increasing"),
])
def test_bad_header_fields_are_named_by_offset(model, offset, value, needle):
    data = bytearray(dress_format.to_bytes(model))
    data[offset:offset + len(value)] = value
    message = one_line_error(bytes(data))
    assert needle in message and f"byte offset {offset}:" in message, message


def test_trailing_bytes_are_refused(model):
    assert "after the CRC-32 trailer" in one_line_error(dress_format.to_bytes(model) + b"\0")
