"""``tinysyn hw synth``: synthesize, place and route the accelerator on an FPGA and report its figures.

A command for the ``hw`` group (host/hw_cli.py). It catches TinysynError itself
rather than borrowing host.cli's wrapper, which would import host.cli from
inside its own import of the group.
"""
from __future__ import annotations

import sys

import click

from codegen.errors import ResourceError, TinysynError
from hw.devices import DEVICES
from hw.synth import synth


def summary(r: dict) -> str:
    return (f"{r['device']}: {r['lanes']} x {r['width']} = {r['binary_macs_per_cycle']} binary MACs/cycle, "
            f"{r['luts']}/{r['luts_available']} LUTs, {r['ffs']} FFs, {r['ram_blocks']} RAM blocks, {r['dsps']} DSPs, "
            f"fmax {r['fmax_mhz']} MHz at a {r['target_mhz']:g} MHz target, fits: {'yes' if r['fits'] else 'no'} "
            f"(yosys {r['seconds']['yosys']} s, nextpnr {r['seconds']['nextpnr']} s)")


@click.command("synth")
@click.option("--device", "device_name", required=True, help=f"The FPGA: {', '.join(DEVICES)}.")
@click.option("--lanes", type=click.IntRange(min=1), default=None, help="Lanes P (default: the device's).")
@click.option("--width", type=click.IntRange(min=1), default=None, help="Bits per lane W (default: the device's).")
@click.option("--freq", "freq_mhz", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Target clock in MHz (default: the device's).")
@click.option("--seed", type=int, default=1, show_default=True, help="nextpnr's placement seed.")
@click.option("--work", type=click.Path(file_okay=False), default=None,
              help="Intermediate files and tool logs (default: build/hw/<device>).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the figures as JSON.")
def synth_command(device_name, lanes, width, freq_mhz, seed, work, json_out):
    """Synthesize (Yosys), place and route (nextpnr) the accelerator; report LUTs, FFs, RAM, DSPs and fmax.

    Exits 6 if the design does not fit the device or misses the target clock
    (the JSON is still written then), 5 if a tool fails.
    """
    try:
        result = synth(device_name, lanes, width, freq_mhz=freq_mhz, seed=seed, work=work, json_out=json_out,
                       progress=lambda phase: click.echo(f"{device_name}: {phase}...", err=True))
        click.echo(summary(result))
        if not result["fits"]:
            raise ResourceError(f"{result['device']}: fmax {result['fmax_mhz']} MHz is below the "
                                f"{result['target_mhz']:g} MHz target")
    except TinysynError as err:
        click.echo(f"tinysyn: error: {err}", err=True)
        sys.exit(err.exit_code)

