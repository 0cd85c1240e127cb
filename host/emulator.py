"""A QEMU board whose UART0 is a serial line the host opens like a real board's.

host/qemu.py runs firmware to its semihosting exit with the UART on stdio; here
QEMU keeps running and UART0 becomes a TCP server or a pty, so the flasher and
the DUT tools talk to the emulator exactly as to a board behind a USB virtual
COM port. The port is QEMU's choice (port 0), read back from its banner, so
parallel tests never collide on fixed ports.

    with Emulator(Path("build/boot/bootloader.elf")) as emu:
        port = open_port(emu.url)            # socket://127.0.0.1:41643
        ...
    # QEMU is killed and reaped here, also on exceptions and Ctrl-C

With serial="tcp" QEMU waits for the first connection before the core starts
(wait=on: no early output is lost) and takes a new one after a client hangs up.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Sequence

from host.qemu import DEFAULT_ICOUNT_SHIFT, MACHINE, QemuError, check_runnable, qemu_command

#: Emulated boards by tinysyn board name -> QEMU machine.
MACHINES = {"qemu-mps2-an386": MACHINE}
SERIAL_KINDS = ("tcp", "pty")
#: Host seconds QEMU gets to print where its serial port is.
DEFAULT_START_TIMEOUT = 10.0
#: Host seconds QEMU gets to exit after SIGKILL before stop() gives up waiting.
_REAP_TIMEOUT = 5.0
#: Lines of QEMU's own output kept for error messages.
_KEPT_LINES = 20
LOCALHOST = "127.0.0.1"

# "qemu-system-arm: -serial tcp:...: info: QEMU waiting for connection on: disconnected:tcp:127.0.0.1:41643,server=on"
_TCP_BANNER = re.compile(r"waiting for connection on: disconnected:tcp:([\d.]+):(\d+)")
# "char device redirected to /dev/pts/3 (label serial0)"
_PTY_BANNER = re.compile(r"char device redirected to (/dev/\S+)")


class Emulator:
    """One QEMU process running `kernel`, its UART0 reachable at `.url`."""

    def __init__(self, kernel: Path, board: str = "qemu-mps2-an386", serial: str = "tcp", port: int = 0,
                 icount_shift: int | None = DEFAULT_ICOUNT_SHIFT, extra_args: Sequence[str] = (),
                 start_timeout: float = DEFAULT_START_TIMEOUT):
        if board not in MACHINES:
            raise QemuError(f"no emulator for board {board!r}; emulated: {', '.join(MACHINES)}")
        if serial not in SERIAL_KINDS:
            raise QemuError(f"serial must be one of {', '.join(SERIAL_KINDS)}, got {serial!r}")
        self.kernel = Path(kernel)
        self.board = board
        self.serial = serial
        self.requested_port = port
        self.icount_shift = icount_shift
        self.extra_args = tuple(extra_args)
        self.start_timeout = start_timeout
        self.url: str | None = None
        self.port: int | None = None    #: the TCP port (serial="tcp")
        self._proc: subprocess.Popen | None = None
        self._lines: deque[str] = deque(maxlen=_KEPT_LINES)
        self._found = threading.Event()
        self._reader: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------

    def command(self) -> list[str]:
        # nodelay: QEMU writes the UART byte by byte; with Nagle each answer would wait for
        # the host's delayed ACK (40 ms per request instead of 1)
        chardev = ("pty" if self.serial == "pty"
                   else f"tcp:{LOCALHOST}:{self.requested_port},server=on,wait=on,nodelay=on")
        return [*qemu_command(self.kernel, self.icount_shift, MACHINES[self.board], serial=chardev),
                *self.extra_args]

    def start(self) -> Emulator:
        """Start QEMU and wait until it says where UART0 is; QemuError if it does not."""
        check_runnable(self.kernel)
        try:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,   # the pty banner goes to stdout, the tcp one to stderr
                start_new_session=True,     # Ctrl-C reaches us, and we stop QEMU ourselves
            )
            self._reader = threading.Thread(target=self._read_output, name="qemu-output", daemon=True)
            self._reader.start()
            self._wait_for_banner()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_banner(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not self._found.wait(0.05):
            if self._proc.poll() is not None:
                self._reader.join(_REAP_TIMEOUT)  # collect its last words
                raise QemuError(f"QEMU exited ({self._proc.returncode}) before opening its serial port for "
                                f"{self.kernel.name}: {self.output_tail() or '(no message)'}")
            if time.monotonic() > deadline:
                raise QemuError(f"QEMU did not open its {self.serial} serial port for {self.kernel.name} "
                                f"within {self.start_timeout:g} s")

    def _read_output(self) -> None:
        """Drain QEMU's output (so it never blocks on a full pipe), spotting the serial banner."""
        for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self._lines.append(line)
            if self._found.is_set():
                continue
            if tcp := _TCP_BANNER.search(line):
                self.port = int(tcp.group(2))
                self.url = f"socket://{tcp.group(1)}:{self.port}"
                self._found.set()
            elif pty := _PTY_BANNER.search(line):
                self.url = pty.group(1)
                self._found.set()

    def stop(self) -> None:
        """Kill QEMU and reap it; safe to call twice and on a failed start."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(_REAP_TIMEOUT)
        finally:
            if self._reader is not None:
                self._reader.join(_REAP_TIMEOUT)
            proc.stdout.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- state ----------------------------------------------------------------

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """QEMU's exit status (the firmware's semihosting exit code), None while running."""
        return None if self._proc is None else self._proc.poll()

    def output_tail(self) -> str:
        """QEMU's last output lines (its own messages and semihosting output), one line."""
        return " | ".join(line for line in self._lines
                          if line and not _TCP_BANNER.search(line) and not _PTY_BANNER.search(line))
