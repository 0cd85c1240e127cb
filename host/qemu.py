"""Run firmware on QEMU's mps2-an386 (Cortex-M4F) and collect its UART output.

The firmware ends itself through semihosting SYS_EXIT_EXTENDED, so QEMU's exit
status is the firmware's exit code; UART0 is QEMU's first serial port, wired to
QEMU's stdout. With ``-icount shift=N`` every instruction advances virtual time by
2^N ns, which makes SysTick readings deterministic instruction counts (see
host/icount.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from codegen.errors import TinysynError

QEMU = "qemu-system-arm"
MACHINE = "mps2-an386"
DEFAULT_ICOUNT_SHIFT = 6

#: How much of the UART output an error message quotes.
_TAIL_CHARS = 400


class QemuError(TinysynError):
    """QEMU is missing, failed to start the firmware, or was killed."""


class QemuTimeoutError(QemuError):
    """The firmware did not exit within the time limit (QEMU was killed)."""


def qemu_command(elf: Path, icount_shift: int | None = DEFAULT_ICOUNT_SHIFT, machine: str = MACHINE,
                 serial: str = "stdio") -> list[str]:
    """The QEMU command line that runs `elf` with UART0 on `serial` and semihosting exit.

    serial is a QEMU character device: "stdio" (run_semihosted), "pty" or
    "tcp:127.0.0.1:PORT,server=on,wait=on" (host/emulator.py).
    icount_shift None runs without -icount; SysTick readings are then host noise.
    QEMU accepts shifts 0..10.
    """
    cmd = [
        QEMU,
        "-M", machine,
        "-nographic",          # no display; with -monitor none nothing else claims stdio
        "-monitor", "none",
        "-serial", serial,     # first serial port = CMSDK UART0 at 0x40004000
        "-semihosting-config", "enable=on,target=native",
    ]
    if icount_shift is not None:
        if not 0 <= icount_shift <= 10:
            raise ValueError(f"icount_shift must be in 0..10, got {icount_shift}")
        cmd += ["-icount", f"shift={icount_shift}"]
    cmd += ["-kernel", str(elf)]
    return cmd


def check_runnable(elf: Path) -> None:
    """QemuError unless QEMU is installed and `elf` is an ELF file."""
    if shutil.which(QEMU) is None:
        raise QemuError(f"{QEMU} not found on PATH (Debian: apt-get install qemu-system-arm)")
    if not Path(elf).is_file():
        raise QemuError(f"no such firmware image: {elf}")
    with open(elf, "rb") as stream:
        if stream.read(4) != b"\x7fELF":
            raise QemuError(f"not an ELF file: {elf}")


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _TAIL_CHARS else "..." + text[-_TAIL_CHARS:]


def run_semihosted(elf: Path, icount_shift: int | None = DEFAULT_ICOUNT_SHIFT, timeout: float = 120) -> tuple[int, str]:
    """Run `elf` to its semihosting exit; return (exit_code, uart_text).

    Raises QemuTimeoutError when it runs longer than `timeout` seconds (host time),
    QemuError when QEMU is missing, cannot load the image or dies from a signal.
    QEMU is always gone when this returns.
    """
    elf = Path(elf)
    check_runnable(elf)
    cmd = qemu_command(elf, icount_shift)
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,   # the firmware reads no console input here
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,     # keep terminal signals (Ctrl-C) to us, not QEMU
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, _ = proc.communicate()
        raise QemuTimeoutError(
            f"{elf.name} did not exit within {timeout:g} s under QEMU; UART so far: "
            f"{_tail(stdout.decode('utf-8', 'replace')) or '(nothing)'}"
        ) from None
    finally:
        if proc.poll() is None:  # e.g. KeyboardInterrupt during communicate()
            proc.kill()
            proc.wait()

    uart_text = stdout.decode("utf-8", "replace")
    err_text = stderr.decode("utf-8", "replace")
    if proc.returncode < 0:
        # QEMU aborts (SIGABRT) on a CPU lockup, a fault while handling a fault:
        # under this firmware's memory layout, typically a stack overflow.
        first = next((line for line in err_text.splitlines() if line.strip()), "(no message)")
        raise QemuError(
            f"QEMU died from signal {-proc.returncode} running {elf.name}: {first}; "
            f"UART so far: {_tail(uart_text) or '(nothing)'}"
        )
    # QEMU's own failures (bad image, bad option) print "qemu-system-arm: ..." and exit 1,
    # which the firmware's exit code 1 alone could not tell apart.
    qemu_errors = [line for line in err_text.splitlines() if line.startswith(f"{QEMU}:")]
    if proc.returncode != 0 and qemu_errors:
        raise QemuError(f"QEMU failed on {elf.name}: {qemu_errors[0]}")
    return proc.returncode, uart_text
