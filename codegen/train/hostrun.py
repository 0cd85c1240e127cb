"""The generated training step compiled for this machine and driven through cffi.

:class:`HostTrainer` takes the same calls as :class:`~codegen.train.model.TrainModel`
(one step, a prediction) and reads the parameters back as NumPy arrays, so tests
and ``--backend host-c`` compare them with the reference after every step.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cffi
import numpy as np

from .. import __version__
from ..build import build_runner, build_shared
from ..emit.c import environment
from ..hostrun import run_sanitized_exe
from .arith import Params
from .emit import TrainPlan, static_ram_bytes, write
from .model import TrainModel

CDEF = """
typedef struct {
    int8_t *weights; int32_t *weights_exp; int32_t *bias; int16_t *mu; int32_t *offset;
    int32_t channels; int32_t activation;
} tsn_train_layer;
void %(p)s_init(uint32_t seed);
int32_t %(p)s_step(const int8_t *input, int32_t input_exp, int32_t label, int32_t *loss_q16);
int32_t %(p)s_predict(const int8_t *input, int32_t input_exp);
int32_t %(p)s_failed_layer(void);
const tsn_train_layer *%(p)s_layer(int32_t i);
"""

STATUS = {1: "a sum overflowed int32", 2: "weights grew past the int8 exponent limit"}


class HostTrainer:
    def __init__(self, model: TrainModel, gen_dir: Path, seed: int, prefix: str = "train"):
        gen_dir = Path(gen_dir)
        self.plan: TrainPlan = write(model, gen_dir, prefix)
        self.model, self.prefix = model, prefix
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(gen_dir.glob("*.[ch]")))).hexdigest()[:16]
        self.ffi = cffi.FFI()
        self.ffi.cdef(CDEF % {"p": prefix})
        self.lib = self.ffi.dlopen(str(build_shared(gen_dir, gen_dir / "build" / f"lib{prefix}-{digest}.so")))
        self._fn("init")(seed & 0xFFFFFFFF)
        self.static_bytes = static_ram_bytes(model)

    def _fn(self, name):
        return getattr(self.lib, f"{self.prefix}_{name}")

    def step(self, q: np.ndarray, exp: int, label: int) -> tuple[int, int, int]:
        """One step; returns (status, loss Q16, failing layer)."""
        loss = self.ffi.new("int32_t *")
        data = np.ascontiguousarray(q, dtype=np.int8)
        status = self._fn("step")(self.ffi.from_buffer("int8_t[]", data), exp, label, loss)
        return int(status), int(loss[0]), int(self._fn("failed_layer")())

    def predict(self, q: np.ndarray, exp: int) -> int:
        data = np.ascontiguousarray(q, dtype=np.int8)
        return int(self._fn("predict")(self.ffi.from_buffer("int8_t[]", data), exp))

    def params(self) -> dict[int, Params]:
        """The board-side parameters in the reference's layout."""
        out = {}
        for i, ref in self.model.params.items():
            layer = self._fn("layer")(i)
            n, c = ref.w.size, layer.channels
            w = np.frombuffer(self.ffi.buffer(layer.weights, n), np.int8).reshape(ref.w.shape).copy()
            b = np.frombuffer(self.ffi.buffer(layer.bias, 4 * c), np.int32).astype(np.int64)
            mu = off = None
            if layer.mu != self.ffi.NULL:
                mu = np.frombuffer(self.ffi.buffer(layer.mu, 2 * c), np.int16).astype(np.int64)
                off = np.frombuffer(self.ffi.buffer(layer.offset, 4 * c), np.int32).astype(np.int64)
            out[i] = Params(w, b, int(layer.weights_exp[0]), mu, off)
        return out



def compare_params(ref: dict[int, Params], got: dict[int, Params], when: str) -> str | None:
    """None if every parameter is the same integer on both sides, else what differs first."""
    for i, p in ref.items():
        q = got[i]
        if not (np.array_equal(p.w, q.w) and p.w_exp == q.w_exp):
            return f"{when}: layer {i} weights differ"
        if not np.array_equal(p.b, q.b):
            return f"{when}: layer {i} bias differs"
        if (p.mu is None) != (q.mu is None) or (
                p.mu is not None and not (np.array_equal(p.mu, q.mu) and np.array_equal(p.off, q.off))):
            return f"{when}: layer {i} LAC parameters differ"
    return None

def run_sanitized(model: TrainModel, gen_dir: Path, seed: int, samples: np.ndarray, exp: int,
                  labels: np.ndarray, prefix: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Steps through the runner built with AddressSanitizer and UBSan; returns (status, loss Q16) per step."""
    gen_dir = Path(gen_dir)
    write(model, gen_dir, prefix)
    work = gen_dir / "build"
    work.mkdir(parents=True, exist_ok=True)
    runner_c = work / "tsn_train_runner.c"
    context = {"version": __version__, "source_name": Path(model.graph.source).name, "model_hash": "",
               "prefix": prefix, "PREFIX": prefix.upper(), "seed": seed & 0xFFFFFFFF}
    runner_c.write_text(environment().get_template("host/tsn_train_runner.c.j2").render(context))
    exe = build_runner(gen_dir, runner_c, work / "train-runner-asan")
    records = b"".join(np.array([label, exp], np.int32).tobytes() + np.ascontiguousarray(x, np.int8).tobytes()
                       for x, label in zip(samples, labels))
    stdout = run_sanitized_exe(exe, records, "sanitized training runner")
    out = np.frombuffer(stdout, np.int32).reshape(-1, 2)
    return out[:, 0], out[:, 1]
