"""Firmware the emulator, flasher and fault tests run, built once per test session.

Import the fixtures into a test module to use them. The model is the KWS
reference, generated the way host/bench.py does; the bench app prints
"bench model ..." first and "total ticks ..." last on its UART, the DUT app
answers MLPerf Tiny and tsn- commands.
"""
from __future__ import annotations

import pytest
from conftest import model_path

from codegen.emit import c as emit_c
from codegen.frontends.tflite import load
from codegen.pipeline import compile_graph
from host.firmware_build import build_bootloader, build_firmware

BOARD = "qemu-mps2-an386"
MODEL = "kws_ref_model"
#: The bench app's first and last UART lines.
BENCH_FIRST = b"bench model " + MODEL.encode()
BENCH_LAST = b"total ticks "


@pytest.fixture(scope="session")
def kws_gen_dir(tmp_path_factory):
    gen_dir = tmp_path_factory.mktemp("kws") / "gen"
    emit_c.write(compile_graph(load(model_path(MODEL))), gen_dir, target="cortex-m4")
    return gen_dir


@pytest.fixture(scope="session")
def bench_standalone_elf(kws_gen_dir, tmp_path_factory):
    """The bench app linked for the whole flash (QEMU -kernel)."""
    return build_firmware(kws_gen_dir, BOARD, "bench", tmp_path_factory.mktemp("standalone"))


@pytest.fixture(scope="session")
def bench_app_elf(kws_gen_dir, tmp_path_factory):
    """The bench app linked for the bootloader's application area."""
    return build_firmware(kws_gen_dir, BOARD, "bench", tmp_path_factory.mktemp("app"), image="app")


@pytest.fixture(scope="session")
def dut_app_elf(kws_gen_dir, tmp_path_factory):
    """The MLPerf Tiny DUT app (answers name%, resets into the bootloader on tsn-boot%)."""
    return build_firmware(kws_gen_dir, BOARD, "dut", tmp_path_factory.mktemp("dut"), image="app")


@pytest.fixture(scope="session")
def bootloader_elf(tmp_path_factory):
    return build_bootloader(BOARD, tmp_path_factory.mktemp("boot"))
