"""Drive the ALQ accelerator on a board (hw/top.py's UART top) over a serial port, a model layer by layer.

Per ALQ layer the host schedules the unit sets (``hw.driver.schedule``), sends each set's frames
(``hw.top.frames``) and reads its result beats (``hw.top.results``) before the next set; average pools
run on the host (``reference.layer_forward``). Every layer must equal ``codegen/alq/reference``
bit for bit (MismatchError, exit 8).

The board cannot tell what it was built with, so the host's :class:`CoreParams` must be the bitstream's
(the ``--lanes --width ...`` options of ``tinysyn hw verilog``/``synth``/``emulate``). Other sizes shift the
frames: the board then answers too little (BoardTimeoutError) or wrongly (MismatchError).

    with contextlib.closing(open_port("/dev/ttyUSB1")) as port:
        outputs, runs = run_model(port, CoreParams(4, 256), model, x)
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import serial

from codegen.alq import reference
from codegen.alq.format import AlqLayer, AlqModel
from codegen.errors import BoardError, BoardTimeoutError, InputError, MismatchError
from host.transport import read_some, write_all
from hw.core import CoreParams
from hw.driver import check_params, cycle_model, gather, mappings, schedule
from hw.top import frames, nbytes, results

DEFAULT_TIMEOUT = 5.0  # seconds without an answer before the board counts as gone
#: Bytes sent before taking what the board has answered: neither side's buffer fills while the other waits.
SEND_CHUNK = 1024


@dataclass
class LayerRun:
    """One layer on the board: wall time and bytes of its exchanges, and the core's compute cycles."""

    index: int
    kind: str
    sets: int = 0
    sent: int = 0
    received: int = 0
    seconds: float = 0.0
    cycles: int = 0  # driver.cycle_model: the core fed every cycle


def describe(params: CoreParams) -> str:
    return (f"{params.lanes} lanes x {params.width} bits, acc {params.acc_width}, coef {params.coef_bits} bits, "
            f"{'per-lane' if params.per_lane_acts else 'broadcast'} activations, "
            f"{params.max_groups} groups of up to {params.max_words} words")


def check_model(model: AlqModel, x: np.ndarray, params: CoreParams) -> None:
    """One-line InputError, before anything is sent, unless ``x`` and every layer fit the board's core."""
    x = np.asarray(x)
    if x.shape != tuple(model.input_shape) or not np.issubdtype(x.dtype, np.integer):
        raise InputError(f"input is {x.dtype} {x.shape}; the model reads integers {tuple(model.input_shape)}")
    options = {k: v for k, v in dataclasses.asdict(params).items()
               if k not in ("lanes", "width", "max_groups", "max_words")}  # check_params sizes these to the layer
    for i, layer in enumerate(model.layers):
        where = f"layer {i} ({layer.kind})"
        try:
            check_params(layer, np.zeros(layer.in_shape, np.int64), params.lanes, params.width, **options)
        except InputError as e:
            raise InputError(f"{where}: {e}") from None
        if not layer.alq:
            continue
        # A table entry per group, a word counter to the longest group: a set with more runs past them unnoticed.
        words = -(-layer.n // params.width)
        if layer.groups > params.max_groups or words > params.max_words:
            raise InputError(f"{where}: {layer.groups} groups of up to {words} words; the board's core holds "
                             f"{params.max_groups} groups of up to {params.max_words} words")
        if not mappings(layer, params):
            raise InputError(f"{where}: the board's core has neither per-lane activations nor the table entries "
                             f"(a live group and activation base each) to run it")


def exchange(port: serial.SerialBase, data: bytes, expect: int, timeout: float) -> bytes:
    """Send ``data``, then read ``expect`` bytes back; BoardTimeoutError after ``timeout`` s of silence past the
    time ``data`` takes on the line at the port's baud rate (a UART's flush waits for it, a pty's does not)."""
    wait = timeout + 10 * len(data) / port.baudrate  # 8N1: 10 bits a byte
    got = bytearray()
    for k in range(0, len(data), SEND_CHUNK):
        write_all(port, data[k:k + SEND_CHUNK])
        if len(got) < expect:
            got += read_some(port, 0, expect - len(got))
    while len(got) < expect:
        chunk = read_some(port, wait, expect - len(got))
        if not chunk:
            raise BoardTimeoutError(f"no answer for {wait:.1f} s: {len(got)} of {expect} result bytes")
        got += chunk
    return bytes(got)


def run_layer(port: serial.SerialBase, params: CoreParams, layer: AlqLayer, x: np.ndarray, frac: int,
              run: LayerRun, timeout: float = DEFAULT_TIMEOUT) -> tuple[np.ndarray, int]:
    """One layer (an ALQ layer on the board, else on the host) -> (int64 [OH, OW, O], its fraction bits),
    measured into ``run``; MismatchError unless it equals the reference."""
    want, out_frac = reference.layer_forward(layer, x, frac)
    if not layer.alq:
        return want, out_frac
    sets = schedule(layer, reference.layer_codes(layer, x, frac), params)
    beat = nbytes(params.result_layout)
    outs = []
    start = time.monotonic()
    for k, s in enumerate(sets):
        data = frames(params, s)
        try:  # one result beat per row of the set's outputs (driver.gather puts them in place)
            got = exchange(port, data, beat * len(s.outputs), timeout)
        except BoardTimeoutError as e:
            raise BoardTimeoutError(f"unit set {k + 1} of {len(sets)}: {e}") from None
        outs.append(results(params, got))
        run.sent, run.received = run.sent + len(data), run.received + len(got)
    run.seconds, run.sets, run.cycles = time.monotonic() - start, len(sets), cycle_model(sets, params.latency)
    y = gather(sets, outs).reshape(want.shape)
    if not np.array_equal(y, want):
        at = tuple(int(v) for v in np.argwhere(y != want)[0])
        raise MismatchError(f"the board differs from the reference at {at}: {int(y[at])} != {int(want[at])} "
                            f"({int((y != want).sum())} of {y.size} elements)")
    return y, out_frac


def run_model(port: serial.SerialBase, params: CoreParams, model: AlqModel, x: np.ndarray,
              timeout: float = DEFAULT_TIMEOUT,
              on_layer: Callable[[LayerRun], None] | None = None) -> tuple[list[np.ndarray], list[LayerRun]]:
    """Every layer's output and run, each == the reference; errors name the layer. ``on_layer`` sees each run."""
    check_model(model, x, params)
    port.write_timeout = timeout  # a board that stops reading must not block the host forever
    port.reset_input_buffer()  # nothing stale in front of the first result
    outputs, runs, frac = [], [], model.input_frac
    for i, layer in enumerate(model.layers):
        run = LayerRun(i, layer.kind)
        try:
            x, frac = run_layer(port, params, layer, x, frac, run, timeout)
        except MismatchError as e:
            raise MismatchError(f"layer {i} ({layer.kind}): {e}; is the board's core {describe(params)}?",
                                {"layers": [dataclasses.asdict(r) for r in runs]}) from None
        except BoardTimeoutError as e:
            raise BoardTimeoutError(f"layer {i} ({layer.kind}): {e}; is the board's core {describe(params)}?") from None
        except BoardError as e:
            raise type(e)(f"layer {i} ({layer.kind}): {e}") from None
        outputs.append(x)
        runs.append(run)
        if on_layer:
            on_layer(run)
    return outputs, runs
