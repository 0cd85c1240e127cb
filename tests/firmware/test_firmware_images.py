"""Board layer and image kinds, with the real toolchain: the bootloader and the bench app
build for every board, land where firmware/PROTOCOL.md puts them, and the memory map
the host checks against is the one the linker uses."""
from __future__ import annotations

import re

import pytest
from conftest import model_path
from elftools.elf.elffile import ELFFile

from codegen.emit import c as emit_c
from codegen.frontends.tflite import load
from codegen.pipeline import compile_graph
from host.firmware_build import (
    BOARDS,
    FIRMWARE_DIR,
    FirmwareBuildError,
    _build,
    board_memory,
    build_bootloader,
    build_firmware,
    elf_sizes,
)

KIB = 1024
#: PROTOCOL.md section 1: offsets from the flash base.
RECORD_OFFSET = 0x6000
APP_OFFSET = 0x8000
BOOT_MAX_BYTES = 24 * KIB
ERASE_GRANULE = 8 * KIB
HANDOFF_BYTES = 16


@pytest.fixture(scope="module")
def kws_gen_dir(tmp_path_factory):
    gen_dir = tmp_path_factory.mktemp("kws") / "gen"
    emit_c.write(compile_graph(load(model_path("kws_ref_model"))), gen_dir, target="cortex-m4")
    return gen_dir


@pytest.fixture(scope="module", params=BOARDS)
def bootloader(request, tmp_path_factory):
    return request.param, build_bootloader(request.param, tmp_path_factory.mktemp("boot"))


def load_segments(elf):
    with open(elf, "rb") as stream:
        return [(seg["p_paddr"], seg["p_filesz"], seg["p_memsz"])
                for seg in ELFFile(stream).iter_segments() if seg["p_type"] == "PT_LOAD"]


def symbol_value(elf, name):
    with open(elf, "rb") as stream:
        symbols = ELFFile(stream).get_section_by_name(".symtab").get_symbol_by_name(name)
        assert symbols, f"{name} not in {elf}"
        return symbols[0]["st_value"]


def vector_table(elf):
    """(address, initial SP, reset vector) of the image's .vectors section."""
    with open(elf, "rb") as stream:
        section = ELFFile(stream).get_section_by_name(".vectors")
        data = section.data()
        return section["sh_addr"], int.from_bytes(data[0:4], "little"), int.from_bytes(data[4:8], "little")


def test_board_memory_follows_the_protocol_layout():
    assert set(BOARDS) == {"qemu-mps2-an386", "nucleo-l4r5zi"}
    for board in BOARDS:
        m = board_memory(board)
        base = m["flash_base"]
        assert m["boot_bytes"] == BOOT_MAX_BYTES
        assert m["record_base"] == base + RECORD_OFFSET and m["record_bytes"] == ERASE_GRANULE
        assert m["app_base"] == base + APP_OFFSET
        assert m["app_limit"] == base + m["flash_bytes"]
        assert m["app_max_bytes"] == m["flash_bytes"] - APP_OFFSET
        assert m["handoff"] == m["ram_base"] + m["ram_bytes"] - HANDOFF_BYTES
        for key in ("record_base", "app_base", "app_limit"):
            assert (m[key] - base) % ERASE_GRANULE == 0, (board, key)


def test_board_memory_values_per_board():
    qemu = board_memory("qemu-mps2-an386")
    assert (qemu["flash_base"], qemu["flash_bytes"], qemu["ram_bytes"]) == (0, 4 * KIB * KIB, 4 * KIB * KIB)
    assert qemu["app_max_bytes"] == 4 * KIB * KIB - 32 * KIB
    nucleo = board_memory("nucleo-l4r5zi")
    assert (nucleo["flash_base"], nucleo["flash_bytes"]) == (0x0800_0000, 2 * KIB * KIB)
    assert (nucleo["ram_base"], nucleo["ram_bytes"]) == (0x2000_0000, 640 * KIB)
    assert nucleo["app_base"] == 0x0800_8000


def test_board_memory_refuses_an_unknown_board():
    with pytest.raises(FirmwareBuildError, match="unknown board 'nope'"):
        board_memory("nope")


def test_every_board_defines_the_same_facts_and_the_whole_interface():
    """firmware/common and the apps rely on board.h alone: every board must define the same
    BOARD_* facts, include the shared declarations, and implement every board function."""
    api = (FIRMWARE_DIR / "common" / "board_api.h").read_text()
    declared = set(re.findall(r"^\w[\w ]*?\b(board_\w+)\(", api, re.MULTILINE))
    assert {"board_init", "board_uart_putc", "board_uart_getc", "board_uart_rx_ready", "board_uart_flush",
            "board_exit", "board_fault"} <= declared
    shared = set(re.findall(r"^void (board_\w+)\(", (FIRMWARE_DIR / "common" / "fault.c").read_text(), re.MULTILINE))

    def facts(board):
        header = (FIRMWARE_DIR / "boards" / board / "board.h").read_text()
        assert '#include "board_api.h"' in header, board
        return set(re.findall(r"^#define (BOARD_\w+)", header, re.MULTILINE))

    reference = facts(BOARDS[0])
    assert {"BOARD_NAME", "BOARD_CORE_CLOCK_HZ", "BOARD_NUM_IRQS", "BOARD_TIMER_DWT"} <= reference
    for board in BOARDS:
        assert facts(board) == reference, board
        source = (FIRMWARE_DIR / "boards" / board / "board.c").read_text()
        defined = set(re.findall(r"^\w[\w ]*?\b(board_\w+)\([^;]*$", source, re.MULTILINE))
        assert declared - shared <= defined, (board, declared - shared - defined)


def test_bootloader_fits_and_stores_nothing_at_or_above_the_record_page(bootloader):
    board, elf = bootloader
    m = board_memory(board)
    assert elf.name == "boot.elf"
    assert 0 < elf_sizes(elf)["flash_bytes"] <= BOOT_MAX_BYTES
    flash_end = m["flash_base"] + m["flash_bytes"]
    segments = load_segments(elf)
    assert segments
    for paddr, filesz, memsz in segments:
        if paddr < flash_end and paddr + memsz > m["flash_base"]:  # a segment QEMU would (re)load into flash
            assert paddr + max(filesz, memsz) <= m["record_base"], (hex(paddr), memsz)
        else:
            assert filesz == 0, "only the flash image carries bytes"
    address, sp, reset = vector_table(elf)
    assert address == m["flash_base"]
    assert m["ram_base"] < sp <= m["handoff"]
    assert m["flash_base"] <= reset < m["record_base"] and reset & 1  # a Thumb address in the bootloader


def test_bootloader_keeps_clear_of_the_hand_off_area(bootloader):
    board, elf = bootloader
    m = board_memory(board)
    assert symbol_value(elf, "__handoff") == m["handoff"]
    assert symbol_value(elf, "__ram_end") <= m["handoff"]
    assert symbol_value(elf, "__bss_end") <= m["handoff"]


@pytest.mark.parametrize("image", ["standalone", "app"])
@pytest.mark.parametrize("board", BOARDS)
def test_bench_app_images_build_where_the_layout_says(kws_gen_dir, tmp_path, board, image):
    m = board_memory(board)
    elf = build_firmware(kws_gen_dir, board, "bench", tmp_path, image=image)
    assert elf == tmp_path / "bench.elf"
    base = m["flash_base"] if image == "standalone" else m["app_base"]
    address, sp, reset = vector_table(elf)
    assert address == base
    assert m["ram_base"] < sp <= m["handoff"]
    end = base + elf_sizes(elf)["flash_bytes"]
    assert base <= reset < end and reset & 1
    for paddr, _, memsz in load_segments(elf):
        if paddr < m["flash_base"] + m["flash_bytes"] and paddr + memsz > m["flash_base"]:
            assert base <= paddr and paddr + memsz <= m["app_limit"]
    assert symbol_value(elf, "__ram_end") <= m["handoff"]


def test_an_unknown_image_kind_is_refused(kws_gen_dir, tmp_path):
    with pytest.raises(FirmwareBuildError, match="unknown image kind 'boot'"):
        build_firmware(kws_gen_dir, "qemu-mps2-an386", "bench", tmp_path, image="boot")


def test_the_linker_refuses_a_bootloader_over_24_kib(tmp_path):
    """image_boot.ld: 24 KiB and no more, even if only constant data grows."""
    from codegen.build import c_sources
    from host.firmware_build import BOARDS_DIR, BOOTLOADER_COMMON, BOOTLOADER_DIR, BOOT_SCRIPT, COMMON_DIR

    board = "qemu-mps2-an386"
    pad = tmp_path / "pad.c"
    pad.write_text(f"const unsigned char tsn_test_pad[{BOOT_MAX_BYTES}] = {{1}};\n")
    parts = {
        "board": c_sources(BOARDS_DIR / board),
        "common": [COMMON_DIR / name for name in BOOTLOADER_COMMON],
        "bootloader": c_sources(BOOTLOADER_DIR) + [pad],
    }
    with pytest.raises(FirmwareBuildError, match="will not fit|24 KiB"):
        _build(board, parts, [BOARDS_DIR / board, COMMON_DIR, BOOTLOADER_DIR], BOOT_SCRIPT, tmp_path, "boot",
               (), ("-Wl,--undefined=tsn_test_pad",))


def test_a_stack_overflow_faults_and_is_reported_not_silent(kws_gen_dir, tmp_path):
    """A 128-byte stack cannot hold the kernels' frames: the MPU guard under the stack
    turns the overflow into a MemManage fault, reported on the console, exit status 2."""
    from host.qemu import run_semihosted

    elf = build_firmware(kws_gen_dir, "qemu-mps2-an386", "bench", tmp_path,
                         extra_ldflags=["-Wl,--defsym=__stack_size=128"])
    status, uart = run_semihosted(elf, timeout=60)
    assert status == 2, uart
    fault = re.search(r"fault exception 0x([0-9a-f]{8}) cfsr 0x([0-9a-f]{8})", uart)
    assert fault, uart
    exception, cfsr = int(fault.group(1), 16), int(fault.group(2), 16)
    assert exception in (3, 4)          # HardFault (escalated) or MemManage
    assert cfsr & 0xFF                  # a MemManage status bit (MSTKERR / DACCVIOL) names the cause
