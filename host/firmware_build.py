"""Build a firmware ELF: a generated model + board support + common runtime + one app.

    elf = build_firmware(Path("build/kws"), "qemu-mps2-an386", "bench", Path("build/fw"))
    elf_sizes(elf)  # {"flash_bytes": ..., "static_ram_bytes": ..., ...}

Sources come from firmware/boards/<board>/, firmware/common/ and firmware/apps/<app>/
(every *.c there) and every *.c in the model directory. The board directory also
holds linker.ld. No C library start-up or syscalls are linked: only libgcc and,
for the memcpy/memset family that compilers and kernels call, newlib's libc.a.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

from codegen.build import CORTEX_M4_CC, CORTEX_M4F_CPU, c_sources, run_compiler
from codegen.errors import BuildError

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware"

CC = CORTEX_M4_CC

#: Code generation flags per board (core, FPU, ABI). Both boards planned so far are
#: Cortex-M4F parts. The kernels take their DSP-extension path from the core's
#: __ARM_FEATURE_DSP unless -DTSN_NN_PORTABLE is given.
BOARD_FLAGS = {
    "qemu-mps2-an386": CORTEX_M4F_CPU,
}

#: Flags for every C file.
COMMON_CFLAGS = (
    "-O2",
    "-g",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffunction-sections",
    "-fdata-sections",
    "-fstack-usage",
)

LINK_FLAGS = (
    "-nostdlib",
    "-Wl,--gc-sections",
)
#: After the objects: string functions from newlib (no start-up, no syscalls), then libgcc.
LINK_LIBS = ("-Wl,--start-group", "-lc", "-lgcc", "-Wl,--end-group")


class FirmwareBuildError(BuildError):
    """The firmware could not be built (no compiler, bad arguments, compile or link error)."""


def _run(cmd: Sequence[str], what: str) -> None:
    run_compiler(list(cmd), what, FirmwareBuildError)


def build_firmware(
    model_dir: Path,
    board: str,
    app: str,
    out_dir: Path,
    extra_cflags: Iterable[str] = (),
    extra_ldflags: Iterable[str] = (),
) -> Path:
    """Compile and link model + board + common + app; return the ELF path.

    Objects go to out_dir/obj/<part>/, the ELF to out_dir/<app>.elf and a link
    map beside it. extra_cflags go to every compile, extra_ldflags to the link
    (e.g. "-Wl,--defsym=__stack_size=8192"). Raises FirmwareBuildError naming the
    failing file and the compiler's first error line.
    """
    model_dir = Path(model_dir)
    out_dir = Path(out_dir)
    extra_cflags = tuple(extra_cflags)
    extra_ldflags = tuple(extra_ldflags)

    if shutil.which(CC) is None:
        raise FirmwareBuildError(f"{CC} not found on PATH (Debian: apt-get install gcc-arm-none-eabi)")
    if board not in BOARD_FLAGS:
        raise FirmwareBuildError(f"unknown board {board!r}; known: {', '.join(sorted(BOARD_FLAGS))}")
    board_dir = FIRMWARE_DIR / "boards" / board
    common_dir = FIRMWARE_DIR / "common"
    app_dir = FIRMWARE_DIR / "apps" / app
    linker_script = board_dir / "linker.ld"
    for directory in (board_dir, app_dir, model_dir):
        if not directory.is_dir():
            raise FirmwareBuildError(f"no such directory: {directory}")
    if not linker_script.is_file():
        raise FirmwareBuildError(f"board {board} has no linker script: {linker_script}")

    parts = {
        "model": c_sources(model_dir),
        "board": c_sources(board_dir),
        "common": c_sources(common_dir),
        "app": c_sources(app_dir),
    }
    if not parts["model"]:
        raise FirmwareBuildError(f"no C sources in model directory {model_dir}")

    cpu_flags = BOARD_FLAGS[board]
    includes = [f"-I{d}" for d in (model_dir, board_dir, common_dir, app_dir)]
    cflags = [*cpu_flags, *COMMON_CFLAGS, *includes, *extra_cflags]

    jobs: list[tuple[Path, Path]] = []
    for part, sources in parts.items():
        obj_dir = out_dir / "obj" / part
        obj_dir.mkdir(parents=True, exist_ok=True)
        jobs.extend((src, obj_dir / (src.stem + ".o")) for src in sources)

    def compile_one(job: tuple[Path, Path]) -> None:
        src, obj = job
        _run([CC, *cflags, "-c", str(src), "-o", str(obj)], f"compiling {src}")

    # Compile in parallel; report the first failing file in source order.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = [pool.submit(compile_one, job) for job in jobs]
        for future in futures:
            future.result()

    elf = out_dir / f"{app}.elf"
    link_cmd = [
        CC,
        *cpu_flags,
        *LINK_FLAGS,
        *extra_ldflags,
        f"-T{linker_script}",
        f"-Wl,-Map={out_dir / (app + '.map')}",
        *[str(obj) for _, obj in jobs],
        *LINK_LIBS,
        "-o",
        str(elf),
    ]
    _run(link_cmd, f"linking {elf}")
    return elf


def elf_sizes(elf: Path) -> dict[str, int]:
    """Static memory of an ELF from its allocated sections.

    flash_bytes: code, read-only data and the load image of initialised data.
    static_ram_bytes: initialised data + zeroed data + the stack reservation.
    Also the parts: text_bytes, rodata_bytes, data_bytes, bss_bytes, stack_bytes.
    """
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    sizes = {"text_bytes": 0, "rodata_bytes": 0, "data_bytes": 0, "bss_bytes": 0, "stack_bytes": 0}
    with open(elf, "rb") as stream:
        for section in ELFFile(stream).iter_sections():
            flags = section["sh_flags"]
            size = section["sh_size"]
            if not flags & SH_FLAGS.SHF_ALLOC or size == 0:
                continue
            if section.name == ".stack":
                sizes["stack_bytes"] += size
            elif section["sh_type"] == "SHT_NOBITS":
                sizes["bss_bytes"] += size
            elif flags & SH_FLAGS.SHF_WRITE:
                sizes["data_bytes"] += size  # lives in RAM, its image in flash
            elif flags & SH_FLAGS.SHF_EXECINSTR:
                sizes["text_bytes"] += size
            else:
                sizes["rodata_bytes"] += size
    sizes["flash_bytes"] = sizes["text_bytes"] + sizes["rodata_bytes"] + sizes["data_bytes"]
    sizes["static_ram_bytes"] = sizes["data_bytes"] + sizes["bss_bytes"] + sizes["stack_bytes"]
    return sizes
