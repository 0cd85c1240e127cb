"""Client of the serial apps' command console (firmware/PROTOCOL.md section 4).

Both serial apps (the DUT app and the training app) take ``%``-terminated text
commands and answer with ``m-...`` lines ending in ``m-ready``; errors come as
``e-[...]``. :class:`ConsoleClient` sends a command and collects its reply
within a timeout, resynchronises after stale replies, and decodes the common
reply shapes (``key=value`` fields, hex dumps).
"""

from __future__ import annotations

import os
import re
import time

import serial

from codegen.errors import BoardTimeoutError, ProtocolError
from host.transport import read_some, write_all

#: Longest command the firmware accepts, '%' excluded (EEMBC's limit).
MAX_COMMAND_CHARS = 80
#: Seconds a command may take before the board counts as not answering.
DEFAULT_TIMEOUT = 10.0

_READY = "m-ready"
BRACKET_RE = re.compile(r"^m-([a-z-]+?)-?\[(.*)\]$")


def bracketed(lines: list[str], key: str, where: str, command: str) -> str:
    """The text inside ``m-<key>-[...]`` (or ``m-<key>[...]``) among the reply lines."""
    for line in lines:
        m = BRACKET_RE.match(line)
        if m and m.group(1) == key:
            return m.group(2)
    raise ProtocolError(f"{where}: reply to {command!r} has no m-{key}-[...] line: {lines[:4]}")


class ConsoleClient:
    """Commands of a serial app over an open serial port."""

    def __init__(self, port: serial.SerialBase, where: str = "board", timeout: float = DEFAULT_TIMEOUT):
        self.port = port
        self.where = where
        self.timeout = timeout
        self._pending = b""
        self._sync_count = 0

    def _readline(self, deadline: float, command: str) -> str:
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BoardTimeoutError(f"{self.where}: no reply to {command!r} within the time limit "
                                        f"(got {self._pending[-60:]!r})")
            self._pending += read_some(self.port, min(remaining, 0.5))
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode("ascii", "replace").strip()

    def command(self, text: str, timeout: float | None = None) -> list[str]:
        """Send ``text%`` and return the reply lines before ``m-ready``.

        Raises ProtocolError with the board's message on an ``e-[...]`` line.
        """
        if len(text) > MAX_COMMAND_CHARS or "%" in text:
            raise ValueError(f"not a console command: {text!r}")
        write_all(self.port, text.encode("ascii") + b"%")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        lines: list[str] = []
        errors: list[str] = []
        while True:
            line = self._readline(deadline, text)
            if not line:
                continue
            if line == _READY:
                break
            if line.startswith("e-["):
                errors.append(line[3:].rstrip("]"))
            lines.append(line)
        if errors:
            raise ProtocolError(f"{self.where}: {text!r} failed on the board: {errors[0]}")
        return lines

    def resync(self) -> None:
        """Skip whatever stale replies are in flight (after a timeout, a boot or a reconnect):
        send ``tsn-sync <token>`` with a fresh token and drop every line before its echo."""
        self._sync_count += 1
        token = f"{self._sync_count}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        echo = f"m-tsn-sync-[{token}]"
        write_all(self.port, f"tsn-sync {token}%".encode("ascii"))
        deadline = time.monotonic() + self.timeout
        while self._readline(deadline, "tsn-sync") != echo:
            pass
        while self._readline(deadline, "tsn-sync") != _READY:
            pass

    def fields(self, command: str) -> dict[str, str | int]:
        """A ``m-<command>-[key=value,...]`` reply as a dict, numbers as int."""
        body = bracketed(self.command(command), command, self.where, command)
        info: dict[str, str | int] = {}
        for field in body.split(","):
            key, sep, value = field.partition("=")
            if not sep:
                raise ProtocolError(f"{self.where}: malformed {command} field {field!r}")
            info[key] = int(value) if value.isdigit() else value
        return info

    def hex_payload(self, command: str, header: str, timeout: float | None = None) -> bytes:
        """A reply of ``m-<header>-[..,N]`` (N the byte count, last field) and ``m-*-hex-[..]`` lines."""
        lines = self.command(command, timeout)
        expected = int(bracketed(lines, header, self.where, command).split(",")[-1])
        data = b"".join(bytes.fromhex(BRACKET_RE.match(line).group(2))
                        for line in lines if line.startswith("m-") and "-hex-[" in line)
        if len(data) != expected:
            raise ProtocolError(f"{self.where}: {command!r} sent {len(data)} of {expected} bytes")
        return data
