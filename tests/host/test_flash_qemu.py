"""Flashing through the real tinysyn bootloader on QEMU mps2-an386, end to end."""
from __future__ import annotations

import random
import zlib

import pytest
from board_images import (BENCH_FIRST, BENCH_LAST, bench_app_elf, bench_standalone_elf,  # noqa: F401
                          bootloader_elf, kws_gen_dir)
from click.testing import CliRunner
from test_emulator import uart_until

from codegen.errors import FlashError, InputError, PortError, ResourceError
from host.cli import main
from host.emulator import Emulator
from host.faultproxy import FaultProxy
from host.flasher import Flasher
from host.image import load_image
from host.transport import open_port

APP_BASE = 0x8000
APP_END = 0x400000


@pytest.fixture
def board(bootloader_elf):
    """A fresh emulated board running only the bootloader."""
    with Emulator(bootloader_elf) as emu:
        yield emu


@pytest.fixture
def port(board):
    with open_port(board.url) as line:
        yield line


def _image(elf) -> bytes:
    return load_image(elf, APP_BASE, APP_END - APP_BASE).data


def test_sync_describes_the_board(port):
    info = Flasher(port, progress=False).sync()
    assert (info.protocol_version, info.app_base, info.app_max_bytes) == (1, APP_BASE, APP_END - APP_BASE)
    assert info.max_block_bytes == 1024 and info.board == "qemu-mps2-an386"
    assert not info.image_valid


def test_flash_verifies_boots_and_the_app_runs(port, bench_app_elf, capsys):
    image = _image(bench_app_elf)
    result = Flasher(port, progress=False).flash(bench_app_elf)
    assert result.image_bytes == len(image)
    assert result.image_crc32 == result.verify_crc32 == zlib.crc32(image)
    assert result.booted and result.address == APP_BASE and result.wire.retries == 0
    # every DATA frame carries 1,024 image bytes in ~1,040 + escapes; answers are ~16 bytes
    assert 0.9 < result.wire_efficiency < 1.0
    text = uart_until(port, BENCH_LAST)
    assert text.startswith(BENCH_FIRST) and BENCH_LAST in text
    with capsys.disabled():
        print(f"\n  flash KWS bench app on QEMU: {result.summary()}")


def test_a_second_flash_after_the_app_ran(board, bench_app_elf, kws_gen_dir):
    """Flash, boot, let the app finish; then a new session flashes again over the same QEMU."""
    other = random.Random(5).randbytes(3000)
    with open_port(board.url) as port:
        first = Flasher(port, progress=False).flash(other, boot=False)
    with open_port(board.url) as port:
        flasher = Flasher(port, progress=False)
        assert flasher.sync().image_valid and flasher.sync().image_crc32 == first.image_crc32
        second = flasher.flash(bench_app_elf)
        assert BENCH_LAST in uart_until(port, BENCH_LAST)
    assert second.verify_crc32 == zlib.crc32(_image(bench_app_elf))


def test_a_standalone_elf_is_refused_before_anything_is_written(port, bench_standalone_elf):
    flasher = Flasher(port, progress=False)
    with pytest.raises(InputError, match=rf"^{bench_standalone_elf} loads at 0x00000000, below the application "
                                         r"area 0x00008000-0x00400000: link it with image=app$"):
        flasher.flash(bench_standalone_elf)
    assert flasher.stats.requests == 1  # only SYNC went out


def test_an_image_larger_than_the_area_is_refused(port):
    with pytest.raises(ResourceError, match=r"is 4161537 bytes, the application area 0x00008000-0x00400000 "
                                            r"holds 4161536 bytes"):
        Flasher(port, progress=False).flash(b"\0" * (APP_END - APP_BASE + 1))


def test_boot_without_an_image_is_refused(port):
    flasher = Flasher(port, progress=False)
    flasher.sync()
    with pytest.raises(FlashError, match=r"^BOOT refused by the board: NO_IMAGE$"):
        flasher.boot()


def test_crc_reads_any_region_back(port):
    data = random.Random(6).randbytes(10_000)
    flasher = Flasher(port, progress=False)
    flasher.flash(data, boot=False)
    assert flasher.crc(0, 4096) == zlib.crc32(data[:4096])
    assert flasher.crc(1000, 5000) == zlib.crc32(data[1000:6000])


def test_no_answer_is_a_one_line_error(board):
    """A line that loses every byte: SYNC, the tsn-boot% nudge for a running app, SYNC again, then give up."""
    with FaultProxy("127.0.0.1", board.port, drop_rate=1.0) as proxy, open_port(proxy.url) as port:
        with pytest.raises(FlashError, match=r"^no bootloader on socket://127.0.0.1:\d+: SYNC: gave up after 2 "
                                             r"attempts, the last got no answer within 0.2 s; after tsn-boot%: SYNC: "
                                             r"gave up after 2 attempts, the last got no answer within 0.2 s$"):
            Flasher(port, timeout=0.2, retries=1, progress=False).flash(b"x")


# ---- the command line ------------------------------------------------------------

def test_cli_flash_prints_verify_and_throughput(board, bench_app_elf):
    result = CliRunner().invoke(main, ["flash", str(bench_app_elf), "--port", board.url, "--no-boot", "--quiet"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"flashed {bench_app_elf} to qemu-mps2-an386 at 0x00008000 over {board.url} (tinysyn)"
    crc = zlib.crc32(_image(bench_app_elf))
    assert lines[1] == (f"verify: OK by the board's END and CRC read-backs: CRC-32 0x{crc:08x} over "
                        f"{len(_image(bench_app_elf)):,} bytes matches the image")
    assert lines[2] == "left the board in its bootloader"
    assert lines[3].startswith("throughput: ") and "efficiency 0.9" in lines[3]


def test_cli_flash_errors_are_one_line(board, bench_standalone_elf):
    runner = CliRunner()
    result = runner.invoke(main, ["flash", str(bench_standalone_elf), "--port", board.url, "--quiet"])
    assert result.exit_code == InputError.exit_code
    assert result.output.strip().endswith("link it with image=app") and result.output.count("\n") == 1
    result = runner.invoke(main, ["flash", str(bench_standalone_elf), "--port", "socket://127.0.0.1:9"])
    assert result.exit_code == PortError.exit_code
    assert result.output == "tinysyn: error: cannot open socket://127.0.0.1:9: connection refused\n"
