"""The bootloader protocol codec (host/bootproto.py) against firmware/PROTOCOL.md section 3."""
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codegen.errors import ProtocolError
from host import bootproto as bp

bodies = st.binary(min_size=1, max_size=bp.MAX_BODY_BYTES)
payloads = st.binary(max_size=bp.MAX_PAYLOAD_BYTES)
seqs = st.integers(0, 0xFFFF)


def _decode(data: bytes) -> list[bytes]:
    return bp.SlipDecoder().feed(data)


# ---- SLIP ----------------------------------------------------------------------

def test_slip_escapes_end_and_esc_as_rfc1055_says():
    assert bp.slip_encode(b"\x01\xc0\x02\xdb\x03") == b"\xc0\x01\xdb\xdc\x02\xdb\xdd\x03\xc0"


@given(bodies)
def test_slip_round_trip_and_no_end_inside(body):
    wire = bp.slip_encode(body)
    assert bp.END not in wire[1:-1]
    assert _decode(wire) == [body]


@given(st.lists(bodies, min_size=1, max_size=4), st.integers(1, 64))
def test_slip_decoding_does_not_depend_on_how_bytes_arrive(frames, chunk):
    wire = b"".join(bp.slip_encode(body) for body in frames)
    decoder = bp.SlipDecoder()
    got = [body for i in range(0, len(wire), chunk) for body in decoder.feed(wire[i:i + chunk])]
    assert got == frames


@given(st.binary(max_size=200), bodies)
def test_a_frame_after_line_noise_still_arrives(noise, body):
    """The opening END ends whatever the noise started, so the frame itself is intact."""
    assert _decode(noise + bp.slip_encode(body))[-1] == body


def test_empty_frames_are_ignored():
    assert _decode(b"\xc0\xc0\xc0" + bp.slip_encode(b"x") + b"\xc0") == [b"x"]


def test_a_bad_escape_discards_the_frame_up_to_the_next_end():
    decoder = bp.SlipDecoder()
    assert decoder.feed(b"\xc0ab\xdb\x01cd\xc0" + bp.slip_encode(b"ok")) == [b"ok"]
    assert decoder.discarded == 1


def test_an_overlong_body_is_discarded():
    decoder = bp.SlipDecoder()
    too_long = bp.slip_encode(b"\x55" * (bp.MAX_BODY_BYTES + 1))
    longest = b"\x55" * bp.MAX_BODY_BYTES
    assert decoder.feed(too_long + bp.slip_encode(longest)) == [longest]
    assert decoder.discarded == 1


# ---- frames --------------------------------------------------------------------

def test_frame_layout_is_the_documented_one():
    body = bp.build_frame(bp.Frame(bp.Command.DATA, 0, 0x1234, b"\xaa\xbb"))
    assert body[:6] == bytes((0x03, 0x00, 0x34, 0x12, 0x02, 0x00))
    assert body[6:8] == b"\xaa\xbb"
    assert body[8:] == struct.pack("<I", zlib.crc32(body[:8]))


@given(st.sampled_from(list(bp.Command)), st.integers(0, 255), seqs, payloads)
def test_frame_round_trip(command, status, seq, payload):
    frame = bp.Frame(bp.RESPONSE_BIT | command, status, seq, payload)
    assert bp.parse_frame(bp.build_frame(frame)) == frame
    assert frame.answers(command, seq)
    assert not frame.answers(command, (seq + 1) & 0xFFFF)


@given(payloads, st.data())
def test_any_single_bit_error_is_caught(payload, data):
    """CRC-32 detects every single-bit error; a length error is caught before it."""
    body = bytearray(bp.build_frame(bp.Frame(bp.Command.DATA, 0, 7, payload)))
    bit = data.draw(st.integers(0, len(body) * 8 - 1))
    body[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ProtocolError):
        bp.parse_frame(bytes(body))


def test_short_and_inconsistent_bodies_give_one_line_errors():
    with pytest.raises(ProtocolError, match="frame of 9 bytes is shorter than the 10-byte minimum"):
        bp.parse_frame(b"\0" * 9)
    body = bp.build_frame(bp.Frame(1, 0, 1, b"abc"))
    with pytest.raises(ProtocolError, match="length field says 3 payload bytes, body has 4"):
        bp.parse_frame(body[:6] + b"abcd" + body[-4:])


def test_bad_frame_answer_is_recognised():
    frame = bp.parse_frame(bp.build_frame(bp.Frame(bp.BAD_FRAME_CODE, bp.Status.BAD_FRAME, bp.BAD_FRAME_SEQ)))
    assert frame.is_bad_frame and frame.status_name() == "BAD_FRAME"
    assert bp.Frame(0x83, 42, 1).status_name() == "status 42"


def test_requests_and_responses_on_the_wire():
    wire = bp.encode_request(bp.Command.CRC, 9, bp.crc_payload(0x100, 0x200))
    (body,) = _decode(wire)
    assert bp.parse_frame(body) == bp.Frame(0x05, 0, 9, struct.pack("<II", 0x100, 0x200))
    (body,) = _decode(bp.encode_response(bp.Command.DATA, bp.Status.OK, 9, struct.pack("<I", 0x400)))
    frame = bp.parse_frame(body)
    assert frame.answers(bp.Command.DATA, 9) and bp.u32(frame.payload, "DATA") == 0x400


# ---- payloads ------------------------------------------------------------------

def test_sync_info_round_trip_and_size():
    info = bp.SyncInfo(1, 0x8000, 0x3F8000, 1024, 8192, True, 40676, 0xA9949CB0, "qemu-mps2-an386")
    assert len(info.pack()) == bp.SYNC_PAYLOAD_BYTES == 56
    assert bp.SyncInfo.parse(info.pack()) == info
    with pytest.raises(ProtocolError, match="SYNC answer has 55 payload bytes, expected 56"):
        bp.SyncInfo.parse(info.pack()[:-1])


def test_payload_helpers_are_little_endian():
    assert bp.begin_payload(0x01020304, 0xA1B2C3D4) == bytes.fromhex("04030201d4c3b2a1")
    assert bp.data_payload(0x10, b"xy") == b"\x10\0\0\0xy"
    with pytest.raises(ProtocolError, match="END: expected a u32 payload, got 2 bytes"):
        bp.u32(b"\0\0", "END")
