"""Flash an application image through the tinysyn serial bootloader.

The host side of firmware/PROTOCOL.md section 3: one request at a time, each
answered by the response with its `seq` (stale ones are skipped), resent after
a timeout or a BAD_FRAME answer a bounded number of times. Resending is safe
because the board answers a repeated (code, seq) from its kept response
instead of erasing or writing again.

    with open_port("socket://127.0.0.1:41643") as port:
        result = Flasher(port).flash(Path("build/fw/bench.elf"))
    result.wire_efficiency, result.bytes_per_second

A flash succeeds only if END (the board's read-back after writing) and a
separate CRC request over the whole image both return zlib.crc32 of the image
sent; anything else raises FlashError naming the step and the offset.

Limits, all Flasher options: each answer is awaited DEFAULT_TIMEOUT (1 s; BEGIN
gets ERASE_SECONDS_PER_PAGE more per erased page, END and CRC
READBACK_SECONDS_PER_BYTE per byte read back); a request is resent at most
DEFAULT_RETRIES (5) times, at once after a BAD_FRAME or damaged answer, else
after the timeout. SYNC is tried SYNC_TRIES_BEFORE_APP (2) times before the
host assumes an application holds the line and sends it tsn-boot%.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import serial
from tqdm import tqdm

from codegen.errors import BoardError, FlashError, ProtocolError
from host import bootproto as bp
from host.image import Image, as_image
from host.transport import port_name, read_some, write_all

#: Seconds to wait for the answer to one request before resending it.
DEFAULT_TIMEOUT = 1.0
#: Resends of one request (after a timeout or BAD_FRAME) before the flash fails.
DEFAULT_RETRIES = 5
#: Extra BEGIN wait per erased page: an STM32L4 page erase takes up to ~25 ms; twice that.
ERASE_SECONDS_PER_PAGE = 0.05
#: Extra END/CRC wait per byte read back and checksummed (a table CRC at >= 1 MB/s).
READBACK_SECONDS_PER_BYTE = 1e-6
#: What a running tinysyn application takes as "reset into the bootloader" (PROTOCOL.md section 4).
ENTER_BOOTLOADER = b"tsn-boot%"
#: Ends whatever our SYNC frames left in the application's command buffer first.
COMMAND_END = b"%"
#: The application's reply to it; its last line before the reset is m-ready.
APP_BOOT_REPLY = b"m-tsn-boot"
APP_READY = b"m-ready"
#: SYNC attempts before concluding an application, not the bootloader, holds the line.
SYNC_TRIES_BEFORE_APP = 2
#: Seconds to let the application answer tsn-boot% and reset.
APP_RESET_SECONDS = 0.5
#: Flash programming granularity: DATA blocks other than the last are multiples of it.
PROGRAM_UNIT_BYTES = 8
#: Sequence numbers cycle through 0..0xFFFE (0xFFFF is BAD_FRAME's).
_SEQ_MODULUS = bp.BAD_FRAME_SEQ


@dataclass
class WireStats:
    """Bytes and events on the line since the counters were last reset."""

    tx_bytes: int = 0
    rx_bytes: int = 0
    requests: int = 0
    retries: int = 0           #: resends, for any reason below
    timeouts: int = 0          #: waits that ended without an answer
    bad_frames: int = 0        #: refusals: BAD_FRAME (a damaged request) or an AN3155 NACK
    garbled: int = 0           #: frames that reached the host damaged (bad escape, length or CRC)
    stale: int = 0             #: intact answers to an earlier request, skipped


@dataclass(frozen=True)
class FlashResult:
    """A verified flash: the board read `verify_crc32` back from its flash, equal to `image_crc32`."""

    protocol: str          #: "tinysyn" (this module) or "stm32" (host/stm32rom.py)
    board: str             #: what the board calls itself (SYNC's board name, the STM32 product ID)
    address: int           #: where the image starts
    image_bytes: int
    image_crc32: int
    verify_crc32: int
    verified_by: str       #: which read-backs agreed, for the user
    booted: bool
    elapsed_s: float
    block_bytes: int       #: image bytes per write request
    wire: WireStats = field(default_factory=WireStats)

    @property
    def payload_bytes(self) -> int:
        return self.image_bytes

    @property
    def wire_bytes(self) -> int:
        """Everything on the line, both directions: frames, escapes, resends and answers."""
        return self.wire.tx_bytes + self.wire.rx_bytes

    @property
    def wire_efficiency(self) -> float:
        return self.payload_bytes / self.wire_bytes if self.wire_bytes else 0.0

    @property
    def bytes_per_second(self) -> float:
        return self.payload_bytes / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> str:
        return (f"{self.payload_bytes} bytes in {self.elapsed_s:.2f} s ({self.bytes_per_second / 1024:.1f} KiB/s), "
                f"{self.wire_bytes} bytes on the wire (efficiency {self.wire_efficiency:.3f}), "
                f"{self.wire.retries} retries")


class Flasher:
    """The bootloader protocol over an open port (not owned: the caller closes it).

    timeout: seconds to wait for each answer (BEGIN, END and CRC get more, scaled
    by what the board erases or reads back); retries: resends per request;
    block_bytes: image bytes per DATA request (default: the board's maximum);
    progress: show a tqdm bar on stderr.
    """

    def __init__(self, port: serial.SerialBase, *, timeout: float = DEFAULT_TIMEOUT,
                 retries: int = DEFAULT_RETRIES, block_bytes: int | None = None, progress: bool = True):
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if block_bytes is not None and not PROGRAM_UNIT_BYTES <= block_bytes <= bp.MAX_BLOCK_BYTES:
            raise ValueError(f"block_bytes must be in {PROGRAM_UNIT_BYTES}..{bp.MAX_BLOCK_BYTES}, got {block_bytes}")
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.block_bytes = block_bytes
        self.progress = progress
        self.stats = WireStats()
        self._seq = 0
        self._decoder = bp.SlipDecoder()

    # ---- one request --------------------------------------------------------------

    def request(self, command: bp.Command, payload: bytes = b"", *, what: str,
                timeout: float | None = None, retries: int | None = None) -> bp.Frame:
        """Send one request until its answer arrives; FlashError naming `what` when retries run out.

        timeout and retries default to the flasher's."""
        self._seq = (self._seq + 1) % _SEQ_MODULUS
        wire = bp.encode_request(command, self._seq, payload)
        wait = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        self.stats.requests += 1
        for attempt in range(retries + 1):
            if attempt:
                self.stats.retries += 1
            try:
                self._send(wire)
                reply = self._await(command, self._seq, wait)
            except BoardError as err:
                raise FlashError(f"{what}: {err}") from None
            if isinstance(reply, bp.Frame):
                return reply
        raise FlashError(f"{what}: gave up after {retries + 1} attempts, the last {reply}")

    def _send(self, data: bytes) -> None:
        write_all(self.port, data)
        self.stats.tx_bytes += len(data)

    def _await(self, command: int, seq: int, timeout: float) -> bp.Frame | str:
        """The answer to (command, seq), or why to resend: a timeout, BAD_FRAME, or a damaged
        frame (most likely the answer itself; resending at once is safe and beats a timeout)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            # byte by byte: what follows the answer (an application booting) stays unread
            data = read_some(self.port, left, max_bytes=1)
            self.stats.rx_bytes += len(data)
            discarded = self._decoder.discarded
            bodies = self._decoder.feed(data)
            damaged = self._decoder.discarded - discarded
            for body in bodies:
                try:
                    frame = bp.parse_frame(body)
                except ProtocolError:
                    damaged += 1
                    continue
                if frame.is_bad_frame:
                    self.stats.bad_frames += 1
                    return "answered BAD_FRAME (the request arrived damaged)"
                if frame.answers(command, seq):
                    return frame
                self.stats.stale += 1
            if damaged:
                self.stats.garbled += damaged
                return "got a damaged answer"
        self.stats.timeouts += 1
        return f"got no answer within {timeout:g} s"

    def _ok(self, command: bp.Command, payload: bytes = b"", *, what: str, timeout: float | None = None,
            retries: int | None = None) -> bytes:
        """Request and insist on status OK; FlashError with the board's status (and its u32) otherwise."""
        reply = self.request(command, payload, what=what, timeout=timeout, retries=retries)
        if reply.status != bp.Status.OK:
            detail = f" (0x{bp.u32(reply.payload, what):08x})" if len(reply.payload) >= 4 else ""
            raise FlashError(f"{what} refused by the board: {reply.status_name()}{detail}")
        return reply.payload

    # ---- commands -------------------------------------------------------------

    def sync(self) -> bp.SyncInfo:
        """Reach the bootloader: SYNC; if nothing answers, ask a running application to
        reset into the bootloader (tsn-boot%) and SYNC again."""
        try:
            self.port.reset_input_buffer()
        except (serial.SerialException, OSError):
            pass  # nothing buffered to drop on this kind of port; the first read reports a dead line
        try:
            payload = self._ok(bp.Command.SYNC, what="SYNC", retries=min(self.retries, SYNC_TRIES_BEFORE_APP - 1))
        except FlashError as first:
            try:
                self._enter_bootloader()
                payload = self._ok(bp.Command.SYNC, what="SYNC")
            except FlashError as second:
                raise FlashError(f"no bootloader on {port_name(self.port)}: {first}; "
                                 f"after {ENTER_BOOTLOADER.decode()}: {second}") from None
        info = bp.SyncInfo.parse(payload)
        if info.protocol_version != bp.PROTOCOL_VERSION:
            raise FlashError(f"bootloader on {port_name(self.port)} speaks protocol {info.protocol_version}, "
                             f"this host {bp.PROTOCOL_VERSION}")
        return info

    def _enter_bootloader(self) -> None:
        try:
            self._send(COMMAND_END + ENTER_BOOTLOADER)
            deadline = time.monotonic() + APP_RESET_SECONDS
            seen = b""
            while APP_READY not in seen.partition(APP_BOOT_REPLY)[2] and (left := deadline - time.monotonic()) > 0:
                data = read_some(self.port, left)
                self.stats.rx_bytes += len(data)
                seen += data
        except BoardError as err:
            raise FlashError(str(err)) from None

    def crc(self, offset: int, length: int) -> int:
        """CRC-32 of `length` bytes at `offset` in the application area, as the board reads them."""
        payload = self._ok(bp.Command.CRC, bp.crc_payload(offset, length), what=f"CRC of 0x{offset:x}+{length}",
                           timeout=self._readback_timeout(length))
        return bp.u32(payload, "CRC")

    def boot(self) -> None:
        """Start the application (the board answers first, then jumps)."""
        self._ok(bp.Command.BOOT, what="BOOT")

    def _readback_timeout(self, size: int) -> float:
        return self.timeout + size * READBACK_SECONDS_PER_BYTE

    # ---- the whole flash ------------------------------------------------------

    def flash(self, image: bytes | Path | str, boot: bool = True) -> FlashResult:
        """SYNC, BEGIN, DATA..., END, CRC, and BOOT if `boot`; FlashResult only on a verified image.

        `image` is raw bytes, or a path to a .bin or .elf (see host/image.py) placed at
        the board's application area.
        """
        self.stats = WireStats()
        started = time.monotonic()
        info = self.sync()
        loaded = as_image(image, info.app_base, info.app_max_bytes)
        block = self._block_bytes(info)
        size, crc = len(loaded.data), loaded.crc32

        pages = math.ceil(size / info.erase_page_bytes) + 1 if info.erase_page_bytes else 1  # + the record page
        self._ok(bp.Command.BEGIN, bp.begin_payload(size, crc), what=f"BEGIN ({size} bytes)",
                 timeout=self.timeout + pages * ERASE_SECONDS_PER_PAGE)
        self._send_data(loaded, block)

        end_crc = bp.u32(self._ok(bp.Command.END, what="END", timeout=self._readback_timeout(size)), "END")
        if end_crc != crc:
            raise FlashError(f"END: the board read back CRC 0x{end_crc:08x}, image is 0x{crc:08x}")
        verify_crc = self.crc(0, size)
        if verify_crc != crc:
            raise FlashError(f"CRC over the written image reads 0x{verify_crc:08x}, image is 0x{crc:08x}")
        if boot:
            self.boot()
        return FlashResult(protocol="tinysyn", board=info.board, address=info.app_base, image_bytes=size,
                           image_crc32=crc, verify_crc32=verify_crc, verified_by="the board's END and CRC read-backs",
                           booted=boot, elapsed_s=time.monotonic() - started, block_bytes=block,
                           wire=replace(self.stats))

    def _block_bytes(self, info: bp.SyncInfo) -> int:
        limit = min(info.max_block_bytes, bp.MAX_BLOCK_BYTES)
        block = min(self.block_bytes or limit, limit)
        return block - block % PROGRAM_UNIT_BYTES

    def _send_data(self, image: Image, block: int) -> None:
        data = image.data
        with tqdm(total=len(data), unit="B", unit_scale=True, desc="flash", disable=not self.progress,
                  leave=False) as bar:
            for index, offset in enumerate(range(0, len(data), block)):
                chunk = data[offset:offset + block]
                what = f"DATA block {index} at offset 0x{offset:x}"
                payload = self._ok(bp.Command.DATA, bp.data_payload(offset, chunk), what=what)
                next_offset = bp.u32(payload, what)
                if next_offset != offset + len(chunk):
                    raise FlashError(f"{what}: board is at offset 0x{next_offset:x}, "
                                     f"expected 0x{offset + len(chunk):x}")
                bar.update(len(chunk))
