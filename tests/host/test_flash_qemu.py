"""Flashing through the real tinysyn bootloader on QEMU mps2-an386, end to end."""
from __future__ import annotations

import random
import struct
import zlib

import pytest
from board_images import (BENCH_FIRST, BENCH_LAST, bench_app_elf, bench_standalone_elf,  # noqa: F401
                          bootloader_elf, dut_app_elf, kws_gen_dir)
from click.testing import CliRunner
from test_emulator import uart_until

from codegen.errors import FlashError, InputError, PortError, ResourceError
from host.cli import main
from host.emulator import Emulator
from host.faultproxy import FaultProxy
from host.flasher import Flasher
from host.image import ERASED_BYTE, load_image
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


def test_a_second_flash_resets_the_running_app_into_the_bootloader(board, dut_app_elf, bench_app_elf):
    """The DUT app runs and ignores SYNC; tsn-boot% sends it back to the bootloader, which still
    holds the first image, and the second flash replaces it."""
    with open_port(board.url) as port:
        first = Flasher(port, progress=False).flash(dut_app_elf)
        port.write(b"name%")
        assert uart_until(port, b"m-ready", seconds=5).startswith(b"m-name-dut-[tinysyn-qemu-mps2-an386]")
    with open_port(board.url) as port:  # a new session, as a second `tinysyn flash` would open
        flasher = Flasher(port, timeout=0.3, progress=False)
        info = flasher.sync()
        assert flasher.stats.timeouts == 2  # the app left both SYNCs unanswered
        assert info.image_valid and (info.image_size, info.image_crc32) == (first.image_bytes, first.image_crc32)
        second = flasher.flash(bench_app_elf)
        assert BENCH_LAST in uart_until(port, BENCH_LAST)
    assert second.verify_crc32 == zlib.crc32(_image(bench_app_elf)) != first.image_crc32


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


# ---- images ------------------------------------------------------------------------

def _elf(path, segments):
    """A minimal little-endian ARM ELF32 with one PT_LOAD per (vaddr, paddr, data, memsz)."""
    header_bytes, phdr_bytes = 52, 32
    offset = header_bytes + phdr_bytes * len(segments)
    phdrs, blobs = b"", b""
    for vaddr, paddr, data, memsz in segments:
        phdrs += struct.pack("<8I", 1, offset + len(blobs), vaddr, paddr, len(data), memsz, 5, 4)
        blobs += data
    ident = b"\x7fELF" + bytes((1, 1, 1)) + bytes(9)
    header = ident + struct.pack("<HHIIIIIHHHHHH", 2, 40, 1, APP_BASE, header_bytes, 0, 0, header_bytes,
                                 phdr_bytes, len(segments), 40, 0, 0)
    path.write_bytes(header + phdrs + blobs)
    return path


def test_elf_segments_are_placed_by_load_address_and_gaps_erased(tmp_path):
    elf = _elf(tmp_path / "app.elf", [
        (APP_BASE, APP_BASE, b"vectors!", 8),
        (APP_BASE + 0x10, APP_BASE + 0x10, b"text", 4),
        (0x20000000, APP_BASE + 0x14, b"data", 4),     # .data: runs in RAM, stored after .text
        (0x20000004, 0x20000004, b"", 0x100),          # .bss: nothing in the file
    ])
    image = load_image(elf, APP_BASE, APP_END - APP_BASE)
    assert image.data == b"vectors!" + bytes([ERASED_BYTE]) * 8 + b"textdata"
    assert image.base == APP_BASE and image.crc32 == zlib.crc32(image.data)


@pytest.mark.parametrize("address, problem", [
    (APP_BASE + 0x1000, "loads at 0x00009000, not at the start of the application area 0x00008000-0x00400000, "
                        "where its vector table must be: link it with image=app"),
    (APP_END, "loads at 0x00400000, above the application area 0x00008000-0x00400000: link it with image=app"),
])
def test_elfs_linked_elsewhere_are_refused(tmp_path, address, problem):
    elf = _elf(tmp_path / "x.elf", [(address, address, b"code", 4)])
    with pytest.raises(InputError, match=f"^{elf} {problem}$"):
        load_image(elf, APP_BASE, APP_END - APP_BASE)


def test_unreadable_images_are_one_line_errors(tmp_path):
    truncated = tmp_path / "cut.elf"
    truncated.write_bytes(b"\x7fELF\x01\x01")
    with pytest.raises(InputError, match=f"^{truncated}: not a readable ELF file"):
        load_image(truncated, APP_BASE, APP_END - APP_BASE)
    with pytest.raises(InputError, match=f"^cannot read image {tmp_path / 'none.bin'}: No such file or directory$"):
        load_image(tmp_path / "none.bin", APP_BASE, APP_END - APP_BASE)


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
