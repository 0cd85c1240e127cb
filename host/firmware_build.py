"""Build firmware ELFs: model + board support + common runtime + one app, or the bootloader.

    elf = build_firmware(Path("build/kws"), "qemu-mps2-an386", "bench", Path("build/fw"))
    app = build_firmware(Path("build/kws"), "nucleo-l4r5zi", "dut", out, image="app")
    boot = build_bootloader("qemu-mps2-an386", Path("build/boot"))
    elf_sizes(elf)             # {"flash_bytes": ..., "static_ram_bytes": ..., ...}
    board_memory("nucleo-l4r5zi")["app_max_bytes"]

Sources come from firmware/boards/<board>/, firmware/common/, the app's libraries in
firmware/lib/ (APP_LIBS) and firmware/apps/<app>/ (every *.c there) and every *.c in
the model directory; the bootloader's from
firmware/bootloader/ instead of an app and a model. Linking uses one of the image
scripts in firmware/common (image_standalone.ld, image_app.ld, image_boot.ld),
which include the board's memory.ld (its memory map and the flash layout of
firmware/PROTOCOL.md) and the shared sections.ld. No C library start-up or
syscalls are linked: only libgcc and, for the memcpy/memset family that compilers
and kernels call, newlib's libc.a.
"""

from __future__ import annotations

import ast
import operator
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codegen.build import CORTEX_M4_CC, CORTEX_M4F_CPU, c_sources, run_compiler
from codegen.errors import BuildError

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware"
BOARDS_DIR = FIRMWARE_DIR / "boards"
COMMON_DIR = FIRMWARE_DIR / "common"
BOOTLOADER_DIR = FIRMWARE_DIR / "bootloader"
LIB_DIR = FIRMWARE_DIR / "lib"

#: The app-level libraries (firmware/lib/<name>) each app links: the command console of the
#: serial apps, the traced layer-by-layer runtime of the inference apps.
APP_LIBS = {
    "dut": ("console", "runtime"),
    "bench": ("runtime",),
    "train": ("console",),
}

CC = CORTEX_M4_CC

#: Code generation flags per board (core, FPU, ABI). Both boards planned so far are
#: Cortex-M4F parts. The kernels take their DSP-extension path from the core's
#: __ARM_FEATURE_DSP unless -DTSN_NN_PORTABLE is given.
BOARD_FLAGS = {
    "qemu-mps2-an386": CORTEX_M4F_CPU,
    "nucleo-l4r5zi": CORTEX_M4F_CPU,
}

#: Every board the firmware supports.
BOARDS = tuple(BOARD_FLAGS)

#: Image kinds build_firmware() links, by their linker script in firmware/common.
#: "standalone" owns the whole flash (QEMU -kernel, a debugger); "app" starts at
#: the application area and is started by the serial bootloader.
IMAGE_SCRIPTS = {
    "standalone": "image_standalone.ld",
    "app": "image_app.ld",
}
BOOT_SCRIPT = "image_boot.ld"

#: The common modules the bootloader links. A fixed list, not every file in
#: firmware/common: application runtime code there may need a model's headers.
BOOTLOADER_COMMON = ("startup.c", "stack.c", "timer.c", "crc32.c", "bootctl.c", "semihost.c", "fault.c", "uart.c")

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
    # The fp32 training step must round every product and sum on its own, as its NumPy
    # reference does: GNU C would fuse a*b+c into one VFMA on the M4F's FPU.
    "-ffp-contract=off",
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


def _board_dir(board: str) -> Path:
    if board not in BOARD_FLAGS:
        raise FirmwareBuildError(f"unknown board {board!r}; known: {', '.join(sorted(BOARD_FLAGS))}")
    board_dir = BOARDS_DIR / board
    if not (board_dir / "memory.ld").is_file():
        raise FirmwareBuildError(f"board {board} has no memory map: {board_dir / 'memory.ld'}")
    return board_dir


def build_firmware(
    model_dir: Path,
    board: str,
    app: str,
    out_dir: Path,
    extra_cflags: Iterable[str] = (),
    extra_ldflags: Iterable[str] = (),
    image: str = "standalone",
) -> Path:
    """Compile and link model + board + common + app; return the ELF path.

    image "standalone" links for the whole flash (today's QEMU -kernel images),
    "app" for the application area behind the serial bootloader (flash base +
    0x8000, see firmware/PROTOCOL.md). Objects go to out_dir/obj/<part>/, the ELF
    to out_dir/<app>.elf and a link map beside it. extra_cflags go to every
    compile, extra_ldflags to the link (e.g. "-Wl,--defsym=__stack_size=8192").
    Raises FirmwareBuildError naming the failing file and the compiler's first
    error line.
    """
    model_dir = Path(model_dir)
    if image not in IMAGE_SCRIPTS:
        raise FirmwareBuildError(f"unknown image kind {image!r}; known: {', '.join(IMAGE_SCRIPTS)}")
    board_dir = _board_dir(board)
    app_dir = FIRMWARE_DIR / "apps" / app
    if app not in APP_LIBS:
        raise FirmwareBuildError(f"unknown app {app!r}; known: {', '.join(APP_LIBS)}")
    lib_dirs = [LIB_DIR / name for name in APP_LIBS[app]]
    for directory in (app_dir, model_dir, *lib_dirs):
        if not directory.is_dir():
            raise FirmwareBuildError(f"no such directory: {directory}")
    parts = {
        "model": c_sources(model_dir),
        "board": c_sources(board_dir),
        "common": c_sources(COMMON_DIR),
        **{f"lib-{d.name}": c_sources(d) for d in lib_dirs},
        "app": c_sources(app_dir),
    }
    if not parts["model"]:
        raise FirmwareBuildError(f"no C sources in model directory {model_dir}")
    return _build(board, parts, [model_dir, board_dir, COMMON_DIR, *lib_dirs, app_dir], IMAGE_SCRIPTS[image],
                  Path(out_dir), app, tuple(extra_cflags), tuple(extra_ldflags))


def build_bootloader(board: str, out_dir: Path, extra_cflags: Iterable[str] = ()) -> Path:
    """Compile and link the serial bootloader for `board`; return out_dir/boot.elf.

    Sources: firmware/bootloader + the board + the common modules in
    BOOTLOADER_COMMON, no model and no app. The
    image occupies the first 24 KiB of flash (image_boot.ld asserts it fits) and
    stores nothing at or above the boot record page.
    """
    board_dir = _board_dir(board)
    parts = {
        "board": c_sources(board_dir),
        "common": [COMMON_DIR / name for name in BOOTLOADER_COMMON],
        "bootloader": c_sources(BOOTLOADER_DIR),
    }
    if not parts["bootloader"]:
        raise FirmwareBuildError(f"no C sources in {BOOTLOADER_DIR}")
    return _build(board, parts, [board_dir, COMMON_DIR, BOOTLOADER_DIR], BOOT_SCRIPT,
                  Path(out_dir), "boot", tuple(extra_cflags), ())


def _build(
    board: str,
    parts: dict[str, list[Path]],
    include_dirs: Sequence[Path],
    linker_script: str,
    out_dir: Path,
    name: str,
    extra_cflags: tuple[str, ...],
    extra_ldflags: tuple[str, ...],
) -> Path:
    """Compile every part's sources in parallel and link them with an image script."""
    if shutil.which(CC) is None:
        raise FirmwareBuildError(f"{CC} not found on PATH (Debian: apt-get install gcc-arm-none-eabi)")
    cpu_flags = BOARD_FLAGS[board]
    includes = [f"-I{d}" for d in include_dirs]
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

    elf = out_dir / f"{name}.elf"
    link_cmd = [
        CC,
        *cpu_flags,
        *LINK_FLAGS,
        *extra_ldflags,
        # The image script INCLUDEs memory.ld (board) and sections.ld (common).
        f"-L{BOARDS_DIR / board}",
        f"-L{COMMON_DIR}",
        f"-T{linker_script}",
        f"-Wl,-Map={out_dir / (name + '.map')}",
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


#: memory.ld symbols board_memory() reports, by the name it reports them under.
_MEMORY_KEYS = {
    "flash_base": "__flash_base",
    "flash_bytes": "__flash_size",
    "ram_base": "__ram_base",
    "ram_bytes": "__ram_size",
    "boot_bytes": "__boot_size",
    "record_base": "__record_base",
    "record_bytes": "__record_size",
    "app_base": "__app_base",
    "app_limit": "__app_limit",
    "handoff": "__handoff",
}
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([^;]+);", re.MULTILINE)
_SIZE_SUFFIX = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)([KM])\b")
_BINARY_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
               ast.FloorDiv: operator.floordiv, ast.Div: operator.floordiv}


def _ld_value(expression: str, symbols: dict[str, int], where: str) -> int:
    """Evaluate a linker-script expression of numbers, K/M sizes, symbols and + - * /."""
    text = _SIZE_SUFFIX.sub(lambda m: f"({m.group(1)}*{1024 if m.group(2) == 'K' else 1024 * 1024})", expression)

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in symbols:
            return symbols[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
            return _BINARY_OPS[type(node.op)](value(node.left), value(node.right))
        raise FirmwareBuildError(f"{where}: cannot evaluate {expression.strip()!r}")

    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise FirmwareBuildError(f"{where}: cannot parse {expression.strip()!r}") from None
    return value(tree.body)


def board_memory(board: str) -> dict[str, int]:
    """The board's memory map and flash layout, read from its memory.ld (the linker's own input).

    Keys: flash_base, flash_bytes, ram_base, ram_bytes, boot_bytes, record_base,
    record_bytes, app_base, app_limit, app_max_bytes (app_limit - app_base: the
    largest image the bootloader accepts), handoff (address of the hand-off word).
    """
    path = _board_dir(board) / "memory.ld"
    text = re.sub(r"/\*.*?\*/", " ", path.read_text(), flags=re.DOTALL)
    symbols: dict[str, int] = {}
    for match in _ASSIGNMENT.finditer(text):
        symbols[match.group(1)] = _ld_value(match.group(2), symbols, str(path))
    missing = [symbol for symbol in _MEMORY_KEYS.values() if symbol not in symbols]
    if missing:
        raise FirmwareBuildError(f"{path} does not define {', '.join(missing)}")
    memory = {key: symbols[symbol] for key, symbol in _MEMORY_KEYS.items()}
    memory["app_max_bytes"] = memory["app_limit"] - memory["app_base"]
    return memory
