"""On-device training on the emulated board: the training app, flashed over serial by the
project's own bootloader, trains step by step and every step is compared with the NumPy
reference (loss, status and the whole trainable state, read back byte for byte)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from codegen.errors import ProtocolError, ResourceError
from codegen.train import builtin
from codegen.train import data as datasets
from codegen.train.graph import build
from codegen.train.model import TrainModel
from codegen.train.trainer import train
from host import board_training, training
from host.board_training import BoardTrainer, TrainClient
from host.cli import main

BOARD = "qemu-mps2-an386"


@pytest.mark.parametrize("options", [
    {"update": "all"},
    {"update": "last:2", "lac": False},
    {"update": "all", "mode": "fp32"},  # float bits equal: no fused multiply-add on the M4F's FPU
])
def test_board_steps_equal_the_reference_after_every_step(tmp_path, options):
    report, _ = training.run("builtin:digits-cnn", steps=60, backend=BOARD, work=tmp_path, full_every=1, **options)
    assert report["first_mismatch"] is None and report["bit_exact"] is True
    assert report["steps_done"] == 60 and report["diverged"] is None
    board = report["board"]
    assert board["stack_high_water_bytes"] > 0
    assert report["peak_ram_bytes"] == board["arena_bytes"] + board["model_static_bytes"] + \
        board["stack_high_water_bytes"]
    assert report["instructions_per_step"] > 10_000
    assert board["app_static_ram_bytes"] > board["arena_bytes"] + board["model_static_bytes"]


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    graph = build(builtin.load_builtin("builtin:digits-cnn", 3), "last:2")
    reference = TrainModel(graph, "int8", lr=0.1, seed=3)
    with BoardTrainer(reference, BOARD, 3, tmp_path_factory.mktemp("board")) as trainer:
        yield trainer


def test_a_difference_from_the_reference_is_found_at_its_step(board):
    data = datasets.load("digits", board.reference.graph.input_shape, 10)
    for t in range(3):
        board.step(data.x_train[t], data.exp, int(data.y_train[t]))
    assert board.mismatch is None
    layer = board.reference.graph.trainable[0].index
    board.reference.params[layer].b[0] += 1  # the reference drifts by one integer
    board.step(data.x_train[3], data.exp, int(data.y_train[3]))
    assert board.mismatch is not None and board.mismatch.startswith("step 3:")


def test_a_corrupted_sample_is_refused_and_no_step_runs(board):
    client: TrainClient = board.client
    before = client.state()
    client.command("trn-sample 4 -7 12345678")  # a CRC that the bytes will not match
    client.send_sample(bytes(board.reference.graph.input_shape[0] * board.reference.graph.input_shape[1]))
    with pytest.raises(ProtocolError, match="Sample CRC mismatch"):
        client.step()
    assert client.state() == before
    with pytest.raises(ProtocolError, match="No complete sample"):
        client.step()  # the refused sample is gone, not replayed


def test_bad_sample_commands_are_one_line_errors(board):
    client: TrainClient = board.client
    for command, message in [("trn-sample 10 -7 00000000", "LABEL"), ("trn-sample 1 -99 00000000", "EXP"),
                             ("trn-sample 1 -7 xyz", "CRC"), ("trn-data 00", "trn-sample first"),
                             ("trn-lr 0", "learning rate")]:
        with pytest.raises(ProtocolError, match=message):
            client.command(command)
    client.command("trn-sample 1 -7 00000000")
    client.command("trn-data " + "00" * 32)
    with pytest.raises(ProtocolError, match="More bytes than announced"):
        client.command("trn-data " + "00" * 33)  # 65 of the 64 bytes


def test_cli_stops_on_a_corrupted_stream_and_keeps_the_last_good_weights(tmp_path, monkeypatch):
    sent = []
    original = TrainClient.send_sample

    def flip_one_bit_at_step_7(self, data):
        sent.append(data)
        if len(sent) == 8:
            data = bytes([data[0] ^ 1]) + data[1:]
        original(self, data)

    monkeypatch.setattr(TrainClient, "send_sample", flip_one_bit_at_step_7)
    out, weights = tmp_path / "r.json", tmp_path / "w.npz"
    r = CliRunner().invoke(main, ["train", "builtin:digits-cnn", "--backend", BOARD, "--steps", "20", "--schedule",
                                  "constant", "--json", str(out), "-o", str(weights), "-q"])
    assert r.exit_code == 9, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("tinysyn: error:")]
    assert len(errors) == 1 and "step 7" in errors[0] and "CRC mismatch" in errors[0]
    report = json.loads(out.read_text())
    assert report["steps_done"] == 7 and report["bit_exact"] is True
    # the kept weights are the reference's after the 7 good steps
    graph = build(builtin.load_builtin("builtin:digits-cnn", 1))
    expected = TrainModel(graph, "int8", lr=0.1, seed=1)
    train(expected, datasets.load("digits", graph.input_shape, 10), 7, seed=1, schedule="constant")
    kept = np.load(weights)
    for i, p in expected.params.items():
        assert np.array_equal(kept[f"layer{i}_q"], p.w) and np.array_equal(kept[f"layer{i}_bias_q"], p.b)


def test_a_step_too_large_for_the_board_is_refused_before_building(tmp_path, monkeypatch):
    memory = dict(board_training.board_memory(BOARD), ram_bytes=96 * 1024)  # a board with 96 KiB of RAM
    monkeypatch.setattr(board_training, "board_memory", lambda board: memory)
    with pytest.raises(ResourceError, match=r"fp32 training step needs about [\d,]+ bytes of RAM"):
        training.run("../shared/models/kws_ref_model.tflite", mode="fp32", update="last:2", backend=BOARD,
                     steps=1, work=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing generated, nothing built


def test_a_board_that_stops_answering_stops_the_run_in_one_line(tmp_path, monkeypatch):
    original = TrainClient.send_sample
    sent = []

    def fall_silent_at_step_4(self, data):
        sent.append(data)
        if len(sent) == 5:  # the app resets into the bootloader, which does not speak this protocol
            self.command("tsn-boot")
            self.timeout = 2.0
        original(self, data)

    monkeypatch.setattr(TrainClient, "send_sample", fall_silent_at_step_4)
    out = tmp_path / "r.json"
    r = CliRunner().invoke(main, ["train", "builtin:digits-cnn", "--backend", BOARD, "--steps", "10", "--json",
                                  str(out), "-q"])
    assert r.exit_code == 9, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("tinysyn: error:")]
    assert len(errors) == 1 and "step 4" in errors[0] and "no reply" in errors[0]
    assert json.loads(out.read_text())["steps_done"] == 4
