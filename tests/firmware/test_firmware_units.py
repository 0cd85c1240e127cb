"""Board-independent firmware modules compiled for the host and driven through ctypes:
the CRC-32 against zlib, the bootloader's SLIP framing and frame checks, and the console's
number parsing."""
from __future__ import annotations

import ctypes
import random
import shutil
import subprocess
import zlib

import pytest

from host.firmware_build import COMMON_DIR, FIRMWARE_DIR

BOOT_DIR = FIRMWARE_DIR / "bootloader"
CONSOLE_DIR = FIRMWARE_DIR / "lib" / "console"
HOST_CC = shutil.which("cc")

pytestmark = pytest.mark.skipif(HOST_CC is None, reason="no host C compiler")

#: Stands in for the board: slip_send() writes to a buffer the test reads.
STUB_BOARD_H = """
#include <stdint.h>
#define BOARD_NAME "host"
void board_uart_putc(uint8_t byte);
"""
STUB_BOARD_C = """
#include <stddef.h>
#include "board.h"
uint8_t tx[4096];
size_t tx_length;
void board_uart_putc(uint8_t byte) { if (tx_length < sizeof(tx)) tx[tx_length++] = byte; }
"""


class FrameRequest(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("seq", ctypes.c_uint16), ("length", ctypes.c_uint16),
                ("payload", ctypes.POINTER(ctypes.c_uint8))]


class SlipDecoder(ctypes.Structure):
    _fields_ = [("buffer", ctypes.c_void_p), ("capacity", ctypes.c_size_t), ("length", ctypes.c_size_t),
                ("escaped", ctypes.c_uint8), ("invalid", ctypes.c_uint8)]


def shared_library(work, sources, include_dirs) -> ctypes.CDLL:
    out = work / "libunits.so"
    subprocess.run([HOST_CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-fPIC", "-shared",
                    *(f"-I{d}" for d in include_dirs), *map(str, sources), "-o", str(out)],
                   check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(out))


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    work = tmp_path_factory.mktemp("units")
    (work / "board.h").write_text(STUB_BOARD_H)
    (work / "board_stub.c").write_text(STUB_BOARD_C)
    sources = [COMMON_DIR / "crc32.c", BOOT_DIR / "slip.c", BOOT_DIR / "frame.c", work / "board_stub.c"]
    library = shared_library(work, sources, [work, COMMON_DIR, BOOT_DIR])
    library.crc32_update.restype = ctypes.c_uint32
    library.crc32_update.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
    library.slip_feed.restype = ctypes.c_size_t
    library.slip_feed.argtypes = [ctypes.POINTER(SlipDecoder), ctypes.c_uint8]
    library.frame_parse.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(FrameRequest)]
    return library


def test_crc32_is_zlibs_and_chains(lib):
    rng = random.Random(5)
    for length in (0, 1, 7, 8, 255, 1024, 4099):
        data = rng.randbytes(length)
        assert lib.crc32_update(0, data, length) == zlib.crc32(data)
        cut = rng.randint(0, length)
        head = lib.crc32_update(0, data[:cut], cut)
        assert lib.crc32_update(head, data[cut:], length - cut) == zlib.crc32(data)


def decode(lib, wire: bytes, capacity: int = 1048) -> list[bytes]:
    buffer = ctypes.create_string_buffer(capacity)
    decoder = SlipDecoder()
    lib.slip_init(ctypes.byref(decoder), buffer, capacity)
    bodies = []
    for byte in wire:
        length = lib.slip_feed(ctypes.byref(decoder), byte)
        if length:
            bodies.append(buffer.raw[:length])
    return bodies


def transmitted(lib, send, *args) -> bytes:
    """What `send(*args)` wrote to the stub UART."""
    ctypes.c_size_t.in_dll(lib, "tx_length").value = 0
    send(*args)
    length = ctypes.c_size_t.in_dll(lib, "tx_length").value
    return bytes((ctypes.c_uint8 * length).in_dll(lib, "tx"))


def sent(lib, body: bytes) -> bytes:
    return transmitted(lib, lib.slip_send, body, len(body))


def test_slip_round_trip_escapes_end_and_esc(lib):
    body = bytes([0x01, 0xC0, 0xDB, 0xDC, 0xDD, 0xC0, 0xC0, 0xDB])
    wire = sent(lib, body)
    assert wire == b"\xc0\x01\xdb\xdc\xdb\xdd\xdc\xdd\xdb\xdc\xdb\xdc\xdb\xdd\xc0"
    assert decode(lib, wire) == [body]


def test_slip_drops_empty_bad_escape_and_overlong_bodies(lib):
    wire = (b"\xc0\xc0"                   # empty frames: ignored
            + b"\xc0ab\xdb\x01cd\xc0"     # bad escape: discarded up to the next END
            + b"\xc0ab\xdb\xc0"           # END right after ESC: discarded too
            + b"\xc0" + b"x" * 9 + b"\xc0"  # one longer than the capacity below
            + b"\xc0" + b"y" * 8 + b"\xc0"  # exactly the capacity: kept
            + b"lost-opener\xc0")         # bytes before the first END start a body
    assert decode(lib, wire, capacity=8) == [b"y" * 8]
    assert decode(lib, b"lost-opener\xc0") == [b"lost-opener"]


def request_body(code: int, seq: int, payload: bytes = b"") -> bytes:
    header = bytes([code, 0]) + seq.to_bytes(2, "little") + len(payload).to_bytes(2, "little") + payload
    return header + zlib.crc32(header).to_bytes(4, "little")


def test_frame_parse_checks_length_and_crc(lib):
    request = FrameRequest()
    body = request_body(0x03, 0x1234, b"\x00\x00\x00\x00data")
    assert lib.frame_parse(body, len(body), ctypes.byref(request)) == 1
    assert (request.code, request.seq, request.length) == (0x03, 0x1234, 8)
    assert bytes(request.payload[:8]) == b"\x00\x00\x00\x00data"

    damaged = bytearray(body)
    damaged[7] ^= 0x40
    assert lib.frame_parse(bytes(damaged), len(damaged), ctypes.byref(request)) == 0
    assert lib.frame_parse(body[:-1], len(body) - 1, ctypes.byref(request)) == 0  # length field disagrees
    assert lib.frame_parse(body[:9], 9, ctypes.byref(request)) == 0                 # shorter than header + CRC
    too_long = request_body(0x03, 1, bytes(1033))                                  # payload over 1,032 bytes
    assert lib.frame_parse(too_long, len(too_long), ctypes.byref(request)) == 0
    longest = request_body(0x03, 1, bytes(1032))
    assert lib.frame_parse(longest, len(longest), ctypes.byref(request)) == 1


def test_bad_frame_answer_is_well_formed(lib):
    [body] = decode(lib, transmitted(lib, lib.frame_send_bad_frame))
    header = bytes([0xFF, 1, 0xFF, 0xFF, 0, 0])  # code 0xFF, BAD_FRAME, seq 0xFFFF, no payload
    assert body == header + zlib.crc32(header).to_bytes(4, "little")


@pytest.fixture(scope="module")
def console_parse(tmp_path_factory):
    """firmware/lib/console/parse.c alone; its error replies go nowhere."""
    work = tmp_path_factory.mktemp("console")
    (work / "reply_stub.c").write_text("void reply_error(const char *text);\n"
                                       "void reply_error(const char *text) { (void)text; }\n")
    library = shared_library(work, [CONSOLE_DIR / "parse.c", work / "reply_stub.c"], [CONSOLE_DIR, COMMON_DIR])
    library.console_parse_u32.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_uint32,
                                          ctypes.POINTER(ctypes.c_uint32)]
    return library


@pytest.mark.parametrize("maximum", [0, 2, 5, 9, 12, 99, 255, 4294967295])
def test_console_parse_u32_accepts_exactly_the_numbers_up_to_its_maximum(console_parse, maximum):
    numbers = {0, 1, 2, 3, 5, 6, 9, 10, 12, 13, 15, 99, 100, 255, 256, 4294967295, 4294967296, 99999999999,
               maximum, maximum + 1}
    for number in sorted(numbers):
        text = ctypes.c_char_p(str(number).encode())
        value = ctypes.c_uint32(7)
        status = console_parse.console_parse_u32(ctypes.byref(text), maximum, ctypes.byref(value))
        if number <= maximum:
            assert (status, value.value) == (0, number), number
        else:
            assert status == -1, f"{number} above {maximum} accepted as {value.value}"
