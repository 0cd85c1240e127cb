"""``tinysyn hw``: the xnor-popcount accelerator's simulation and Verilog (hw/README.md)."""
from __future__ import annotations

import functools
import io
import zipfile
from pathlib import Path

import click
import numpy as np

from codegen.alq import format as alq_format
from codegen.errors import InputError
from codegen.files import write_atomically

INPUT_KEY = "x"  # X.npz: the layer's input, integers [H, W, C] at 2^-input_frac of the layer file

lanes_option = click.option("--lanes", default=8, show_default=True, help="P: dot products per cycle.")
width_option = click.option("--width", default=64, show_default=True, help="W: bits per lane per cycle, a multiple of 32.")
acc_option = click.option("--acc-width", default=32, show_default=True, help="Signed accumulator bits.")
coef_option = click.option("--coef-bits", default=16, show_default=True,
                           help="Unsigned coefficient A*G_j bits (one multiplier a lane).")
acts_option = click.option("--per-lane-acts", is_flag=True,
                           help="An activation word per lane (else one for all lanes; depthwise then runs a unit a set).")


def _fail_cleanly(fn):
    """host.cli's one-line errors, looked up when called: host.cli registers this group as it loads."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from host.cli import _fail_cleanly as cleanly

        return cleanly(fn)(*args, **kwargs)

    return wrapper


@click.group()
def hw():
    """The ALQ xnor-popcount accelerator: simulate a layer, write Verilog."""


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
@lanes_option
@width_option
@acc_option
@coef_option
@acts_option
@click.option("--max-groups", default=64, show_default=True, help="Live-group table entries.")
@click.option("--max-words", default=16, show_default=True, help="The most W-bit words in one group.")
@click.option("--regs-every", default=2, show_default=True, help="Popcount adder levels per register.")
@click.option("--regs-first", default=0, show_default=True,
              help="Popcount adder levels before the first register (0: --regs-every).")
@click.option("--mul-reg", is_flag=True, help="A register between each lane's product and its accumulator.")
@click.option("--clk-freq", default=12e6, show_default=True, help="Clock, Hz (sets the UART divisor).")
@click.option("--baud", default=115200, show_default=True)
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False))
@_fail_cleanly
def verilog(lanes, width, acc_width, coef_bits, per_lane_acts, max_groups, max_words, regs_every, regs_first, mul_reg,
            clk_freq, baud, out_path):
    """Write the UART top level as Verilog."""
    from hw.top import build_top, to_verilog

    try:
        build = build_top(lanes, width, acc_width=acc_width, coef_bits=coef_bits, per_lane_acts=per_lane_acts,
                          max_groups=max_groups, max_words=max_words,
                          regs_every=regs_every, regs_first=regs_first, mul_reg=mul_reg,
                          clk_freq=clk_freq, baud=baud)
    except ValueError as e:
        raise InputError(str(e)) from None
    write_atomically(Path(out_path), to_verilog(build.top).encode())
    click.echo(f"{out_path}: {lanes} lanes x {width} bits = {build.binary_macs_per_cycle} binary MACs per cycle")


hw.add_command(__import__("host.hw_synth_cli", fromlist=["synth_command"]).synth_command)
