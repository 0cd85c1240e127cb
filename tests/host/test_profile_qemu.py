"""The board path end to end on the emulated board: QEMU boots the bootloader, the DUT
app is flashed over the serial link, and the MLPerf Tiny and tinysyn commands run
the model; every result is compared with the NumPy reference."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
from board_lines import raw_reply
from conftest import SHARED_MODELS, model_path
from tflite_builder import ModelBuilder, fb, fc_options

from codegen import ref
from codegen.errors import BoardTimeoutError, PortError
from host.checker import reference_runs
from host.dut import DutClient
from host.emulator import Emulator
from host.firmware_build import board_memory, elf_sizes
from host.profiler import flash_and_connect, prepare, profile
from host.transport import open_port

KWS = model_path("kws_ref_model")
REQUIRED_KEYS = {"model", "board", "runs", "bit_exact", "total_instructions", "layers", "stack_high_water_bytes",
                 "static_ram_bytes", "flash_bytes", "arena_bytes"}


def tinysyn(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "host.cli", *map(str, args)], check=False, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_profile_flashes_over_serial_and_every_layer_equals_the_reference(tmp_path, name):
    report = profile(model_path(name), "qemu-mps2-an386", runs=2, seed=7, work=tmp_path, progress=False)
    assert REQUIRED_KEYS <= report.keys()
    assert report["bit_exact"] is True and report["mismatches"] == []
    assert report["runs"] == 2
    assert [layer["index"] for layer in report["layers"]] == list(range(len(report["layers"])))
    assert report["total_instructions"] == sum(layer["instructions"] for layer in report["layers"])
    assert report["total_instructions"] > report["macs"]  # a real run: at least one instruction per MAC
    assert 0 < report["stack_high_water_bytes"] < 64 * 1024
    assert report["flash_bytes"] > report["weight_bytes"]
    assert report["static_ram_bytes"] > report["arena_bytes"]
    flash = report["flash"]
    assert flash["payload_bytes"] > report["weight_bytes"] and 0 < flash["wire_efficiency"] < 1


@pytest.fixture(scope="module")
def kws_board(tmp_path_factory):
    """KWS's DUT app flashed on a running emulated board: (dut client, program, raw port)."""
    program, boot, app, _ = prepare(KWS, "qemu-mps2-an386", tmp_path_factory.mktemp("dut"))
    with Emulator(boot) as emulator, contextlib.closing(open_port(emulator.url)) as port:
        dut, _, _ = flash_and_connect(port, emulator.url, app, program, progress=False)
        yield dut, program, port, emulator, app


def test_mlperf_tiny_commands_answer_as_the_runner_expects(kws_board):
    dut, program, port, _, _ = kws_board
    assert raw_reply(port, b"name%") == ["m-name-dut-[tinysyn-qemu-mps2-an386]", "m-ready"]
    assert raw_reply(port, b"profile%") == ["m-profile-[ULPMark-ML]", "m-model-[kws_ref_model]", "m-ready"]
    assert raw_reply(port, b"db load 490%") == ["m-[Expecting 490 bytes]", "m-ready"]
    x = ref.random_inputs(program.graph, 1, seed=11)[0]
    data = x.tobytes()
    for offset in range(0, len(data), 32):
        lines = raw_reply(port, b"db " + data[offset:offset + 32].hex().encode() + b"%")
    assert lines == ["m-load-done", "m-ready"]
    lines = raw_reply(port, b"infer 2 1%", timeout=60)
    assert lines[:3] == ["m-warmup-start-1", "m-warmup-done", "m-infer-start-2"]
    laps = [int(line[len("m-lap-us-"):]) for line in lines if line.startswith("m-lap-us-")]
    assert len(laps) == 2 and laps[1] > laps[0]
    assert lines[-3] == "m-infer-done" and lines[-1] == "m-ready"
    # results: the output dequantized (display format, 3 decimals); the raw bytes are checked exactly below
    y = ref.run(program.graph, x)[0].astype(np.float64)
    out = program.graph.tensor(program.graph.outputs[0])
    expected = (y - out.zero_point) * out.scale
    shown = [float(v) for v in lines[-2][len("m-results-["):-1].split(",")]
    assert np.abs(np.array(shown) - expected).max() <= 0.0011
    assert raw_reply(port, b"results%")[0] == lines[-2]
    assert dut.output() == ref.run(program.graph, x)[0].tobytes()
    expected_run = reference_runs(program, x[None])[0]
    assert [layer.crc32 for layer in dut.trace()] == list(expected_run.layer_crc32)
    values = ref.run_graph(program.graph, x[None])
    assert dut.output(3) == values[program.layers[3].op.outputs[0]][0].tobytes()


def test_the_board_reports_its_memory_as_the_elf_says(kws_board):
    dut, program, _, _, app = kws_board
    memory = dut.memory()
    sizes = elf_sizes(app)
    assert memory["static_ram_bytes"] == sizes["static_ram_bytes"]  # board linker symbols vs ELF sections
    assert memory["ram_bytes"] == board_memory("qemu-mps2-an386")["ram_bytes"]
    assert memory["arena_bytes"] == program.plan.peak_bytes
    assert dut.info()["subnets"] == 0  # dense
    assert memory["stack_bytes"] == sizes["stack_bytes"]
    assert 0 < memory["stack_high_water_bytes"] < memory["stack_bytes"]


@pytest.mark.parametrize("command, error", [
    (b"db load 5%", "e-[Expected 490 bytes, the model's input size]"),
    (b"bogus%", "e-[Unknown command: bogus]"),
    (b"infer 0 0%", "e-[infer needs N W: 1 <= N, 0 <= W, both at most 1048576]"),
    (b"tsn-out 13%", "e-[tsn-out takes a layer index below the layer count]"),
    (b"tsn-subnet 0%", "e-[tsn-subnet needs a DRESS model; this one is dense]"),  # a dense model has no sub-nets
    (b"tsn-subnet%", "e-[tsn-subnet needs a DRESS model; this one is dense]"),
    (b"x" * 100 + b"%", "e-[Command too long]"),
])
def test_bad_commands_get_an_error_line_and_the_board_keeps_answering(kws_board, command, error):
    _, _, port, _, _ = kws_board
    assert raw_reply(port, command) == [error, "m-ready"]
    assert raw_reply(port, b"name%")[-1] == "m-ready"


def test_a_board_that_stops_answering_times_out_in_one_line(kws_board):
    dut, _, _, emulator, _ = kws_board
    os.killpg(emulator._proc.pid, signal.SIGSTOP)  # the board hangs: QEMU frozen
    try:
        dut.timeout = 1.0
        with pytest.raises(BoardTimeoutError, match="no reply to 'name'"):
            dut.name()
    finally:
        os.killpg(emulator._proc.pid, signal.SIGCONT)
        dut.timeout = 10.0
    dut.resync()
    assert dut.name() == "tinysyn-qemu-mps2-an386"


def test_profile_cli_writes_json_csv_plot(tmp_path):
    out = tmp_path / "r.json"
    proc = tinysyn("profile", KWS, "--runs", 1, "--work", tmp_path / "w", "--json", out, "--csv",
                   tmp_path / "r.csv", "--plot", tmp_path / "r.png", "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert REQUIRED_KEYS <= report.keys() and report["bit_exact"] is True
    assert "BIT-EXACT" in proc.stdout and "CONV_2D" in proc.stdout
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert rows[0] == "index,op,macs,output_bytes,stack_bytes,instructions" and len(rows) == 1 + len(report["layers"])
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def big_fc_model(path, depth, units):
    """One FULLY_CONNECTED layer with depth x units int8 weights."""
    b = ModelBuilder()
    x = b.tensor([1, depth], scale=0.1, zero_point=0)
    w = b.tensor([units, depth], scale=0.01, zero_point=0, data=np.ones((units, depth), np.int8))
    y = b.tensor([1, units], scale=0.5, zero_point=0)
    b.op(fb.BuiltinOperator.FULLY_CONNECTED, [x, w], [y], fb.BuiltinOptions.FullyConnectedOptions, fc_options("NONE"))
    path.write_bytes(b.build([x], [y]))
    return path


@pytest.mark.parametrize("board, depth, units, what", [
    ("qemu-mps2-an386", 2048, 2100, "of flash"),       # 4.3 MB of weights > 4 MB flash
    ("nucleo-l4r5zi", 600_000, 1, "of RAM"),           # a 600 KB input + stack > 640 KB SRAM
])
def test_a_model_too_big_for_the_board_is_refused_before_building(tmp_path, board, depth, units, what):
    model = big_fc_model(tmp_path / "big.tflite", depth, units)
    proc = tinysyn("profile", model, "--board", board, "--port", "socket://127.0.0.1:1", "--work", tmp_path / "w")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 6 and len(lines) == 1, proc.stderr
    assert what in lines[0] and board in lines[0] and "bytes" in lines[0]
    assert not (tmp_path / "w").exists()  # nothing generated or built


def test_a_wrong_port_is_one_line(tmp_path):
    proc = tinysyn("profile", KWS, "--port", "/dev/does-not-exist", "--work", tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 7 and len(lines) == 1 and "/dev/does-not-exist" in lines[0], proc.stderr


def test_a_silent_port_times_out_in_one_line(tmp_path):
    """A TCP 'board' that accepts the connection and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    try:
        proc = tinysyn("profile", KWS, "--port", f"socket://127.0.0.1:{port}", "--work", tmp_path, "--quiet")
    finally:
        server.close()
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 7 and len(lines) == 1, proc.stderr
    assert f"127.0.0.1:{port}" in lines[0]


@pytest.mark.parametrize("serial", ["tcp:0", "pty"])
def test_emulate_keeps_a_flashed_board_running_for_any_client(tmp_path, serial):
    proc = subprocess.Popen([sys.executable, "-m", "host.cli", "emulate", KWS, "--serial", serial, "--work", tmp_path,
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stdout:
            if line.startswith("connect to: "):
                url = line.split(": ", 1)[1].strip()
                break
        assert url, proc.stderr.read() if proc.poll() is not None else "no 'connect to' line"
        assert url.startswith("socket://127.0.0.1:") if serial.startswith("tcp") else url.startswith("/dev/")
        with contextlib.closing(open_port(url)) as port:
            dut = DutClient(port, where=url)
            dut.resync()
            assert dut.name() == "tinysyn-qemu-mps2-an386"
            assert dut.info()["model"] == "kws_ref_model"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with pytest.raises(PortError):  # the emulator is gone with the command
        open_port(url).close()
