"""Compile generated C: a host shared library, a sanitized host runner, Cortex-M4 objects.

Every compile uses -Wall -Wextra -Werror; a failure raises BuildError with the
first diagnostic line, never a wall of compiler output.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .errors import BuildError

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
HOST_FLAGS = [*WARNINGS, "-O2", "-fPIC"]
SANITIZE_FLAGS = [*WARNINGS, "-O1", "-g", "-fno-omit-frame-pointer",
                  "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
CORTEX_M4_CC = "arm-none-eabi-gcc"
CORTEX_M4F_CPU = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
CORTEX_M4_FLAGS = [*WARNINGS, *CORTEX_M4F_CPU, "-O2", "-ffunction-sections", "-fdata-sections"]
HOST_CC = "cc"

# compiler, archiver and flags per target, for the Makefile generated beside the model
TOOLCHAINS = {
    "host": ("cc", "ar", HOST_FLAGS),
    "cortex-m4": (CORTEX_M4_CC, "arm-none-eabi-ar", CORTEX_M4_FLAGS),
}


def _run(cmd: list[str], what: str) -> None:
    if shutil.which(cmd[0]) is None:
        raise BuildError(f"{what}: compiler {cmd[0]!r} not found (run `make toolchain`)")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if "error" in ln] or proc.stderr.splitlines() or ["?"]
        raise BuildError(f"{what}: {lines[0].strip()}")


def sources(gen_dir: Path, with_entry: bool = True) -> list[str]:
    files = sorted(str(p) for p in Path(gen_dir).glob("*.c"))
    return files if with_entry else [f for f in files if not f.endswith("_entry.c")]


def build_shared(gen_dir: Path, out: Path | None = None) -> Path:
    """Build the generated model as a host shared library (for cffi)."""
    gen_dir = Path(gen_dir)
    out = Path(out or gen_dir / "build" / "libmodel.so")
    out.parent.mkdir(parents=True, exist_ok=True)
    _run([HOST_CC, *HOST_FLAGS, "-shared", "-o", str(out), *sources(gen_dir)], f"host build of {gen_dir}")
    return out


def build_runner(gen_dir: Path, runner_c: Path, out: Path, sanitize: bool = True) -> Path:
    """Build the stdin/stdout host runner around the model, by default under ASan and UBSan."""
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = SANITIZE_FLAGS if sanitize else [*WARNINGS, "-O2"]
    _run([HOST_CC, *flags, "-I", str(gen_dir), "-o", str(out), str(runner_c), *sources(gen_dir)],
         f"host runner build of {gen_dir}")
    return out


def build_cortex_m4(gen_dir: Path, out_dir: Path | None = None, extra_flags: tuple[str, ...] = ()) -> list[Path]:
    """Compile every generated source for Cortex-M4F; returns the object files."""
    gen_dir = Path(gen_dir)
    out_dir = Path(out_dir or gen_dir / "build" / "cortex-m4")
    out_dir.mkdir(parents=True, exist_ok=True)
    objects = []
    for src in sources(gen_dir):
        obj = out_dir / (Path(src).stem + ".o")
        _run([CORTEX_M4_CC, *CORTEX_M4_FLAGS, *extra_flags, "-c", src, "-o", str(obj)], f"Cortex-M4 build of {src}")
        objects.append(obj)
    return objects
