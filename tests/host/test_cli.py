"""The tinysyn CLI, run as a user runs it: a subprocess, exit codes, one-line errors."""
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import model_path

KWS = str(model_path("kws_ref_model"))


def tinysyn(*args):
    return subprocess.run([sys.executable, "-m", "host.cli", *map(str, args)], capture_output=True, text=True)


def test_info_json_reports_layers_macs_weights_arena():
    proc = tinysyn("info", KWS, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert len(info["layers"]) == 13
    assert info["macs"] == sum(layer["macs"] for layer in info["layers"])
    # KWS: 5 convs and 4 depthwise over 25x5x64, FC 64->12: MACs counted by hand
    assert info["macs"] == 25 * 5 * 64 * (10 * 4 * 1) + 4 * 25 * 5 * 64 * 64 + 4 * 25 * 5 * 64 * 9 + 64 * 12
    assert info["arena_bytes"] == 16000
    assert info["weight_bytes"] > 0


def test_gen_writes_a_buildable_model(tmp_path):
    out = tmp_path / "kws"
    proc = tinysyn("gen", KWS, "-o", out, "--target", "cortex-m4")
    assert proc.returncode == 0, proc.stderr
    assert (out / "kws_ref_model.h").exists() and (out / "Makefile").exists()
    make = subprocess.run(["make", "-C", str(out)], capture_output=True, text=True)
    assert make.returncode == 0, make.stderr
    assert (out / "libkws_ref_model.a").exists()


def test_run_host_c_equals_numpy(tmp_path):
    for backend in ("numpy", "host-c"):
        proc = tinysyn("run", KWS, "--backend", backend, "--random", 5, "--seed", 3, "--output", tmp_path / f"{backend}.npy")
        assert proc.returncode == 0, proc.stderr
    a, b = np.load(tmp_path / "numpy.npy"), np.load(tmp_path / "host-c.npy")
    assert a.shape == (5, 12) and a.dtype == np.int8
    assert np.array_equal(a, b)


def test_run_accepts_inputs_with_and_without_batch_dim(tmp_path):
    x = np.random.default_rng(0).integers(-128, 128, size=(3, 1, 49, 10, 1), dtype=np.int8)
    np.save(tmp_path / "with.npy", x)
    np.save(tmp_path / "without.npy", x[:, 0])
    for name in ("with", "without"):
        proc = tinysyn("run", KWS, "--backend", "numpy", "--input", tmp_path / f"{name}.npy", "--output",
                       tmp_path / f"{name}.out.npy")
        assert proc.returncode == 0, proc.stderr
    assert np.array_equal(np.load(tmp_path / "with.out.npy"), np.load(tmp_path / "without.out.npy"))


@pytest.mark.parametrize("args, code, message", [
    (["info", "/nonexistent.tflite"], 2, "cannot read model"),
    (["run", KWS, "--backend", "numpy", "--output", "x.npy"], 4, "exactly one of --input"),
    (["run", KWS, "--backend", "numpy", "--random", "0", "--output", "x.npy"], 4, "--random must be at least 1"),
])
def test_errors_are_one_line_with_exit_codes(args, code, message):
    proc = tinysyn(*args)
    assert proc.returncode == code
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("tinysyn: error:")


def test_wrong_input_shape_leaves_no_output(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((2, 7), np.int8))
    out = tmp_path / "y.npy"
    proc = tinysyn("run", KWS, "--backend", "host-c", "--input", tmp_path / "bad.npy", "--output", out)
    assert proc.returncode == 4 and "does not fit the model input" in proc.stderr
    assert not out.exists()
