"""The host client (host/accel.py, ``tinysyn hw run``) against the emulated board (hw/emulate.py): the RTL simulation
of the UART top behind a real pty, opened with pyserial. A model == the reference layer by layer; a board that stops
answering, a bitstream built otherwise and an input that does not fit are one-line errors that write nothing."""
import json
import os
import select
import signal
import subprocess
import sys
import tty
from pathlib import Path

import numpy as np
import pytest
from alq.alq_random import random_layer
from click.testing import CliRunner
from hw_layers import small_model

from codegen.alq import format as alq_format
from codegen.alq import reference
from codegen.alq.format import AlqModel
from codegen.errors import BoardTimeoutError, InputError
from host.accel import check_model, run_model
from host.cli import main
from host.transport import open_port
from hw.core import CoreParams
from hw.emulate import LINE_BAUD, EmulatedBoard

BOARD = ["--lanes", "2", "--width", "32"]
EMULATED = ["--baud", str(LINE_BAUD)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The small model and its input; the fc layer alone with its input (fc.npz, x_fc.npz)."""
    path = tmp_path_factory.mktemp("accel")
    rng = np.random.default_rng(5)
    model = small_model(rng)
    x = rng.integers(-128, 128, size=model.input_shape)
    alq_format.write(path / "m.npz", model)
    np.savez(path / "x.npz", x=x)
    alq_format.write(path / "fc.npz", model.layer_file(3))
    np.savez(path / "x_fc.npz", x=reference.forward(model, x)[2])
    return path, model, x


@pytest.fixture
def silent_port():
    """A pty nobody answers on (a board that is off): (its path, the other end, which shows what was sent)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    yield os.ttyname(slave), master
    os.close(master)
    os.close(slave)


def hw_run(path, out, port, *args, model="m.npz", x="x.npz"):
    return CliRunner().invoke(main, ["hw", "run", "--model", str(path / model), "--input", str(path / x),
                                     "--port", port, "--out", str(out / "y.npy"), "--json", str(out / "r.json"), *args])


def wrote_nothing(out):
    return not (out / "y.npy").exists() and not (out / "r.json").exists()


def test_a_model_runs_on_the_emulated_board(files, tmp_path):
    path, model, x = files
    with EmulatedBoard(CoreParams(2, 32)) as board:
        result = hw_run(path, tmp_path, board.path, *BOARD, *EMULATED)
        assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(tmp_path / "y.npy"), reference.forward(model, x)[-1])
    assert "layer 2 avgpool: on the host" in result.output and "4 layers == reference" in result.output
    layers = json.loads((tmp_path / "r.json").read_text())["layers"]
    assert [r["kind"] for r in layers] == ["conv", "depthwise", "avgpool", "fc"]
    assert sum(r["sent"] for r in layers) == board.bytes_in and sum(r["received"] for r in layers) == board.bytes_out


def test_the_emulate_command_serves_a_port_until_ctrl_c(files):
    path, model, x = files
    proc = subprocess.Popen([sys.executable, "-m", "host.cli", "hw", "emulate", *BOARD], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=Path(__file__).parents[2])
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        port = lines[1].split()[2]
        assert port.startswith("/dev/"), lines
        fc = alq_format.read(path / "fc.npz")
        with open_port(port, LINE_BAUD) as link:
            (y,), _ = run_model(link, CoreParams(2, 32), fc, np.load(path / "x_fc.npz")["x"])
        assert np.array_equal(y, reference.forward(model, x)[3])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=10)
        finally:
            proc.kill()  # nothing once it has exited
    assert proc.returncode == 0 and "stopped after" in out and "bytes/s" in out, out


def test_a_board_that_stops_answering_mid_run():
    rng = np.random.default_rng(8)
    first = random_layer(rng, "fc", (1, 1, 3), 2, ix=1)
    model = AlqModel((1, 1, 3), 7, [first, random_layer(rng, "fc", first.out_shape, 2, ix=1)])
    stopped = (r"^layer 1 \(fc\): unit set 1 of 1: no answer for [\d.]+ s: 0 of 8 result bytes; "
               r"is the board's core 2 lanes x 32 bits")
    with (EmulatedBoard(CoreParams(2, 32)) as board, open_port(board.path, LINE_BAUD) as link,
          pytest.raises(BoardTimeoutError, match=stopped)):
        run_model(link, CoreParams(2, 32), model, rng.integers(-9, 9, size=(1, 1, 3)), timeout=1,
                  on_layer=lambda run: board.stop())  # the board freezes after layer 0


def test_a_silent_port_is_a_one_line_timeout(files, silent_port, tmp_path):
    path, *_ = files
    port, _ = silent_port
    result = hw_run(path, tmp_path, port, *BOARD, "--timeout", "0.3")
    assert result.exit_code == 7 and result.output.count("\n") == 1, result.output
    assert "layer 0 (conv): unit set 1 of 2: no answer for 0.3 s: 0 of 72 result bytes" in result.output
    assert wrote_nothing(tmp_path)


def test_a_board_that_takes_no_bytes_is_a_timeout(silent_port):
    """Frames beyond what the pty buffers (about 19 KB) block the host's write until its timeout."""
    rng = np.random.default_rng(9)
    layer = random_layer(rng, "fc", (1, 1, 4096), 2, group="subchannel", group_size=256, i_max=4, ix=4)
    port, _ = silent_port
    with open_port(port) as link, pytest.raises(BoardTimeoutError, match=rf"^layer 0 \(fc\): unit set 1 of 1: "
                                                                         rf"{port} took no bytes for 0.3 s; is the"):
        run_model(link, CoreParams(2, 32), AlqModel((1, 1, 4096), 7, [layer]), rng.integers(-9, 9, (1, 1, 4096)),
                  timeout=0.3)


@pytest.mark.parametrize("x, args, message", [
    ("bad.npz", [], "input is int64 (4, 3, 2); the model reads integers (3, 3, 1)"),
    ("x.npz", ["--max-groups", "1"], ("layer 3 (fc): 2 groups of up to 1 words; the board's core holds 1 groups "
                                      "of up to 16 words")),
    ("x.npz", ["--acc-width", "8"], "layer 0 (conv): accumulator of 8 bits too narrow"),
])
def test_an_input_that_does_not_fit_is_refused_before_sending(files, silent_port, tmp_path, x, args, message):
    path, *_ = files
    np.savez(path / "bad.npz", x=np.zeros((4, 3, 2), np.int64))
    port, master = silent_port
    result = hw_run(path, tmp_path, port, *BOARD, *args, x=x)
    assert result.exit_code == 4 and result.output.count("\n") == 1 and message in result.output, result.output
    assert not select.select([master], [], [], 0.1)[0]  # not a byte sent
    assert wrote_nothing(tmp_path)


def test_a_bitstream_built_otherwise_is_a_mismatch(files, tmp_path):
    """A board whose coefficients have 12 bits takes the same frames from a host that sends 16 (one lane), and
    truncates them: exit 8."""
    path, model, _ = files
    assert int(model.layers[3].alpha.max()) * int(model.layers[3].gamma.max()) >= 1 << 12
    with EmulatedBoard(CoreParams(1, 32, coef_bits=12)) as board:
        result = hw_run(path, tmp_path, board.path, "--lanes", "1", "--width", "32", *EMULATED, model="fc.npz",
                        x="x_fc.npz")
    assert result.exit_code == 8 and result.output.count("\n") == 1, result.output
    assert "layer 0 (fc): the board differs from the reference at (0, 0, " in result.output
    assert wrote_nothing(tmp_path)


def test_a_depthwise_layer_the_core_cannot_map_is_refused_before_sending():
    """A broadcast core runs depthwise only in the positions mapping: an entry per live group and activation base."""
    rng = np.random.default_rng(4)
    layer = random_layer(rng, "depthwise", (4, 4, 3), 0, i_max=2, ix=3)
    model = AlqModel((4, 4, 3), 7, [layer])
    check_model(model, np.zeros((4, 4, 3), np.int64), CoreParams(2, 32, max_groups=3))  # 1 group x 3 bases fits
    with pytest.raises(InputError, match=r"^layer 0 \(depthwise\): the board's core has neither per-lane"):
        check_model(model, np.zeros((4, 4, 3), np.int64), CoreParams(2, 32, max_groups=2))
