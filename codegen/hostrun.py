"""Run generated C on the host: in-process through cffi, or as a sanitized runner process.

Both return what the NumPy reference returns: the model output, or every
layer's output, batched on axis 0, so tests compare them with ``==``.
"""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import cffi
import numpy as np

from .build import build_runner, build_shared
from .emit.c import environment, template_context
from .errors import BuildError
from .pipeline import Program
from .ref import prepare_input

CDEF = """
int {p}_init(void);
int {p}_invoke_layer(int32_t index);
int8_t *{p}_input(void);
int8_t *{p}_layer_output(int32_t index);
"""
SUBNET_CDEF = "int {p}_set_subnet(int32_t k);\n"  # DRESS models only


def _layer_shapes(program: Program) -> list[tuple[int, ...]]:
    g = program.graph
    return [tuple(g.op_output(layer.op).shape[1:]) for layer in program.layers]


class HostModel:
    """A generated model compiled into a shared library and loaded with cffi."""

    def __init__(self, program: Program, gen_dir: Path):
        self.program = program
        gen_dir = Path(gen_dir)
        # a fresh file name per build: dlopen would hand back a stale library of the same path
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(gen_dir.glob("*.[ch]")))).hexdigest()[:16]
        self.ffi = cffi.FFI()
        self.ffi.cdef((CDEF + (SUBNET_CDEF if program.sparsities else "")).format(p=program.prefix))
        self.lib = self.ffi.dlopen(str(build_shared(gen_dir, gen_dir / "build" / f"lib{program.prefix}-{digest}.so")))
        self._call("init")

    def _call(self, name: str, *args):
        status = getattr(self.lib, f"{self.program.prefix}_{name}")(*args)
        if status != 0:
            raise BuildError(f"{self.program.prefix}_{name}{args} returned status {status}")

    def set_subnet(self, k: int) -> int:
        """A DRESS model's ``<prefix>_set_subnet(k)``: its status, 0 on success."""
        return getattr(self.lib, f"{self.program.prefix}_set_subnet")(k)

    def run_layers(self, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's output for a batch of inputs."""
        x = prepare_input(self.program.graph, x)
        shapes = _layer_shapes(self.program)
        outs = [np.empty((len(x),) + s, dtype=np.int8) for s in shapes]
        p = self.program.prefix
        input_ptr = getattr(self.lib, f"{p}_input")()
        for n, sample in enumerate(x):
            self.ffi.memmove(input_ptr, np.ascontiguousarray(sample).tobytes(), sample.nbytes)
            for i, out in enumerate(outs):
                self._call("invoke_layer", i)
                ptr = getattr(self.lib, f"{p}_layer_output")(i)
                out[n] = np.frombuffer(self.ffi.buffer(ptr, out[n].nbytes), dtype=np.int8).reshape(out.shape[1:])
        return outs

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.run_layers(x)[-1]


def run_sanitized(program: Program, gen_dir: Path, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's output, computed by the runner built with AddressSanitizer and UBSan.

    A DRESS model runs each sample on every sub-net in turn: each layer's output then has a
    leading sub-net axis, [K, samples, ...].
    """
    gen_dir = Path(gen_dir)
    work = gen_dir / "build"
    work.mkdir(parents=True, exist_ok=True)
    runner_c = work / "tsn_host_runner.c"
    runner_c.write_text(environment().get_template("host/tsn_host_runner.c.j2").render(template_context(program)))
    exe = build_runner(gen_dir, runner_c, work / "runner-asan")
    x = prepare_input(program.graph, x)
    stdout = run_sanitized_exe(exe, np.ascontiguousarray(x).tobytes(), f"sanitized runner of {program.prefix}")
    shapes = _layer_shapes(program)
    per_sample = sum(int(np.prod(s)) for s in shapes)
    data = np.frombuffer(stdout, dtype=np.int8)
    expected = per_sample * len(x) * max(1, len(program.sparsities))
    if data.size != expected:
        raise BuildError(f"sanitized runner of {program.prefix} wrote {data.size} bytes, expected {expected}")
    subnets = max(1, len(program.sparsities))
    data = data.reshape(len(x), subnets, per_sample).swapaxes(0, 1)
    outs, start = [], 0
    for s in shapes:
        size = int(np.prod(s))
        outs.append(data[..., start:start + size].reshape((subnets, len(x)) + s))
        start += size
    return [out if program.sparsities else out[0] for out in outs]


def run_sanitized_exe(exe: Path, stdin: bytes, what: str) -> bytes:
    """Run a runner built with ASan and UBSan; its stdout, or BuildError quoting the sanitizer's report."""
    proc = subprocess.run([str(exe)], input=stdin, capture_output=True, check=False,
                          env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"})
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise BuildError(f"{what} failed (exit {proc.returncode}): "
                         + next((ln for ln in lines if "ERROR" in ln or "runtime error" in ln), lines[0]))
    return proc.stdout
