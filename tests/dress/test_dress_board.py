"""DRESS sub-nets on the emulated board (QEMU mps2-an386): one firmware per model, flashed once over
serial; sub-nets switched at run time with ``tsn-subnet``; every layer of every sub-net compared byte for
byte with that sub-net's NumPy reference (codegen/dress/reference.py), never with the firmware's figures.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import zlib

import numpy as np
import pytest
from board_lines import raw_reply
from click.testing import CliRunner
from conftest import SHARED_MODELS, model_path

from codegen import ref
from codegen.dress import format as dress_format
from codegen.dress import reference
from codegen.dress.accuracy import evaluate
from codegen.dress.oneshot import digits_split, one_shot
from codegen.frontends import tflite
from codegen.ref import random_inputs
from host import profiler
from host.cli import main
from host.emulator import Emulator
from host.profiler import flash_and_connect, prepare
from host.transport import open_port

BOARD = "qemu-mps2-an386"
SPARSITIES = (0.5, 0.75, 0.9)
SWITCH_ORDER = (2, 0, 1, 2)  # away from the start-up sub-net first, then every one, then back
OUT_OF_RANGE = "e-[tsn-subnet takes a sub-net index below 3]"


@pytest.fixture(scope="module")
def dress_files(tmp_path_factory, request):
    """One-shot DRESS of a shared model as `tinysyn dress` makes it, once per model for the module;
    ``digits_cnn``: the DRESS-trained builtin (tests/conftest.py)."""
    directory, paths = tmp_path_factory.mktemp("dress"), {}

    def get(name: str):
        if name not in paths:
            paths[name] = directory / f"{name}.dress"
            model = (request.getfixturevalue("trained_digits")[2] if name == "digits_cnn"
                     else one_shot(model_path(name).read_bytes(), SPARSITIES, name=name))
            dress_format.write(paths[name], model)
        return paths[name]

    return get


@pytest.fixture(scope="module", params=[*SHARED_MODELS, "digits_cnn"])
def board(request, dress_files, tmp_path_factory):
    """A DRESS model's DUT app flashed on a running emulated board: (dress model, program, client, port, info)."""
    path = dress_files(request.param)
    program, boot, app, _ = prepare(path, BOARD, tmp_path_factory.mktemp(request.param))
    with Emulator(boot, board=BOARD) as emulator, contextlib.closing(open_port(emulator.url)) as port:
        dut, info, _ = flash_and_connect(port, emulator.url, app, program, progress=False)
        yield dress_format.read(path), program, dut, port, info


def test_every_layer_of_every_subnet_equals_its_reference_switched_at_run_time(board):
    dress, program, dut, _, info = board
    assert (info["subnets"], info["subnet"]) == (len(SPARSITIES), 0)
    x = random_inputs(program.graph, 1, seed=2028)
    expected = {k: reference.run_graph(dress, k, x) for k in set(SWITCH_ORDER)}
    outputs = [op.outputs[0] for op in program.graph.ops]
    for a, b in ((0, 1), (1, 2)):  # sub-nets really differ, so a board ignoring the switch could not pass
        assert any(not np.array_equal(expected[a][t], expected[b][t]) for t in outputs), (a, b)

    dut.load_input(x[0].tobytes())
    dumped = set()
    for k in SWITCH_ORDER:
        assert dut.set_subnet(k) == (k, len(SPARSITIES))
        assert dut.info()["subnet"] == k
        dut.infer(runs=1)
        want = expected[k]
        assert dut.output() == want[program.graph.outputs[0]][0].tobytes(), f"sub-net {k}: model output"
        assert [layer.crc32 for layer in dut.trace()] == [zlib.crc32(want[t][0].tobytes()) for t in outputs]
        if k in dumped:
            continue  # a sub-net seen before: its trace's CRCs above suffice
        dumped.add(k)
        for index, tensor in enumerate(outputs):  # every layer's whole output, byte for byte
            assert dut.output(index) == want[tensor][0].tobytes(), f"sub-net {k}: layer {index}"


def test_out_of_range_subnet_is_one_error_line_and_the_running_subnet_stays(board):
    _, _, dut, port, _ = board
    dut.set_subnet(1)
    for command in (b"tsn-subnet 3%", b"tsn-subnet 4294967295%", b"tsn-subnet -1%", b"tsn-subnet one%",
                    b"tsn-subnet 1 2%"):
        assert raw_reply(port, command) == [OUT_OF_RANGE, "m-ready"], command
    assert raw_reply(port, b"tsn-subnet%") == ["m-tsn-subnet-[1,3]", "m-ready"]
    assert dut.info()["subnet"] == 1


def test_agreement_of_each_subnet_is_its_reference_on_digits(board):
    """Neither shared model classifies digits: each sub-net's top-1 agreement with the source model."""
    dress = board[0]
    count = 12
    result = evaluate(dress, labelled=True, count=count)  # KWS has 12 outputs: agreement whatever is asked
    if result["classes"] == 10:
        result = evaluate(dress, labelled=False, count=count)  # ResNet's 10 are CIFAR's classes
    graph = tflite.parse(dress.tflite)
    x, _ = digits_split(graph, "test", count)
    source = ref.run(graph, x).reshape(count, -1).argmax(axis=1)
    assert result["metric"] == "top1_agreement" and result["source"] == 1.0
    for k, value in enumerate(result["subnets"]):
        assert value == np.mean(reference.run(dress, k, x).reshape(count, -1).argmax(axis=1) == source), k


def tinysyn(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "host.cli", *map(str, args)], check=False, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def kws_dress(dress_files):
    return dress_files("kws_ref_model")


def test_profile_cli_every_subnet_in_one_session(kws_dress, tmp_path):
    out = tmp_path / "r.json"
    proc = tinysyn("profile", kws_dress, "--subnet", "all", "--runs", 1, "--json", out, "--csv", tmp_path / "r.csv",
                   "--plot", tmp_path / "r.png", "--dataset", "digits", "--eval-samples", 16, "--work", tmp_path / "w",
                   "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "BIT-EXACT" in proc.stdout and "sub-nets 0, 1, 2 switched on the board" in proc.stdout
    report = json.loads(out.read_text())
    assert report["bit_exact"] is True and report["flash"]["payload_bytes"] > 0
    subnets = report["subnets"]
    assert [(s["subnet"], s["sparsity"], s["runs"], s["bit_exact"]) for s in subnets] == [
        (k, s, 1, True) for k, s in enumerate(SPARSITIES)]
    totals = [s["total_instructions"] for s in subnets]
    assert all(t == sum(layer["instructions"] for layer in s["layers"]) for t, s in zip(totals, subnets))
    assert totals[0] > totals[1] > totals[2] > 0  # fewer weights, fewer instructions
    assert report["accuracy"]["metric"] == "top1_agreement" and len(report["accuracy"]["subnets"]) == 3
    assert "12 outputs" in proc.stdout  # asked for digits labels, told it gets agreement instead
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert rows[0] == "subnet,index,op,macs,output_bytes,stack_bytes,instructions"
    assert len(rows) == 1 + 3 * len(subnets[0]["layers"])
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def one_line_error(result, code: int, text: str) -> None:
    errors = [line for line in result.output.splitlines() if line.startswith("tinysyn: error:")]
    assert result.exit_code == code and len(errors) == 1 and text in errors[0], result.output


def test_a_subnet_differing_from_its_reference_is_one_line_and_exit_8(kws_dress, tmp_path, monkeypatch):
    """The board runs sub-net 1; the check is handed sub-net 2's reference as sub-net 1's."""
    real = profiler.subnet_references

    def swapped(model, subnets):
        return [(k, s, reference.subnet_graph(dress_format.read(model), 2)) for k, s, _ in real(model, subnets)]

    monkeypatch.setattr(profiler, "subnet_references", swapped)
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["profile", str(kws_dress), "--subnet", "1", "--json", str(out), "--work",
                                       str(tmp_path / "w"), "--quiet"])
    one_line_error(result, 8, "sub-net 1: run 0: layer ")
    report = json.loads(out.read_text())
    assert report["bit_exact"] is False and report["subnet"] == 1 and report["sparsity"] == 0.75


def test_bad_subnet_requests_are_one_line_errors_before_building(kws_dress, tmp_path):
    def cli(*args):
        return CliRunner().invoke(main, ["profile", *map(str, args), "--work", str(tmp_path / "w"), "--quiet"])

    one_line_error(cli(kws_dress, "--subnet", 3), 4, "sub-net 3 does not exist")
    one_line_error(cli(kws_dress, "--subnet", "most"), 4, "--subnet 'most'")
    one_line_error(cli(model_path("kws_ref_model"), "--subnet", 0), 4, "--subnet needs a DRESS file")
    one_line_error(cli(kws_dress, "--dataset", "digits"), 4, "give --subnet all")
    assert not (tmp_path / "w").exists()
