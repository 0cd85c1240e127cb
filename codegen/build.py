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
# The fp32 training step must round every product and every sum as the NumPy reference does:
# no fused multiply-add (GCC contracts a*b+c into one on the Cortex-M4F FPU in GNU C modes).
EXACT_FLOAT = ["-ffp-contract=off"]
HOST_FLAGS = [*WARNINGS, *EXACT_FLOAT, "-O2", "-fPIC"]
SANITIZE_FLAGS = [*WARNINGS, *EXACT_FLOAT, "-O1", "-g", "-fno-omit-frame-pointer",
                  "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
CORTEX_M4_CC = "arm-none-eabi-gcc"
CORTEX_M4F_CPU = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
CORTEX_M4_FLAGS = [*WARNINGS, *EXACT_FLOAT, *CORTEX_M4F_CPU, "-O2", "-ffunction-sections", "-fdata-sections"]
HOST_CC = "cc"

# compiler, archiver and flags per target, for the Makefile generated beside the model
TOOLCHAINS = {
    "host": ("cc", "ar", HOST_FLAGS),
    "cortex-m4": (CORTEX_M4_CC, "arm-none-eabi-ar", CORTEX_M4_FLAGS),
}


#: Words that mark the line worth quoting in a compiler's or linker's output.
ERROR_MARKERS = ("error", "undefined reference", "multiple definition", "overflowed", "will not fit")


def first_error_line(output: str) -> str:
    """The diagnostic line worth quoting from a compiler's or linker's output."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    # collect2's "ld returned 1 exit status" is only the summary; quote the cause.
    candidates = [line for line in lines if "ld returned" not in line] or lines
    for line in candidates:
        if any(marker in line.lower() for marker in ERROR_MARKERS):
            return line
    return candidates[0] if candidates else "(no compiler output)"


def run_compiler(cmd: list[str], what: str, error: type[BuildError] = BuildError) -> None:
    """Run a compile or link step; on failure raise ``error`` with one line naming what and why."""
    if shutil.which(cmd[0]) is None:
        raise error(f"{what}: {cmd[0]!r} not found (run `make toolchain`)")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:  # compiler vanished or is not executable
        raise error(f"{what}: cannot run {cmd[0]}: {exc}") from None
    if proc.returncode != 0:
        raise error(f"{what} failed: {first_error_line(proc.stderr + proc.stdout)}")


def c_sources(directory: Path) -> list[Path]:
    """The C files of a directory, in a stable order."""
    return sorted(p for p in Path(directory).glob("*.c") if p.is_file())


def build_shared(gen_dir: Path, out: Path | None = None) -> Path:
    """Build the generated model as a host shared library (for cffi)."""
    gen_dir = Path(gen_dir)
    out = Path(out or gen_dir / "build" / "libmodel.so")
    out.parent.mkdir(parents=True, exist_ok=True)
    run_compiler([HOST_CC, *HOST_FLAGS, "-shared", "-o", str(out), *map(str, c_sources(gen_dir))], f"host build of {gen_dir}")
    return out


def build_runner(gen_dir: Path, runner_c: Path, out: Path, sanitize: bool = True) -> Path:
    """Build the stdin/stdout host runner around the model, by default under ASan and UBSan."""
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = SANITIZE_FLAGS if sanitize else [*WARNINGS, *EXACT_FLOAT, "-O2"]
    run_compiler([HOST_CC, *flags, "-I", str(gen_dir), "-o", str(out), str(runner_c), *map(str, c_sources(gen_dir))],
         f"host runner build of {gen_dir}")
    return out


def build_cortex_m4(gen_dir: Path, out_dir: Path | None = None, extra_flags: tuple[str, ...] = ()) -> list[Path]:
    """Compile every generated source for Cortex-M4F; returns the object files."""
    gen_dir = Path(gen_dir)
    out_dir = Path(out_dir or gen_dir / "build" / "cortex-m4")
    out_dir.mkdir(parents=True, exist_ok=True)
    objects = []
    for src in c_sources(gen_dir):
        obj = out_dir / (src.stem + ".o")
        run_compiler([CORTEX_M4_CC, *CORTEX_M4_FLAGS, *extra_flags, "-c", str(src), "-o", str(obj)],
                     f"Cortex-M4 build of {src}")
        objects.append(obj)
    return objects
