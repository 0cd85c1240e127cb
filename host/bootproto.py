"""The bootloader protocol's bytes (firmware/PROTOCOL.md section 3): SLIP framing,
frame bodies with their CRC-32, command and status codes, the SYNC answer.

Pure functions and data, no I/O, so the codec is tested on its own (with
hypothesis) and the flasher only decides *when* to send what.

    wire = encode_request(Command.DATA, seq=7, payload=data_payload(0, block))
    for body in SlipDecoder().feed(received):
        frame = parse_frame(body)            # ProtocolError if the CRC or length is off
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from codegen.errors import ProtocolError

# ---- SLIP (RFC 1055) ----------------------------------------------------------

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

#: Longest frame body the board accepts (header + payload + CRC); longer ones are discarded.
MAX_BODY_BYTES = 1048
#: Longest payload of one frame.
MAX_PAYLOAD_BYTES = 1032
#: Most image bytes in one DATA request (its payload is u32 offset + data).
MAX_BLOCK_BYTES = 1024

_ESCAPES = {END: bytes((ESC, ESC_END)), ESC: bytes((ESC, ESC_ESC))}
_UNESCAPES = {ESC_END: END, ESC_ESC: ESC}


def slip_encode(body: bytes) -> bytes:
    """END, the body with END and ESC escaped, END."""
    return bytes((END,)) + body.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + bytes((END,))


class SlipDecoder:
    """Incremental SLIP decoder that survives line noise.

    Feed it whatever arrived; it returns the complete bodies seen so far. Empty
    frames are ignored; a body with a bad escape or longer than `max_body` is
    discarded up to the next END, exactly as the board does, and counted in
    `discarded`. Bytes before the first END are kept as the start of a body, so a
    frame whose opening END was lost still arrives (its CRC decides).
    """

    def __init__(self, max_body: int = MAX_BODY_BYTES):
        self.max_body = max_body
        self.discarded = 0
        self._body = bytearray()
        self._escaped = False
        self._bad = False

    def feed(self, data: bytes) -> list[bytes]:
        bodies = []
        for byte in data:
            if byte == END:
                if self._bad:
                    self.discarded += 1
                elif self._body:
                    bodies.append(bytes(self._body))
                self._body.clear()
                self._escaped = self._bad = False
            elif self._bad:
                continue
            elif self._escaped:
                self._escaped = False
                if byte not in _UNESCAPES:
                    self._bad = True
                else:
                    self._append(_UNESCAPES[byte])
            elif byte == ESC:
                self._escaped = True
            else:
                self._append(byte)
        return bodies

    def _append(self, byte: int) -> None:
        if len(self._body) >= self.max_body:
            self._bad = True
        else:
            self._body.append(byte)


# ---- frames -------------------------------------------------------------------

class Command(IntEnum):
    SYNC = 0x01
    BEGIN = 0x02
    DATA = 0x03
    END = 0x04
    CRC = 0x05
    BOOT = 0x06


class Status(IntEnum):
    OK = 0
    BAD_FRAME = 1
    UNKNOWN_COMMAND = 2
    BAD_LENGTH = 3
    TOO_LARGE = 4
    BAD_OFFSET = 5
    NOT_STARTED = 6
    INCOMPLETE = 7
    VERIFY_FAILED = 8
    NO_IMAGE = 9
    FLASH_ERROR = 10


#: A response's code is the request's with this bit set.
RESPONSE_BIT = 0x80
#: code and seq of the board's answer to a frame it could not check.
BAD_FRAME_CODE = 0xFF
BAD_FRAME_SEQ = 0xFFFF

_HEADER = struct.Struct("<BBHH")
_CRC = struct.Struct("<I")
MIN_BODY_BYTES = _HEADER.size + _CRC.size


@dataclass(frozen=True)
class Frame:
    """One frame body: a request (status 0) or a response (code | 0x80)."""

    code: int
    status: int
    seq: int
    payload: bytes = b""

    @property
    def is_bad_frame(self) -> bool:
        return self.code == BAD_FRAME_CODE and self.status == Status.BAD_FRAME

    def answers(self, command: int, seq: int) -> bool:
        """Is this the response to request (command, seq)?"""
        return self.code == RESPONSE_BIT | command and self.seq == seq

    def status_name(self) -> str:
        try:
            return Status(self.status).name
        except ValueError:
            return f"status {self.status}"


def build_frame(frame: Frame) -> bytes:
    """The unescaped body: header, payload, CRC-32 of both."""
    if len(frame.payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {len(frame.payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    head = _HEADER.pack(frame.code, frame.status, frame.seq, len(frame.payload)) + frame.payload
    return head + _CRC.pack(zlib.crc32(head))


def parse_frame(body: bytes) -> Frame:
    """Check a body's length field and CRC; ProtocolError if either is off."""
    if len(body) < MIN_BODY_BYTES:
        raise ProtocolError(f"frame of {len(body)} bytes is shorter than the {MIN_BODY_BYTES}-byte minimum")
    code, status, seq, length = _HEADER.unpack_from(body)
    if len(body) != MIN_BODY_BYTES + length:
        raise ProtocolError(f"frame length field says {length} payload bytes, body has {len(body) - MIN_BODY_BYTES}")
    (crc,) = _CRC.unpack_from(body, len(body) - _CRC.size)
    if crc != zlib.crc32(body[:-_CRC.size]):
        raise ProtocolError(f"frame CRC 0x{crc:08x} does not match its body (seq {seq})")
    return Frame(code, status, seq, bytes(body[_HEADER.size:-_CRC.size]))


def encode_request(command: int, seq: int, payload: bytes = b"") -> bytes:
    """A request ready for the wire: built, CRC'd and SLIP-framed."""
    return slip_encode(build_frame(Frame(command, 0, seq, payload)))


def encode_response(command: int, status: int, seq: int, payload: bytes = b"") -> bytes:
    """A response as the board sends it (for test peers and the proxy's tests)."""
    return slip_encode(build_frame(Frame(RESPONSE_BIT | command, status, seq, payload)))


# ---- payloads -----------------------------------------------------------------

_U32 = struct.Struct("<I")
_U32_PAIR = struct.Struct("<II")


def u32(payload: bytes, what: str) -> int:
    """The payload's leading u32; ProtocolError naming `what` if it is too short."""
    if len(payload) < _U32.size:
        raise ProtocolError(f"{what}: expected a u32 payload, got {len(payload)} bytes")
    return _U32.unpack_from(payload)[0]


def begin_payload(image_size: int, image_crc32: int) -> bytes:
    return _U32_PAIR.pack(image_size, image_crc32)


def data_payload(offset: int, data: bytes) -> bytes:
    return _U32.pack(offset) + data


def crc_payload(offset: int, length: int) -> bytes:
    return _U32_PAIR.pack(offset, length)


BOARD_NAME_BYTES = 24
_SYNC = struct.Struct(f"<8I{BOARD_NAME_BYTES}s")
SYNC_PAYLOAD_BYTES = _SYNC.size  # 56
PROTOCOL_VERSION = 1


@dataclass(frozen=True)
class SyncInfo:
    """What the bootloader says about itself and its current image in answer to SYNC."""

    protocol_version: int
    app_base: int
    app_max_bytes: int
    max_block_bytes: int
    erase_page_bytes: int
    image_valid: bool
    image_size: int
    image_crc32: int
    board: str

    @classmethod
    def parse(cls, payload: bytes) -> SyncInfo:
        if len(payload) != SYNC_PAYLOAD_BYTES:
            raise ProtocolError(f"SYNC answer has {len(payload)} payload bytes, expected {SYNC_PAYLOAD_BYTES}")
        *numbers, board = _SYNC.unpack(payload)
        version, base, max_bytes, block, page, valid, size, crc = numbers
        return cls(version, base, max_bytes, block, page, bool(valid), size, crc,
                   board.split(b"\0", 1)[0].decode("ascii", "replace"))

    def pack(self) -> bytes:
        """The SYNC payload (for test peers)."""
        return _SYNC.pack(self.protocol_version, self.app_base, self.app_max_bytes, self.max_block_bytes,
                          self.erase_page_bytes, int(self.image_valid), self.image_size, self.image_crc32,
                          self.board.encode("ascii"))
