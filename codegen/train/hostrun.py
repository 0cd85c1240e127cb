"""The generated training step compiled for this machine and driven through cffi.

:class:`HostTrainer` takes the same calls as :class:`~codegen.train.model.TrainModel`
(one step, a prediction) and reads the parameters back as NumPy arrays, so tests
and ``--backend host-c`` compare them with the reference after every step.
"""
from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import cffi
import numpy as np

from .. import __version__
from ..build import build_runner, build_shared
from ..emit.c import environment
from ..hostrun import run_sanitized_exe
from . import state
from .arith import Params
from .emit import TrainPlan, static_ram_bytes, write
from .model import TrainModel

CDEF = """
typedef struct { const void *data; int32_t bytes; } tsn_train_block;
void %(p)s_init(uint32_t seed);
int32_t %(p)s_step(const int8_t *input, int32_t input_exp, int32_t label, %(loss)s *loss);
int32_t %(p)s_predict(const int8_t *input, int32_t input_exp);
int32_t %(p)s_failed_layer(void);
void %(p)s_set_lr(int32_t lr_q);
const tsn_train_block *%(p)s_blocks(void);
"""

STATUS = {1: "a sum overflowed int32", 2: "weights grew past their limit", 3: "a logit is not finite"}  # TSN_TRAIN_*
LOSS_TYPE = {"int8": "int32_t", "fp32": "float"}  # <PREFIX>_LOSS_T: Q16 integer or float


class HostTrainer:
    def __init__(self, model: TrainModel, gen_dir: Path, seed: int, prefix: str = "train", memory: str = "small"):
        gen_dir = Path(gen_dir)
        self.plan: TrainPlan = write(model, gen_dir, prefix, memory=memory)
        self.model, self.prefix = model, prefix
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(gen_dir.glob("*.[ch]")))).hexdigest()[:16]
        self.ffi = cffi.FFI()
        self.loss_type = LOSS_TYPE[model.mode]
        self.ffi.cdef(CDEF % {"p": prefix, "loss": self.loss_type})
        self.lib = self.ffi.dlopen(str(build_shared(gen_dir, gen_dir / "build" / f"lib{prefix}-{digest}.so")))
        self._fn("init")(seed & 0xFFFFFFFF)
        self.static_bytes = static_ram_bytes(model)
        self.blocks = state.layout(model)

    def _fn(self, name):
        return getattr(self.lib, f"{self.prefix}_{name}")

    def step(self, q: np.ndarray, exp: int, label: int) -> tuple[int, int, int]:
        """One step; returns (status, loss as the reference gives it: Q16 int or float, failing layer)."""
        loss = self.ffi.new(f"{self.loss_type} *")
        data = np.ascontiguousarray(q, dtype=np.int8)
        status = self._fn("step")(self.ffi.from_buffer("int8_t[]", data), exp, label, loss)
        return int(status), loss[0], int(self._fn("failed_layer")())

    def predict(self, q: np.ndarray, exp: int) -> int:
        data = np.ascontiguousarray(q, dtype=np.int8)
        return int(self._fn("predict")(self.ffi.from_buffer("int8_t[]", data), exp))

    def set_lr(self, lr_q: int) -> None:
        self._fn("set_lr")(lr_q)

    def params(self) -> dict[int, Params]:
        """The C side's parameters, read through its state blocks, in the reference's layout."""
        blocks = self._fn("blocks")()
        data = b"".join(bytes(self.ffi.buffer(blocks[k].data, blocks[k].bytes)) for k in range(len(self.blocks)))
        return state.decode(self.model, data, "host C")


def loss_from_bits(mode: str, bits: int):
    """The loss from its 32 raw bits as a board sends them: a Q16 int32 in int8, a float32 in fp32."""
    raw = struct.pack("<I", bits & 0xFFFFFFFF)
    return float(np.frombuffer(raw, "<f4")[0]) if mode == "fp32" else int(np.frombuffer(raw, "<i4")[0])


def same_loss(a, b) -> bool:
    """The same loss: equal integers (int8 Q16), or the same float32 bits (fp32, so NaN == NaN)."""
    if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
        return a == b
    return np.float32(a).tobytes() == np.float32(b).tobytes()


def step_difference(when: str, who: str, status: int, layer: int, loss, reference_loss) -> str | None:
    """What differs first between one step of generated C (``who``: "C", "board") and the reference's
    completed step: a failure status, then the loss; None if neither (the parameters are compared apart)."""
    if status != 0:
        why = STATUS.get(status, f"status {status}")
        return f"{when}: the {who} failed ({why}, layer {layer}), the reference did not"
    if not same_loss(loss, reference_loss):
        return f"{when}: loss {loss} from the {who}, {reference_loss} in the reference"
    return None


def compare_params(ref: dict[int, Params], got: dict[int, Params], when: str) -> str | None:
    """None if every parameter is the same on both sides (integers, or floats compared ==), else what differs first."""
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
    """Steps through the runner built with AddressSanitizer and UBSan; returns (status, loss) per step
    (loss Q16 int32 in int8, float32 in fp32)."""
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
    return out[:, 0], out[:, 1].view(np.float32) if model.mode == "fp32" else out[:, 1]
