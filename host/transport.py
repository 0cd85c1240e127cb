"""Serial ports by pyserial URL, with tinysyn's one-line errors.

Every board tool opens its line here, so a USB virtual COM port (/dev/ttyACM0),
a pty, QEMU's TCP serial (socket://127.0.0.1:PORT) and pyserial's loop:// all
behave the same, and every failure is a BoardError naming the port instead of a
pyserial traceback.

    port = open_port("socket://127.0.0.1:41643")
    write_all(port, b"name%")
    reply = read_some(port, wait=1.0)     # whatever arrived, b"" after 1 s of silence
"""

from __future__ import annotations

import serial

from codegen.errors import BoardError, BoardTimeoutError, PortError

DEFAULT_BAUDRATE = 115200
#: The blocking read timeout of a freshly opened port (seconds); read_some() sets its own.
DEFAULT_TIMEOUT = 1.0
#: Most bytes one read_some() returns.
READ_CHUNK_BYTES = 4096
#: Parities by their one-letter name: "N" for tinysyn's 8N1, "E" for AN3155's 8E1.
PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN}


def _reason(err: BaseException) -> str:
    """The innermost reason of a (chained) pyserial error, lower-case: "connection refused"."""
    while (err.__cause__ or err.__context__) is not None:
        err = err.__cause__ or err.__context__
    text = err.strerror if isinstance(err, OSError) and err.strerror else str(err).rsplit("] ", 1)[-1]
    return text[:1].lower() + text[1:]


def port_name(port: serial.SerialBase) -> str:
    """The URL or device path the port was opened with."""
    return str(port.port)


def open_port(url: str, baudrate: int = DEFAULT_BAUDRATE, timeout: float = DEFAULT_TIMEOUT,
              parity: str = "N") -> serial.SerialBase:
    """Open `url` (device path, pty or any pyserial URL) as 8 data bits, 1 stop bit.

    parity "N" (tinysyn's bootloader and applications) or "E" (the STM32 ROM
    bootloader, AN3155). URL handlers without a line (socket://, loop://) ignore
    baud rate and parity. PortError names the port and the OS reason.
    """
    if parity not in PARITIES:
        raise PortError(f"cannot open {url}: parity must be one of {', '.join(PARITIES)}, got {parity!r}")
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, parity=PARITIES[parity],
                                     bytesize=serial.EIGHTBITS, stopbits=serial.STOPBITS_ONE)
    except (serial.SerialException, OSError, ValueError) as err:
        raise PortError(f"cannot open {url}: {_reason(err)}") from None


def write_all(port: serial.SerialBase, data: bytes) -> None:
    """Send `data` and wait until it has left; BoardError if the line is gone, BoardTimeoutError
    if the port has a write_timeout and the other end took nothing for that long."""
    try:
        port.write(data)
        port.flush()
    except serial.SerialTimeoutException:
        raise BoardTimeoutError(f"{port_name(port)} took no bytes for {port.write_timeout:g} s") from None
    except (serial.SerialException, OSError) as err:
        raise BoardError(f"lost the connection to {port_name(port)} while sending: {_reason(err)}") from None


def read_some(port: serial.SerialBase, wait: float, max_bytes: int = READ_CHUNK_BYTES) -> bytes:
    """Up to `max_bytes` of what has arrived: waits up to `wait` seconds for the first
    byte, then takes only what is already buffered, so a caller with a deadline never
    blocks past it. A protocol reader that must leave the bytes after its answer to
    the next reader (an application starting to talk) asks for exactly what it
    still needs. b"" means silence; BoardError if the line is gone.
    """
    data = bytearray()
    try:
        if port.timeout != wait:
            port.timeout = max(wait, 0.0)
        data += port.read(1)
        while data and len(data) < max_bytes and (waiting := port.in_waiting):
            data += port.read(min(waiting, max_bytes - len(data)))
    except (serial.SerialException, OSError) as err:
        if not data:  # hand over what came before the line went; the next call raises
            raise BoardError(f"lost the connection to {port_name(port)} while receiving: {_reason(err)}") from None
    return bytes(data)
