"""The FPGAs ``tinysyn hw synth`` targets: their resources, tool options, a board for pins, and default configs.

The pre-check (``check_fits``) turns away configurations that cannot fit by a
lower bound, before any tool runs; anything it lets through is decided by
nextpnr. The bound: every binary MAC brings one weight bit and one activation
bit to some LUT4, so P x W MACs need at least P * W / 2 LUT4s however the
xnor and popcount tree are packed (the measured cost is about 2.5 to 3 per MAC,
see hw/SYNTH.md); and every lane's multiply-accumulate takes one DSP block (hw/README.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from amaranth_boards.colorlight_5a75b_r7_0 import Colorlight_5A75B_R70Platform
from amaranth_boards.icebreaker import ICEBreakerPlatform

from codegen.errors import InputError, ResourceError

MIN_LUTS_PER_MAC = 0.5  # LUT4 inputs: two (weight, activation) pairs per LUT at best


@dataclass(frozen=True)
class Device:
    name: str
    part: str
    family: str  # "ice40" or "ecp5": picks synth_<family>, nextpnr-<family> and the constraint format
    nextpnr_args: tuple[str, ...]
    luts: int  # iCE40 logic cells or ECP5 LUT4s
    ram_blocks: int  # iCE40 EBR (SB_RAM40_4K) or ECP5 DP16KD
    dsps: int  # SB_MAC16 or MULT18X18D
    board: type  # an amaranth-boards platform whose pins the top's ports are placed on
    target_mhz: float
    lanes: int  # the default accelerator configuration: P x W and the core's pipeline options
    width: int
    lut_cell: str  # nextpnr's report names of the cells counted
    ram_cell: str
    dsp_cell: str
    ff_cell_prefix: str  # Yosys' flip-flop cell types (SB_DFF, SB_DFFE, ...), counted after synthesis
    core_options: dict = field(default_factory=dict)  # CoreParams options of the default (hw/core.py)

    def core_params(self) -> dict:
        """The default configuration as CoreParams / build_top / simulate_layer keywords."""
        return {"lanes": self.lanes, "width": self.width, **self.core_options}


DEVICES = {
    "up5k": Device(
        name="up5k", part="iCE40 UP5K-SG48", family="ice40", nextpnr_args=("--up5k", "--package", "sg48"),
        luts=5280, ram_blocks=30, dsps=8, board=ICEBreakerPlatform, target_mhz=40.0, lanes=4, width=256,
        lut_cell="ICESTORM_LC", ram_cell="ICESTORM_RAM", dsp_cell="ICESTORM_DSP",
        ff_cell_prefix="SB_DFF", core_options={"regs_first": 4, "regs_every": 2}),
    "ecp5-25k": Device(
        name="ecp5-25k", part="ECP5 LFE5U-25F-CABGA256", family="ecp5",
        # router2: router1 had not converged after 30 min on 18k LUTs (74%), router2 took 70 s; its timing-driven
        # rip-up: 102.66 MHz at seed 1 where it left 97.03
        nextpnr_args=("--25k", "--package", "CABGA256", "--router", "router2", "--tmg-ripup"),
        luts=24288, ram_blocks=56, dsps=28, board=Colorlight_5A75B_R70Platform, target_mhz=100.0, lanes=16, width=256,
        lut_cell="TRELLIS_COMB", ram_cell="DP16KD", dsp_cell="MULT18X18D", ff_cell_prefix="TRELLIS_FF",
        core_options={"regs_first": 2, "regs_every": 2, "mul_reg": True, "bias_reg": True, "result_fifo": 10}),
}


def device(name: str) -> Device:
    try:
        return DEVICES[name]
    except KeyError:
        raise InputError(f"unknown device {name!r}; known: {', '.join(DEVICES)}") from None


def check_fits(dev: Device, lanes: int, width: int) -> None:
    """Raise a one-line ResourceError if ``lanes`` x ``width`` (one DSP block a lane) cannot fit ``dev``."""
    if lanes < 1 or width < 1:
        raise InputError(f"{dev.name}: lanes and width must be positive, got {lanes} x {width}")
    floor = int(lanes * width * MIN_LUTS_PER_MAC)
    if floor > dev.luts:
        raise ResourceError(f"{dev.name}: {lanes} x {width} binary MACs need at least {floor} LUTs, "
                            f"the {dev.part} has {dev.luts}")
    if lanes > dev.dsps:
        raise ResourceError(f"{dev.name}: {lanes} lanes need as many DSP blocks, the {dev.part} has {dev.dsps}")
