"""``tinysyn emulate``: a flashed emulated board that stays up for any serial client.

QEMU boots the bootloader, the DUT app for the model is flashed through it over
the serial link and started, then the link is handed over: the MLPerf Tiny runner,
a terminal (``picocom``, ``screen``) or ``tinysyn profile --port`` can connect and
drive the board until Ctrl-C stops the emulator.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Callable

from codegen.errors import BoardError, InputError
from host.emulator import Emulator
from host.profiler import flash_and_connect, prepare
from host.qemu import DEFAULT_ICOUNT_SHIFT
from host.transport import open_port

_TCP_RE = re.compile(r"^tcp:(\d{1,5})$")


def parse_serial(kind: str) -> tuple[str, int]:
    """'pty' or 'tcp:PORT' -> (Emulator serial kind, TCP port; 0 = any free one)."""
    if kind == "pty":
        return "pty", 0
    m = _TCP_RE.match(kind)
    if not m or int(m.group(1)) > 65535:
        raise InputError(f"--serial must be pty or tcp:PORT (PORT 0..65535, 0 = a free port), got {kind!r}")
    return "tcp", int(m.group(1))


def serve(model: Path, board: str, serial: str, work: Path, progress: bool = True,
          echo: Callable[[str], None] = print, icount_shift: int = DEFAULT_ICOUNT_SHIFT) -> None:
    """Run the flashed emulator until Ctrl-C (or until it ends: BoardError if it failed)."""
    kind, port = parse_serial(serial)
    program, boot_elf, app_elf, _ = prepare(Path(model), board, Path(work))
    with Emulator(boot_elf, board=board, serial=kind, port=port, icount_shift=icount_shift) as emulator:
        with contextlib.closing(open_port(emulator.url)) as link:
            _, info, flash = flash_and_connect(link, emulator.url, app_elf, program, progress)
        echo(f"{board}: {info['model']} flashed ({flash.payload_bytes:,} B) and running the MLPerf Tiny DUT "
             f"protocol (firmware/PROTOCOL.md)")
        echo(f"connect to: {emulator.url}")
        echo("Ctrl-C stops the emulator")
        try:
            while emulator.alive():
                time.sleep(1.0)
        except KeyboardInterrupt:
            echo("stopping the emulator")
            return
        if emulator.returncode:
            raise BoardError(f"the emulator stopped with status {emulator.returncode}: "
                             f"{emulator.output_tail() or '(no message)'}")
