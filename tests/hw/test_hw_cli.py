"""``tinysyn hw sim`` and ``tinysyn hw verilog``: outputs, and one-line errors that write nothing."""
import numpy as np
import pytest
from alq.alq_random import random_model
from click.testing import CliRunner

from codegen.alq import format as alq_format
from codegen.alq import reference
from host.cli import main


@pytest.fixture
def layer_files(tmp_path):
    rng = np.random.default_rng(13)
    model = random_model(rng)
    x = rng.integers(-128, 128, size=model.input_shape)
    alq_format.write(tmp_path / "l0.npz", model.layer_file(0))
    np.savez(tmp_path / "x.npz", x=x)
    return tmp_path, model.layers[0], x, model.input_frac


def test_sim_writes_the_layer_output(layer_files):
    path, layer, x, frac = layer_files
    result = CliRunner().invoke(main, ["hw", "sim", "--layer", str(path / "l0.npz"), "--input", str(path / "x.npz"),
                                       "--out", str(path / "y.npy"), "--vcd", str(path / "l0.vcd"), "--lanes", "4",
                                       "--width", "32"])
    assert result.exit_code == 0, result.output
    assert "cycles at 4 lanes x 32 bits" in result.output
    assert np.array_equal(np.load(path / "y.npy"), reference.layer_forward(layer, x, frac)[0])
    assert (path / "l0.vcd").stat().st_size > 0


def test_verilog_writes_the_top(tmp_path):
    out = tmp_path / "top.v"
    result = CliRunner().invoke(main, ["hw", "verilog", "--lanes", "2", "--width", "32", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "64 binary MACs per cycle" in result.output
    assert "module top(" in out.read_text() and "\\top.core.fifo " not in out.read_text()


@pytest.mark.parametrize("args, message", [
    (["--lanes", "0"], "lanes 0 outside 1..256"),
    (["--width", "48"], "width 48 is not a positive multiple of 32"),
    (["--acc-width", "16"], "accumulator of 16 bits too narrow"),
])
def test_sim_bad_parameters_are_one_line_errors(layer_files, args, message):
    path, *_ = layer_files
    result = CliRunner().invoke(main, ["hw", "sim", "--layer", str(path / "l0.npz"), "--input", str(path / "x.npz"),
                                       "--out", str(path / "y.npy"), *args])
    assert result.exit_code == 4
    assert message in result.output and result.output.count("\n") == 1
    assert not (path / "y.npy").exists()


def test_sim_input_shape_mismatch(layer_files):
    path, *_ = layer_files
    np.savez(path / "bad.npz", x=np.zeros((5, 5, 3), np.int64))
    result = CliRunner().invoke(main, ["hw", "sim", "--layer", str(path / "l0.npz"), "--input", str(path / "bad.npz"),
                                       "--out", str(path / "y.npy")])
    assert result.exit_code == 4 and "the layer reads integers (6, 6, 3)" in result.output
    assert not (path / "y.npy").exists()


def test_verilog_writes_the_ecp5_default_pipeline(tmp_path):
    out = tmp_path / "top.v"
    result = CliRunner().invoke(main, ["hw", "verilog", "--lanes", "2", "--width", "32", "--regs-first", "2",
                                       "--mul-reg", "--bias-reg", "--result-fifo", "9", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "\\top.core.fifo " in out.read_text()  # the result FIFO's module; the default top has none


@pytest.mark.parametrize("args", [["--width", "100"], ["--lanes", "300"], ["--mul-reg", "--result-fifo", "4"]])
def test_verilog_bad_parameters_write_nothing(tmp_path, args):
    result = CliRunner().invoke(main, ["hw", "verilog", *args, "-o", str(tmp_path / "top.v")])
    assert result.exit_code == 4 and result.output.count("\n") == 1
    assert not (tmp_path / "top.v").exists()
