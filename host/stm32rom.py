"""Flash an STM32 through its ROM bootloader's USART protocol (ST application note AN3155).

For parts strapped to boot from system memory (BOOT0 high), so a board can be
programmed with nothing of ours on it, over the same serial line and with the
same results, progress and errors as the tinysyn bootloader (host/flasher.py).

The line is 8E1. The host sends 0x7F once so the ROM measures the baud rate and
answers ACK (0x79). Every command is its byte and the byte's complement; the
ROM answers ACK or NACK (0x1F) after each step. Addresses go as 4 bytes
big-endian plus their XOR; a write carries N-1, up to 256 data bytes (a
multiple of 4) and the XOR of N-1 and the data. There are no sequence numbers:
a NACK means the step was refused and not carried out, so the whole command is
repeated a bounded number of times; a missing answer leaves the ROM's state
unknown and ends the flash. Verification reads every written byte back.

    with open_port("/dev/ttyACM0", parity="E") as port:
        result = Stm32RomFlasher(port).flash(Path("build/fw/standalone.bin"))
"""

from __future__ import annotations

import time
import zlib
from dataclasses import replace
from enum import IntEnum
from functools import reduce
from pathlib import Path

import serial
from tqdm import tqdm

from codegen.errors import BoardError, BoardTimeoutError, FlashError
from host.flasher import ERASE_SECONDS_PER_PAGE, FlashResult, WireStats
from host.image import as_image
from host.transport import port_name, read_some, write_all

ACK = 0x79
NACK = 0x1F
SYNC = 0x7F


class Command(IntEnum):
    GET = 0x00
    GET_ID = 0x02
    READ_MEMORY = 0x11
    GO = 0x21
    WRITE_MEMORY = 0x31
    EXTENDED_ERASE = 0x44


#: The commands flash() needs from the ROM (older parts have Erase 0x43 instead of 0x44).
REQUIRED_COMMANDS = (Command.READ_MEMORY, Command.GO, Command.WRITE_MEMORY, Command.EXTENDED_ERASE)
#: Most bytes one READ or WRITE MEMORY moves.
MAX_TRANSFER_BYTES = 256
#: WRITE MEMORY takes whole 32-bit words; the last block is padded with erased bytes.
WRITE_UNIT_BYTES = 4
ERASED_BYTE = 0xFF
#: Pages per EXTENDED ERASE command, so each answer comes within a bounded wait.
ERASE_PAGES_PER_COMMAND = 32

#: NUCLEO-L4R5ZI (STM32L4R5ZI): 2 MiB of flash at 0x08000000, 4 KiB pages (dual-bank mode).
DEFAULT_FLASH_BASE = 0x08000000
DEFAULT_FLASH_BYTES = 2 * 1024 * 1024
DEFAULT_PAGE_BYTES = 4096
#: Seconds to wait for each ACK or data byte run.
DEFAULT_TIMEOUT = 1.0
#: Repeats of a NACKed command before the flash fails.
DEFAULT_RETRIES = 3
#: 0x7F bytes sent before giving up on a silent line.
SYNC_ATTEMPTS = 3


def xor(data: bytes) -> int:
    """AN3155's checksum: the XOR of the bytes."""
    return reduce(lambda a, b: a ^ b, data, 0)


def address_bytes(address: int) -> bytes:
    """An address as the ROM takes it: 4 bytes big-endian, then their XOR."""
    raw = address.to_bytes(4, "big")
    return raw + bytes((xor(raw),))


class _Nack(Exception):
    """The ROM refused a step (bad checksum, address or protection); the command did nothing."""


class Stm32RomFlasher:
    """AN3155 over an open 8E1 port (not owned: the caller closes it)."""

    def __init__(self, port: serial.SerialBase, *, flash_base: int = DEFAULT_FLASH_BASE,
                 flash_bytes: int = DEFAULT_FLASH_BYTES, page_bytes: int = DEFAULT_PAGE_BYTES,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES, progress: bool = True):
        self.port = port
        self.flash_base = flash_base
        self.flash_bytes = flash_bytes
        self.page_bytes = page_bytes
        self.timeout = timeout
        self.retries = retries
        self.progress = progress
        self.stats = WireStats()

    # ---- bytes on the line --------------------------------------------------------

    def _send(self, data: bytes) -> None:
        write_all(self.port, data)
        self.stats.tx_bytes += len(data)

    def _receive(self, count: int, timeout: float | None = None) -> bytes:
        """Exactly `count` bytes (never more: what follows belongs to the next step or the
        started application); BoardTimeoutError if they do not come in time."""
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        data = b""
        while len(data) < count and (left := deadline - time.monotonic()) > 0:
            data += read_some(self.port, left, max_bytes=count - len(data))
        self.stats.rx_bytes += len(data)
        if len(data) < count:
            self.stats.timeouts += 1
            raise BoardTimeoutError(f"the STM32 ROM on {port_name(self.port)} sent {len(data)} of {count} "
                                    f"bytes within {wait:g} s")
        return data

    def _ack(self, timeout: float | None = None) -> None:
        answer = self._receive(1, timeout)[0]
        if answer == NACK:
            raise _Nack
        if answer != ACK:
            raise FlashError(f"the STM32 ROM answered 0x{answer:02x}, neither ACK nor NACK")

    def _command(self, command: Command) -> None:
        self._send(bytes((command, command ^ 0xFF)))
        self._ack()

    def _retrying(self, what: str, step):
        """Run `step` (a whole command), repeating it after a NACK; FlashError when retries run out
        or the line fails."""
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            try:
                return step()
            except _Nack:
                self.stats.bad_frames += 1
            except BoardError as err:
                raise FlashError(f"{what}: {err}") from None
        raise FlashError(f"{what}: the STM32 ROM on {port_name(self.port)} refused it (NACK) "
                         f"{self.retries + 1} times")

    # ---- commands -------------------------------------------------------------

    def sync(self) -> None:
        """Send 0x7F until the ROM answers; it NACKs when it already synced in an earlier session."""
        for _ in range(SYNC_ATTEMPTS):
            try:
                self.port.reset_input_buffer()
                self._send(bytes((SYNC,)))
                self._ack()
                return
            except _Nack:
                return
            except BoardTimeoutError:
                continue
            except (BoardError, serial.SerialException, OSError) as err:
                raise FlashError(f"sync: {err}") from None
        raise FlashError(f"no STM32 ROM bootloader answered 0x7F on {port_name(self.port)} "
                         f"({SYNC_ATTEMPTS} attempts; is BOOT0 high and the line 8E1?)")

    def get(self) -> tuple[int, list[int]]:
        """(bootloader version, supported command codes)."""
        def step():
            self._command(Command.GET)
            count = self._receive(1)[0] + 1
            body = self._receive(count)
            self._ack()
            return body[0], list(body[1:])
        return self._retrying("GET", step)

    def get_id(self) -> int:
        """The product ID (e.g. 0x470 for STM32L4R5/S5)."""
        def step():
            self._command(Command.GET_ID)
            count = self._receive(1)[0] + 1
            pid = self._receive(count)
            self._ack()
            return int.from_bytes(pid, "big")
        return self._retrying("GET ID", step)

    def read_memory(self, address: int, length: int) -> bytes:
        """Up to 256 bytes at `address`."""
        if not 1 <= length <= MAX_TRANSFER_BYTES:
            raise ValueError(f"READ MEMORY moves 1..{MAX_TRANSFER_BYTES} bytes, asked {length}")
        what = f"READ MEMORY at 0x{address:08x}"

        def step():
            self._command(Command.READ_MEMORY)
            self._send(address_bytes(address))
            self._ack()
            self._send(bytes((length - 1, (length - 1) ^ 0xFF)))
            self._ack()
            return self._receive(length)
        return self._retrying(what, step)

    def write_memory(self, address: int, data: bytes) -> None:
        """Up to 256 bytes at `address`, padded with 0xFF to whole words."""
        if not 1 <= len(data) <= MAX_TRANSFER_BYTES:
            raise ValueError(f"WRITE MEMORY moves 1..{MAX_TRANSFER_BYTES} bytes, asked {len(data)}")
        data += bytes([ERASED_BYTE]) * (-len(data) % WRITE_UNIT_BYTES)
        body = bytes((len(data) - 1,)) + data
        what = f"WRITE MEMORY at 0x{address:08x}"

        def step():
            self._command(Command.WRITE_MEMORY)
            self._send(address_bytes(address))
            self._ack()
            self._send(body + bytes((xor(body),)))
            self._ack()
        self._retrying(what, step)

    def extended_erase(self, pages: list[int]) -> None:
        """Erase the numbered pages (page n starts at flash_base + n * page_bytes)."""
        body = (len(pages) - 1).to_bytes(2, "big") + b"".join(page.to_bytes(2, "big") for page in pages)
        what = f"EXTENDED ERASE of pages {pages[0]}..{pages[-1]}"

        def step():
            self._command(Command.EXTENDED_ERASE)
            self._send(body + bytes((xor(body),)))
            self._ack(timeout=self.timeout + len(pages) * ERASE_SECONDS_PER_PAGE)
        self._retrying(what, step)

    def go(self, address: int) -> None:
        """Jump to the application whose vector table is at `address`."""
        what = f"GO 0x{address:08x}"

        def step():
            self._command(Command.GO)
            self._send(address_bytes(address))
            self._ack()
        self._retrying(what, step)

    # ---- the whole flash ------------------------------------------------------

    def flash(self, image: bytes | Path | str, boot: bool = True) -> FlashResult:
        """Sync, check the ROM's commands, erase, write, read everything back, GO if `boot`."""
        self.stats = WireStats()
        started = time.monotonic()
        loaded = as_image(image, self.flash_base, self.flash_bytes, area="the flash", hint="")
        self.sync()
        _, commands = self.get()
        missing = [c.name for c in REQUIRED_COMMANDS if c not in commands]
        if missing:
            raise FlashError(f"the STM32 ROM on {port_name(self.port)} lacks {', '.join(missing)}")
        chip = self.get_id()

        data, base = loaded.data, loaded.base
        first = (base - self.flash_base) // self.page_bytes
        last = (base + len(data) - 1 - self.flash_base) // self.page_bytes
        pages = list(range(first, last + 1))
        for start in range(0, len(pages), ERASE_PAGES_PER_COMMAND):
            self.extended_erase(pages[start:start + ERASE_PAGES_PER_COMMAND])

        with self._bar(len(data), "write") as bar:
            for offset in range(0, len(data), MAX_TRANSFER_BYTES):
                chunk = data[offset:offset + MAX_TRANSFER_BYTES]
                self.write_memory(base + offset, chunk)
                bar.update(len(chunk))
        readback = self._read_back(base, data)
        if boot:
            self.go(base)
        return FlashResult("stm32", f"STM32 product ID 0x{chip:03x}", base, len(data), loaded.crc32,
                           zlib.crc32(readback), "reading every byte back", boot,
                           time.monotonic() - started, MAX_TRANSFER_BYTES, replace(self.stats))

    def _read_back(self, base: int, data: bytes) -> bytes:
        """All of the image as the flash holds it; FlashError at the first byte that differs."""
        readback = bytearray()
        with self._bar(len(data), "verify") as bar:
            for offset in range(0, len(data), MAX_TRANSFER_BYTES):
                expected = data[offset:offset + MAX_TRANSFER_BYTES]
                got = self.read_memory(base + offset, len(expected))
                if got != expected:
                    at = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
                    raise FlashError(f"verify: flash at 0x{base + offset + at:08x} reads 0x{got[at]:02x}, "
                                     f"image has 0x{expected[at]:02x}")
                readback += got
                bar.update(len(expected))
        return bytes(readback)

    def _bar(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not self.progress, leave=False)
