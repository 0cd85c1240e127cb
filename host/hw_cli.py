"""``tinysyn hw``: the xnor-popcount accelerator's simulation and Verilog (hw/README.md)."""
from __future__ import annotations

import functools
import io
import time
import zipfile
from pathlib import Path

import click
import numpy as np

from codegen.alq import format as alq_format
from codegen.errors import BoardError, InputError
from codegen.files import write_atomically

INPUT_KEY = "x"  # X.npz: the layer's input, integers [H, W, C] at 2^-input_frac of the layer file

lanes_option = click.option("--lanes", default=8, show_default=True, help="P: dot products per cycle.")
width_option = click.option("--width", default=64, show_default=True, help="W: bits per lane per cycle, a multiple of 32.")
acc_option = click.option("--acc-width", default=32, show_default=True, help="Signed accumulator bits.")
coef_option = click.option("--coef-bits", default=16, show_default=True,
                           help="Unsigned coefficient A*G_j bits (one multiplier a lane).")
acts_option = click.option("--per-lane-acts", is_flag=True,
                           help="An activation word per lane (else one for all lanes: depthwise runs a lane per output position).")
groups_option = click.option("--max-groups", default=64, show_default=True, help="Live-group table entries.")
words_option = click.option("--max-words", default=16, show_default=True, help="The most W-bit words in one group.")


def board_options(fn):
    """The core parameters a bitstream fixes and its host must know (host/accel.py), as ``params``."""
    for option in reversed((lanes_option, width_option, acc_option, coef_option, acts_option, groups_option,
                            words_option)):
        fn = option(fn)

    @functools.wraps(fn)
    def wrapper(*args, lanes, width, acc_width, coef_bits, per_lane_acts, max_groups, max_words, **kwargs):
        from hw.core import CoreParams

        try:
            params = CoreParams(lanes, width, acc_width=acc_width, coef_bits=coef_bits, per_lane_acts=per_lane_acts,
                                max_groups=max_groups, max_words=max_words)
        except ValueError as e:
            raise InputError(str(e)) from None
        return fn(*args, params=params, **kwargs)

    return wrapper


def _fail_cleanly(fn):
    """host.cli's one-line errors, looked up when called: host.cli registers this group as it loads."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from host.cli import _fail_cleanly as cleanly

        return cleanly(fn)(*args, **kwargs)

    return wrapper


@click.group()
def hw():
    """The ALQ xnor-popcount accelerator: simulate a layer, write Verilog, emulate a board, run a model on one."""


def _read_input(path: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            if INPUT_KEY not in z.files:
                raise InputError(f"{path}: no array {INPUT_KEY!r} (the layer's integer input [H, W, C])")
            return z[INPUT_KEY]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise InputError(f"{path}: not a .npz file ({e})") from None


@hw.command()
@click.option("--layer", "layer_path", required=True, type=click.Path(dir_okay=False),
              help="A one-layer ALQ model file (AlqModel.layer_file).")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help=f"A .npz whose {INPUT_KEY!r} holds the layer's integer input [H, W, C].")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="The layer's output, .npy.")
@click.option("--vcd", type=click.Path(dir_okay=False), help="Write the simulation's waveforms.")
@lanes_option
@width_option
@acc_option
@coef_option
@acts_option
@_fail_cleanly
def sim(layer_path, input_path, out_path, vcd, lanes, width, acc_width, coef_bits, per_lane_acts):
    """Run one layer on the simulated core; compare it with the NumPy reference (exit 8 if it differs)."""
    from hw.driver import check_params, simulate_layer

    model = alq_format.read(layer_path)
    if len(model.layers) != 1:
        raise InputError(f"{layer_path}: {len(model.layers)} layers; hw sim takes a one-layer file")
    layer = model.layers[0]
    x = _read_input(input_path)
    params = {"acc_width": acc_width, "coef_bits": coef_bits, "per_lane_acts": per_lane_acts}
    check_params(layer, x, lanes, width, **params)
    y, cycles = simulate_layer(layer, x, model.input_frac, lanes, width, vcd, **params)
    buffer = io.BytesIO()
    np.save(buffer, y)
    write_atomically(Path(out_path), buffer.getvalue())
    where = "on the host" if not layer.alq else f"{cycles} cycles at {lanes} lanes x {width} bits"
    click.echo(f"{layer.kind} {tuple(layer.in_shape)} -> {tuple(layer.out_shape)}: {where}, == reference; "
               f"wrote {out_path}")


@hw.command()
@click.option("--regs-every", default=2, show_default=True, help="Popcount adder levels per register.")
@click.option("--regs-first", default=0, show_default=True,
              help="Popcount adder levels before the first register (0: --regs-every).")
@click.option("--mul-reg", is_flag=True, help="A register between each lane's product and its accumulator.")
@click.option("--bias-reg", is_flag=True, help="A register after the biases' block RAM.")
@click.option("--result-fifo", default=0, show_default=True, type=click.IntRange(min=0),
              help="Result FIFO entries, at least the latency + 2 (0: none, the pipeline stalls on a waiting result).")
@click.option("--clk-freq", default=12e6, show_default=True, help="Clock, Hz (sets the UART divisor).")
@click.option("--baud", default=115200, show_default=True)
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False))
@_fail_cleanly
@board_options
def verilog(regs_every, regs_first, mul_reg, bias_reg, result_fifo, clk_freq, baud, out_path, params):
    """Write the UART top level as Verilog."""
    import dataclasses

    from hw.top import Top, to_verilog

    try:
        params = dataclasses.replace(params, regs_every=regs_every, regs_first=regs_first, mul_reg=mul_reg,
                                     bias_reg=bias_reg, result_fifo=result_fifo)
    except ValueError as e:
        raise InputError(str(e)) from None
    write_atomically(Path(out_path), to_verilog(Top(params, clk_freq, baud)).encode())
    click.echo(f"{out_path}: {params.lanes} lanes x {params.width} bits = {params.binary_macs_per_cycle} binary MACs "
               "per cycle")


@hw.command()
@click.option("--divisor", default=3, show_default=True, help="Clock cycles per UART bit (at least 3).")
@_fail_cleanly
@board_options
def emulate(divisor, params):
    """Run the UART top's RTL simulation behind a pty: a board for `tinysyn hw run --port`, until Ctrl-C."""
    from hw.emulate import LINE_BAUD, EmulatedBoard

    try:
        board = EmulatedBoard(params, divisor)
    except ValueError as e:
        raise InputError(str(e)) from None
    with board:
        click.echo(f"emulated board: {params.lanes} lanes x {params.width} bits, {divisor} clock cycles a UART bit")
        click.echo(f"connect to: {board.path} (tinysyn hw run --port {board.path} --baud {LINE_BAUD} "
                   f"and this command's core options)")
        click.echo("Ctrl-C stops the emulator")
        try:
            while board.alive():
                time.sleep(0.2)
        except KeyboardInterrupt:
            board.stop()
            rate, cycles = board.speed()
            click.echo(f"stopped after {board.cycles:,} cycles, {board.bytes_in + board.bytes_out:,} bytes "
                       f"({cycles:,.0f} cycles/s, {rate:,.0f} bytes/s while busy)")
            return
        raise BoardError(f"the emulated board stopped: {board.error or 'no reason given'}")


@hw.command()
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False), help="An ALQ model file.")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help=f"A .npz whose {INPUT_KEY!r} holds the model's integer input [H, W, C].")
@click.option("--port", required=True, help="The board's serial port: a device, a pty (tinysyn hw emulate), a URL.")
@click.option("--baud", default=115200, show_default=True, help="The bitstream's UART baud rate.")
@click.option("--timeout", default=5.0, show_default=True,
              help="Seconds without an answer (past the frames' time on the line at --baud) before giving up.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="The last layer's output, .npy.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Per-layer time and bytes, JSON.")
@_fail_cleanly
@board_options
def run(model_path, input_path, port, baud, timeout, out_path, json_path, params):
    """Run an ALQ model on the accelerator board at PORT, each layer == the reference (exit 8 if not).

    The --lanes ... --max-words options must be the bitstream's."""
    import contextlib
    import dataclasses
    import json

    from host.accel import check_model, run_model
    from host.transport import open_port

    model = alq_format.read(model_path)
    x = _read_input(input_path)
    check_model(model, x, params)  # before the port is touched

    def report(r):
        where = (f"{r.sets} unit sets, {r.sent:,} B sent, {r.received:,} B received, {r.seconds:.2f} s, "
                 f"{r.cycles:,} core cycles" if r.sets else "on the host")
        click.echo(f"layer {r.index} {r.kind}: {where}, == reference")

    with contextlib.closing(open_port(port, baud, timeout)) as link:
        outputs, runs = run_model(link, params, model, x, timeout, on_layer=report)
    if out_path:
        buffer = io.BytesIO()
        np.save(buffer, outputs[-1])
        write_atomically(Path(out_path), buffer.getvalue())
    if json_path:
        summary = {"port": port, "core": dataclasses.asdict(params), "layers": [dataclasses.asdict(r) for r in runs],
                   "seconds": sum(r.seconds for r in runs)}
        write_atomically(Path(json_path), json.dumps(summary, indent=2).encode())
    click.echo(f"{len(runs)} layers == reference in {sum(r.seconds for r in runs):.2f} s on the board"
               + "".join(f"; wrote {p}" for p in (out_path, json_path) if p))


hw.add_command(__import__("host.hw_synth_cli", fromlist=["synth_command"]).synth_command)
