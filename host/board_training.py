"""On-device training over serial: the training app (firmware/apps/train, PROTOCOL.md section 5).

The host generates the training step for Cortex-M4F, builds the training app
around it, flashes it through the serial bootloader (on the emulated board it
starts QEMU first), then streams every sample with a CRC-32, runs the step on
the board and checks the board against the NumPy reference after every step:
the loss and the status from the step's reply, the whole trainable state by
its CRC-32 (and byte for byte every ``full_every`` steps and at the end).

    with BoardTrainer(reference, "qemu-mps2-an386", work=Path("build/train")) as board:
        board.set_lr(6554)
        loss = board.step(q, exp, label)   # the reference's loss; raises on a mismatch
        board.report()                     # instructions per step, stack, RAM

A corrupted sample (the board's CRC differs from the announced one) or a board
that stops answering ends the run with a one-line error; the reference keeps
the weights of the last step both sides completed.
"""
from __future__ import annotations

import contextlib
import statistics
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np

from codegen.errors import (
    BoardTimeoutError,
    ProtocolError,
    ResourceError,
    TrainingError,
)
from codegen.train import state
from codegen.train.emit import plan, static_ram_bytes, write
from codegen.train.hostrun import compare_params, loss_from_bits, step_difference
from codegen.train.intmath import TrainingOverflow
from codegen.train.model import TrainModel
from host.console import ConsoleClient, bracketed
from host.firmware_build import (
    board_memory,
    build_bootloader,
    build_firmware,
    elf_sizes,
)
from host.flasher import Flasher
from host.icount import timer_cost
from host.profiler import (
    FIRMWARE_OVERHEAD_BYTES,
    STACK_BYTES,
    board_url,
    check_image_fits,
    flash_summary,
)
from host.qemu import DEFAULT_ICOUNT_SHIFT
from host.transport import open_port

#: The prefix the training app includes the generated step under (train_model.h).
APP_PREFIX = "train_model"
#: Sample bytes per `trn-data <hex>%` command: 2 hex digits each, within the 80-character command.
DATA_CHUNK_BYTES = 32
#: Seconds one training step may take on the emulator.
STEP_TIMEOUT = 60.0


class TrainingStopped(TrainingError):
    """The board got a corrupted sample or stopped answering: the run ends, the last good weights stay."""


@dataclass(frozen=True)
class StepReply:
    steps: int
    status: int
    loss_bits: int
    failed_layer: int
    ticks: int
    stack_bytes: int
    state_crc: int


class TrainClient(ConsoleClient):
    """The training app's commands."""

    def info(self) -> dict[str, str | int]:
        return self.fields("trn-info")

    def init(self, seed: int) -> int:
        """Parameters to their start values; returns the CRC-32 of the state."""
        return int(bracketed(self.command(f"trn-init {seed & 0xFFFFFFFF}"), "trn-init", self.where, "trn-init"), 16)

    def set_lr(self, lr_q: int) -> None:
        self.command(f"trn-lr {lr_q}")

    def load_sample(self, data: bytes, exp: int, label: int) -> None:
        """Announce the sample with the CRC-32 of (label, exp as int32 LE, data), then send its bytes."""
        self.command(f"trn-sample {label} {exp} {zlib.crc32(struct.pack('<ii', label, exp) + data):08x}")
        self.send_sample(data)

    def send_sample(self, data: bytes) -> None:
        """The announced sample's bytes, in `trn-data` chunks."""
        done = False
        for offset in range(0, len(data), DATA_CHUNK_BYTES):
            done = "m-trn-sample-done" in self.command("trn-data " + data[offset:offset + DATA_CHUNK_BYTES].hex())
        if not done:
            raise ProtocolError(f"{self.where}: the board did not confirm the sample (no m-trn-sample-done)")

    def step(self) -> StepReply:
        body = bracketed(self.command("trn-step", timeout=STEP_TIMEOUT), "trn-step", self.where, "trn-step")
        try:
            steps, status, loss, layer, ticks, stack, crc = body.split(",")
            return StepReply(int(steps), int(status), int(loss, 16), int(layer), int(ticks), int(stack), int(crc, 16))
        except ValueError:
            raise ProtocolError(f"{self.where}: malformed trn-step reply {body!r}") from None

    def state(self) -> bytes:
        return self.hex_payload("trn-state", "trn-state")


def check_fits(model: TrainModel, board: str, step_memory: str = "small") -> None:
    """ResourceError naming the sizes if the step cannot fit the board; runs before anything is generated."""
    memory = board_memory(board)
    params = static_ram_bytes(model)  # the trained copies in RAM; their start values in flash
    ram = plan(model.graph, model.mode, step_memory).arena_bytes + params + STACK_BYTES + FIRMWARE_OVERHEAD_BYTES
    flash = params + FIRMWARE_OVERHEAD_BYTES
    source = model.graph.source
    if ram > memory["ram_bytes"]:
        raise ResourceError(f"{source}: a {model.mode} training step needs about {ram:,} bytes of RAM (arena, "
                            f"parameters, stack {STACK_BYTES:,}), {board} has {memory['ram_bytes']:,}")
    if flash > memory["app_max_bytes"]:
        raise ResourceError(f"{source}: a {model.mode} training step needs about {flash:,} bytes of flash, "
                            f"{board} has {memory['app_max_bytes']:,} for the application")


def build(model: TrainModel, board: str, work: Path, memory: str = "small") -> tuple[Path, Path, dict[str, int]]:
    """Generate the step for Cortex-M4F, build the bootloader and the training app; (boot, app, app sizes)."""
    check_fits(model, board, memory)
    gen = work / "gen"
    write(model, gen, prefix=APP_PREFIX, target="cortex-m4", memory=memory)
    boot = build_bootloader(board, work / "boot")
    app = build_firmware(gen, board, "train", work / "app", image="app")
    sizes = elf_sizes(app)
    check_image_fits(sizes, board, app)
    return boot, app, sizes


class BoardTrainer:
    """A training backend on a board: the reference runs beside it and every step is compared.

    ``reference`` must hold its start parameters (no step taken yet): the
    generated step embeds them as its start values.
    """

    def __init__(self, reference: TrainModel, board: str, seed: int, work: Path, port: str | None = None,
                 full_every: int = 0, progress: bool = False, icount_shift: int = DEFAULT_ICOUNT_SHIFT,
                 memory: str = "small"):
        self.reference = reference
        self.board = board
        self.full_every = full_every
        self.icount_shift = icount_shift if port is None else None
        self.boot_elf, self.app_elf, self.sizes = build(reference, board, Path(work), memory)
        self._exit = contextlib.ExitStack()
        try:
            url = self._exit.enter_context(board_url(board, self.boot_elf, port, icount_shift))
            serial_port = self._exit.enter_context(contextlib.closing(open_port(url)))
            self.flash = Flasher(serial_port, progress=progress).flash(self.app_elf, boot=True)
            self.client = TrainClient(serial_port, where=url)
            self.client.resync()
            self.info = self.client.info()
            self._check_identity(seed)
        except BaseException:
            self._exit.close()
            raise
        self.steps = 0
        self.ticks: list[int] = []
        self.stack_max = 0
        self.mismatch: str | None = None

    def _check_identity(self, seed: int) -> None:
        start = state.state_bytes(self.reference)
        if self.info.get("mode") != self.reference.mode or self.info.get("state_bytes") != len(start):
            raise ProtocolError(f"{self.client.where}: the board runs {self.info.get('model')} "
                                f"({self.info.get('mode')}), not the training step just flashed")
        crc = self.client.init(seed)
        expected = zlib.crc32(start)
        if crc != expected:
            raise ProtocolError(f"{self.client.where}: start parameters on the board have CRC {crc:08x}, "
                                f"the reference's {expected:08x}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._exit.close()

    def set_lr(self, lr_q: int) -> None:
        self.reference.set_lr(lr_q)
        self.client.set_lr(lr_q)

    def step(self, q: np.ndarray, exp: int, label: int):
        """One step, the board's first, then the reference's; returns the reference's loss.

        The first difference is kept in ``mismatch``. A sample the board received
        corrupted, or a board that stops answering, stops the run (TrainingStopped)
        before the reference takes the step, so the last good weights stay.
        """
        t = self.steps
        try:
            self.client.load_sample(np.ascontiguousarray(q, np.int8).tobytes(), exp, label)
            reply = self.client.step()
        except (ProtocolError, BoardTimeoutError) as err:
            raise TrainingStopped(f"step {t}: {err}") from err
        self.steps += 1
        try:
            loss = self.reference.step(q, exp, label)
        except TrainingOverflow:
            if reply.status == 0 and self.mismatch is None:
                self.mismatch = f"step {t}: the reference diverged, the board did not"
            raise
        self.ticks.append(reply.ticks)
        self.stack_max = max(self.stack_max, reply.stack_bytes)
        if self.mismatch is None:
            self.mismatch = self._compare(t, reply, loss)
        return loss

    def _compare(self, t: int, reply: StepReply, loss) -> str | None:
        board_loss = loss_from_bits(self.reference.mode, reply.loss_bits)
        differs = step_difference(f"step {t}", "board", reply.status, reply.failed_layer, board_loss, loss)
        if differs:
            return differs
        crc_equal = reply.state_crc == zlib.crc32(state.state_bytes(self.reference))
        if crc_equal and not (self.full_every and (t + 1) % self.full_every == 0):
            return None
        return compare_params(self.reference.params, self._board_params(), f"step {t}") or (
            None if crc_equal else f"step {t}: state CRC differs")

    def _board_params(self) -> dict:
        return state.decode(self.reference, self.client.state(), self.client.where)

    def read_back(self) -> dict:
        """The board's parameters after the last step, compared with the reference's; for evaluation."""
        got = self._board_params()
        if self.mismatch is None and self.steps:
            self.mismatch = compare_params(self.reference.params, got, f"after step {self.steps - 1}")
        return got

    def report(self) -> dict:
        """Per-step cost on the board (the median over the steps) and its memory: the run report's board figures."""
        key, cost = timer_cost(self.info, self.icount_shift)
        per_step = round(statistics.median(map(cost, self.ticks))) if self.ticks else None
        emulated = key == "instructions"
        return {
            "instructions_per_step": per_step if emulated else None,
            "cycles_per_step": None if emulated else per_step,
            "peak_ram_bytes": int(self.info["arena_bytes"]) + int(self.info["model_static_bytes"]) + self.stack_max,
            "board": {
                "name": self.board,
                "arena_bytes": int(self.info["arena_bytes"]),
                "model_static_bytes": int(self.info["model_static_bytes"]),
                "stack_high_water_bytes": self.stack_max,
                "app_static_ram_bytes": int(self.info["static_ram_bytes"]),
                "flash_bytes": self.sizes["flash_bytes"],
                "timer": {"kind": self.info["timer"], "hz": self.info["timer_hz"],
                          "overhead_ticks": int(self.info["timer_overhead"]),
                          "icount_shift": self.icount_shift if emulated else None},
                "flash": flash_summary(self.flash),
            },
        }
