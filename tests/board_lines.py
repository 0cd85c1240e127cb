"""Raw reply lines of the serial apps' console, without the host client in the way (so a test sees exactly
what the board sends: one error line, then m-ready)."""
from __future__ import annotations

from host.transport import read_some, write_all


def raw_reply(port, command: bytes, timeout=10.0) -> list[str]:
    """Send bytes as they are and collect reply lines up to m-ready."""
    write_all(port, command)
    text = b""
    while not text.endswith(b"m-ready\r\n"):
        chunk = read_some(port, timeout)
        assert chunk, f"no m-ready after {command!r}: {text!r}"
        text += chunk
    return text.decode().split("\r\n")[:-1]
