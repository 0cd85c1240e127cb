"""tinysyn train: report keys, files, and one-line errors with their exit codes."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from host.cli import main


def run(*args):
    return CliRunner().invoke(main, ["train", *args, "-q"])


def test_train_writes_report_plot_and_weights(tmp_path):
    out = tmp_path / "r.json"
    r = run("builtin:digits-cnn", "--steps", "60", "--eval-every", "30", "--json", str(out),
            "--plot", str(tmp_path / "r.png"), "-o", str(tmp_path / "w.npz"))
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    for key in ("mode", "backend", "steps", "loss", "test_accuracy", "bit_exact", "peak_ram_bytes",
                "instructions_per_step"):
        assert key in report
    assert report["mode"] == "int8" and report["backend"] == "numpy" and report["steps"] == 60
    assert len(report["loss"]) == 60 and len(report["loss_q16"]) == 60
    assert all(v == q / 65536 for v, q in zip(report["loss"], report["loss_q16"]))
    assert 0 <= report["test_accuracy"] <= 1
    assert report["accuracy_checkpoints"][0]["step"] == 30
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    weights = np.load(tmp_path / "w.npz")
    assert weights["layer5_q"].dtype == np.int8 and weights["layer5_weights"].shape == (10, 128)


def test_divergence_is_one_line_exit_9_and_keeps_weights(tmp_path):
    r = run("builtin:digits-cnn", "--steps", "200", "--lr", "50", "-o", str(tmp_path / "w.npz"),
            "--json", str(tmp_path / "r.json"))
    assert r.exit_code == 9
    errors = [line for line in r.output.splitlines() if line.startswith("tinysyn: error:")]
    assert len(errors) == 1 and "training stopped" in errors[0] and "diverged" in errors[0]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["diverged"] and report["steps_done"] < 200
    assert (tmp_path / "w.npz").exists()


def test_bad_requests_are_one_line_errors():
    r = run("builtin:nope", "--steps", "1")
    assert r.exit_code == 4 and "unknown builtin" in r.output
    r = run("builtin:digits-cnn", "--update", "last:0", "--steps", "1")
    assert r.exit_code == 4 and "last:0" in r.output
    r = run("no/such.tflite", "--steps", "1")
    assert r.exit_code != 0 and r.output.count("tinysyn: error:") == 1


def test_host_c_backend_checks_every_step(tmp_path):
    out = tmp_path / "r.json"
    r = run("builtin:digits-cnn", "--backend", "host-c", "--steps", "40", "--update", "last:2", "--json", str(out))
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    assert report["backend"] == "host-c" and report["bit_exact"] is True and report["first_mismatch"] is None
    assert 1000 < report["peak_ram_bytes"] < 20000
    fp32 = tmp_path / "fp32.json"
    r = run("builtin:digits-cnn", "--backend", "host-c", "--mode", "fp32", "--steps", "40", "--update", "last:2",
            "--json", str(fp32))
    assert r.exit_code == 0, r.output
    baseline = json.loads(fp32.read_text())
    assert baseline["mode"] == "fp32" and baseline["bit_exact"] is True
    fast = tmp_path / "fast.json"
    r = run("builtin:digits-cnn", "--backend", "host-c", "--step-memory", "fast", "--steps", "40", "--update",
            "last:2", "--json", str(fast))
    assert r.exit_code == 0, r.output
    kept_all = json.loads(fast.read_text())
    assert kept_all["step_memory"] == "fast" and kept_all["bit_exact"] is True
    assert kept_all["loss_q16"] == report["loss_q16"]  # the plan changes memory, never a result
    assert kept_all["peak_ram_bytes"] > report["peak_ram_bytes"]  # small makes sums twice to save RAM
    assert baseline["peak_ram_bytes"] > report["peak_ram_bytes"]  # floats: four bytes an element
