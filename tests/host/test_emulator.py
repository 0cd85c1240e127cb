"""host/emulator.py: QEMU with UART0 on a TCP port or a pty, always stopped and reaped."""
from __future__ import annotations

import os
import re
import signal

import pytest
from board_images import BENCH_FIRST, BENCH_LAST, bench_standalone_elf, bootloader_elf, kws_gen_dir  # noqa: F401

from codegen.errors import BoardError
from host import bootproto as bp
from host import emulator as emulator_module
from host.emulator import Emulator
from host.qemu import QemuError
from host.transport import open_port, read_some

#: Host seconds the KWS bench takes under QEMU, with a wide margin.
BENCH_SECONDS = 30


def uart_until(port, marker: bytes, seconds: float = BENCH_SECONDS) -> bytes:
    """UART bytes up to the end of the line holding `marker` (or all until the line goes quiet or closes)."""
    text = b""
    while not re.search(re.escape(marker) + rb"[^\n]*\n", text):
        try:
            data = read_some(port, seconds)
        except BoardError:
            break
        if not data:
            break
        text += data
    return text


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_tcp_uart_carries_the_whole_bench_run(bench_standalone_elf):
    with Emulator(bench_standalone_elf) as emu:
        assert emu.url == f"socket://127.0.0.1:{emu.port}" and emu.port > 0
        assert emu.alive()
        with open_port(emu.url) as port:  # wait=on: the core starts on this connection, nothing is missed
            text = uart_until(port, BENCH_LAST)
        assert text.startswith(BENCH_FIRST) and BENCH_LAST in text
        emu._proc.wait(BENCH_SECONDS)  # the bench ends itself through semihosting
        assert emu.returncode == 0 and not emu.alive()


def test_two_emulators_get_different_free_ports(bench_standalone_elf):
    with Emulator(bench_standalone_elf) as first, Emulator(bench_standalone_elf) as second:
        assert first.port != second.port


def test_pty_uart_reaches_the_bootloader(bootloader_elf):
    with Emulator(bootloader_elf, serial="pty") as emu:
        assert re.fullmatch(r"/dev/pts/\d+", emu.url) and emu.port is None
        with open_port(emu.url, timeout=2) as port:
            port.write(bp.encode_request(bp.Command.SYNC, 1))
            decoder = bp.SlipDecoder()
            bodies = []
            while not bodies and (data := read_some(port, 5)):
                bodies = decoder.feed(data)
        info = bp.SyncInfo.parse(bp.parse_frame(bodies[0]).payload)
        assert info.board == "qemu-mps2-an386" and info.app_base == 0x8000


def test_tcp_serial_takes_a_new_client_after_one_hangs_up(bootloader_elf):
    from host.flasher import Flasher

    with Emulator(bootloader_elf) as emu:
        for _ in range(2):
            with open_port(emu.url) as port:
                assert Flasher(port, progress=False).sync().board == "qemu-mps2-an386"


def test_qemu_is_killed_and_reaped_on_an_exception(bench_standalone_elf):
    emu = Emulator(bench_standalone_elf)
    with pytest.raises(RuntimeError), emu:
        pid = emu._proc.pid
        raise RuntimeError("test body failed")
    assert emu.returncode == -signal.SIGKILL and _gone(pid)


def test_qemu_is_killed_on_keyboard_interrupt(bench_standalone_elf):
    emu = Emulator(bench_standalone_elf)
    with pytest.raises(KeyboardInterrupt), emu:
        pid = emu._proc.pid
        raise KeyboardInterrupt
    assert _gone(pid) and not emu.alive()
    emu.stop()  # twice is harmless


def test_missing_qemu_is_a_one_line_error(bench_standalone_elf, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(QemuError, match=r"^qemu-system-arm not found on PATH \(Debian: apt-get install "
                                        r"qemu-system-arm\)$"):
        Emulator(bench_standalone_elf).start()


def test_qemu_refusing_its_arguments_is_a_one_line_error(bench_standalone_elf):
    with pytest.raises(QemuError, match=r"^QEMU exited \(1\) before opening its serial port for bench.elf: "
                                        r"qemu-system-arm: -no-such-option: invalid option$"):
        Emulator(bench_standalone_elf, extra_args=["-no-such-option"]).start()


def test_a_start_timeout_stops_qemu(bench_standalone_elf, monkeypatch):
    monkeypatch.setattr(emulator_module, "_TCP_BANNER", re.compile("a banner QEMU never prints"))
    emu = Emulator(bench_standalone_elf, start_timeout=0.5)
    with pytest.raises(QemuError, match=r"^QEMU did not open its tcp serial port for bench.elf within 0.5 s$"):
        emu.start()
    assert emu.returncode is not None and not emu.alive()


def test_bad_arguments_are_refused_before_starting(bench_standalone_elf, tmp_path):
    with pytest.raises(QemuError, match="no emulator for board 'nucleo-l4r5zi'; emulated: qemu-mps2-an386"):
        Emulator(bench_standalone_elf, board="nucleo-l4r5zi")
    with pytest.raises(QemuError, match="serial must be one of tcp, pty, got 'stdio'"):
        Emulator(bench_standalone_elf, serial="stdio")
    not_elf = tmp_path / "x.bin"
    not_elf.write_bytes(b"\0" * 16)
    with pytest.raises(QemuError, match=f"not an ELF file: {not_elf}"):
        Emulator(not_elf).start()
