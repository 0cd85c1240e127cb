"""The target side of ST's AN3155 USART bootloader protocol, in Python, behind a TCP port.

It stands in for an STM32's ROM bootloader because no STM32 is available where
these tests run: host/stm32rom.py is tested against this peer, written from the
application note (sync 0x7F -> ACK; command + complement; addresses with their
XOR; NACK on any bad checksum, complement, address or length, after which the
ROM waits for a new command). Its flash behaves like NOR flash: erasing sets
bytes to 0xFF, programming can only clear bits, so writing without erasing
shows up in the read-back.

    with An3155Peer() as peer:
        port = open_port(peer.url, parity="E")

TCP rather than a pty: Linux ptys refuse even parity (tcsetattr EINVAL), while
pyserial's socket:// takes the 8E1 settings and ignores them, as a USB bridge
on the far side of the cable would handle them.
"""
from __future__ import annotations

import select
import socket
import threading
from functools import reduce

ACK, NACK, SYNC = 0x79, 0x1F, 0x7F
GET, GET_ID, READ_MEMORY, GO, WRITE_MEMORY, EXTENDED_ERASE = 0x00, 0x02, 0x11, 0x21, 0x31, 0x44
#: Bootloader version 3.1 and its commands, as a GET answer lists them.
VERSION = 0x31
COMMANDS = (GET, 0x01, GET_ID, READ_MEMORY, GO, WRITE_MEMORY, EXTENDED_ERASE)
STM32L4R5_PID = 0x470
_POLL_SECONDS = 0.05


class _Stopped(Exception):
    pass


def _xor(data: bytes) -> int:
    return reduce(lambda a, b: a ^ b, data, 0)


class An3155Peer:
    """An STM32 ROM bootloader serving one connection at a time at `.url`.

    nack_writes: NACK the data phase of the first n WRITE MEMORY commands (a
    transient line error); stuck_zero: flash addresses whose bit 0 reads 0
    whatever is written (a worn cell) - the host's read-back must catch it;
    silent: never answer (no ROM on the line).
    """

    def __init__(self, flash_base: int = 0x08000000, flash_bytes: int = 64 * 1024, page_bytes: int = 4096,
                 nack_writes: int = 0, stuck_zero: tuple[int, ...] = (), silent: bool = False):
        self.flash_base, self.page_bytes = flash_base, page_bytes
        self.flash = bytearray(b"\xff" * flash_bytes)
        self.nack_writes = nack_writes
        self.stuck_zero = stuck_zero
        self.silent = silent
        self.synced = False
        self.go_address: int | None = None
        self.erased_pages: list[int] = []
        self.nacks_sent = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._listener.getsockname()[1]}"
        self._conn: socket.socket | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="an3155-peer", daemon=True)

    def __enter__(self) -> An3155Peer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()

    # ---- the line -------------------------------------------------------------

    def _read(self, count: int) -> bytes:
        """`count` bytes from the host; _Stopped when the test ends, ConnectionError when the host hangs up."""
        data = b""
        while len(data) < count:
            if self._stop.is_set():
                raise _Stopped
            ready, _, _ = select.select([self._conn], [], [], _POLL_SECONDS)
            if ready:
                chunk = self._conn.recv(count - len(data))
                if not chunk:
                    raise ConnectionError("host hung up")
                data += chunk
        return data

    def _send(self, data: bytes) -> None:
        self._conn.sendall(data)

    def _nack(self) -> None:
        self.nacks_sent += 1
        self._send(bytes((NACK,)))

    def _address(self) -> int | None:
        """4 address bytes + XOR; None (after a NACK) if the checksum is off."""
        raw = self._read(5)
        if _xor(raw[:4]) != raw[4]:
            self._nack()
            return None
        return int.from_bytes(raw[:4], "big")

    def _in_flash(self, address: int, length: int) -> bool:
        return self.flash_base <= address and address + length <= self.flash_base + len(self.flash)

    # ---- the ROM --------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener], [], [], _POLL_SECONDS)
            if not ready:
                continue
            self._conn, _ = self._listener.accept()
            self._conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a UART does not batch bytes
            try:
                self._session()
            except ConnectionError:
                pass
            except _Stopped:
                return
            finally:
                self._conn.close()

    def _session(self) -> None:
        while True:
            byte = self._read(1)[0]
            if self.silent:
                continue
            if byte == SYNC:
                # first 0x7F: baud rate detected, ACK; later ones are no command: NACK
                self._send(bytes((NACK if self.synced else ACK,)))
                self.synced = True
                continue
            if not self.synced:
                continue
            complement = self._read(1)[0]
            handler = self._handlers().get(byte)
            if complement != byte ^ 0xFF or handler is None:
                self._nack()
                continue
            self._send(bytes((ACK,)))
            handler()

    def _handlers(self):
        return {GET: self._get, GET_ID: self._get_id, READ_MEMORY: self._read_memory, GO: self._go,
                WRITE_MEMORY: self._write_memory, EXTENDED_ERASE: self._extended_erase}

    def _get(self) -> None:
        self._send(bytes((len(COMMANDS), VERSION, *COMMANDS, ACK)))

    def _get_id(self) -> None:
        self._send(bytes((1,)) + STM32L4R5_PID.to_bytes(2, "big") + bytes((ACK,)))

    def _read_memory(self) -> None:
        address = self._address()
        if address is None:
            return
        self._send(bytes((ACK,)))
        n, complement = self._read(2)
        if complement != n ^ 0xFF or not self._in_flash(address, n + 1):
            self._nack()
            return
        self._send(bytes((ACK,)))
        start = address - self.flash_base
        self._send(bytes(self.flash[start:start + n + 1]))

    def _go(self) -> None:
        address = self._address()
        if address is None:
            return
        self.go_address = address
        self._send(bytes((ACK,)))

    def _write_memory(self) -> None:
        address = self._address()
        if address is None:
            return
        self._send(bytes((ACK,)))
        n = self._read(1)[0]
        data = self._read(n + 1)
        checksum = self._read(1)[0]
        if self.nack_writes > 0:
            self.nack_writes -= 1
            self._nack()
            return
        if checksum != _xor(bytes((n,)) + data) or (n + 1) % 4 or not self._in_flash(address, n + 1):
            self._nack()
            return
        start = address - self.flash_base
        for i, value in enumerate(data):
            self.flash[start + i] &= value  # programming clears bits only
        for stuck in self.stuck_zero:
            if self._in_flash(stuck, 1):
                self.flash[stuck - self.flash_base] &= 0xFE
        self._send(bytes((ACK,)))

    def _extended_erase(self) -> None:
        head = self._read(2)
        count = int.from_bytes(head, "big") + 1
        body = self._read(2 * count)
        checksum = self._read(1)[0]
        pages = [int.from_bytes(body[i:i + 2], "big") for i in range(0, len(body), 2)]
        last_page = len(self.flash) // self.page_bytes - 1
        if checksum != _xor(head + body) or any(page > last_page for page in pages):
            self._nack()
            return
        for page in pages:
            self.flash[page * self.page_bytes:(page + 1) * self.page_bytes] = b"\xff" * self.page_bytes
        self.erased_pages += pages
        self._send(bytes((ACK,)))
