"""tinysyn dress, gen and run on a DRESS file: files, sub-net switching, one-line errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import model_path

from host.cli import main

KWS = str(model_path("kws_ref_model"))


def tinysyn(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def one_line_error(result, code: int, text: str) -> None:
    errors = [line for line in result.output.splitlines() if line.startswith("tinysyn: error:")]
    assert result.exit_code == code and len(errors) == 1 and text in errors[0], result.output


@pytest.fixture(scope="module")
def dress_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dress") / "kws.dress"
    r = tinysyn("dress", KWS, "--sparsity", "0.5,0.9", "-o", path)
    assert r.exit_code == 0, r.output
    assert path.read_bytes()[:4] == b"DRES"
    return path


def test_run_each_subnet_in_numpy_and_host_c(dress_file, tmp_path):
    outputs = {}
    for k in (0, 1):
        for backend in ("numpy", "host-c"):
            out = tmp_path / f"{backend}-{k}.npy"
            r = tinysyn("run", dress_file, "--backend", backend, "--random", 4, "--seed", 3, "--subnet", k,
                        "--output", out)
            assert r.exit_code == 0, r.output
            assert f"sub-net {k} of 2" in r.output
            outputs[backend, k] = np.load(out)
    for k in (0, 1):  # the generated sparse C against the NumPy reference of the same sub-net
        assert np.array_equal(outputs["host-c", k], outputs["numpy", k])
    assert not np.array_equal(outputs["numpy", 0], outputs["numpy", 1])  # the switch reaches the kernels


def test_gen_writes_the_sparse_model(dress_file, tmp_path):
    r = tinysyn("gen", dress_file, "-o", tmp_path / "gen")
    assert r.exit_code == 0, r.output
    sources = "".join(p.read_text() for p in (tmp_path / "gen").glob("*.c"))
    assert "tsn_sparse_" in sources and "_set_subnet(" in sources


def test_bad_requests_are_one_line_errors(dress_file, tmp_path):
    one_line_error(tinysyn("run", dress_file, "--backend", "numpy", "--random", 1, "--subnet", 2, "--output",
                           tmp_path / "y.npy"), 4, "sub-net 2 out of range")
    one_line_error(tinysyn("run", KWS, "--backend", "numpy", "--random", 1, "--subnet", 0, "--output",
                           tmp_path / "y.npy"), 4, "--subnet needs a DRESS file")
    one_line_error(tinysyn("dress", KWS, "--sparsity", "0.5,1.2", "-o", tmp_path / "x.dress"), 4, "sparsit")
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "x.dress").exists()


def test_dress_trains_a_builtin_and_its_subnets_run_in_host_c(tmp_path):
    path, report = tmp_path / "digits.dress", tmp_path / "digits.json"
    r = tinysyn("dress", "builtin:digits-cnn", "--steps", 150, "--gamma", 0.5, "--sparsity", "0.5,0.8",
                "-o", path, "--json", report, "--quiet")
    assert r.exit_code == 0, r.output
    assert "sub-net 1: sparsity 0.8" in r.output and "int8 test accuracy" in r.output
    rows = json.loads(report.read_text())["subnets"]
    assert [row["sparsity"] for row in rows] == [0.5, 0.8] and rows[0]["int8_accuracy"] > 0.1
    x = np.random.default_rng(4).integers(0, 128, size=(3, 8, 8, 1), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    for k in (0, 1):
        outs = []
        for backend in ("numpy", "host-c"):
            out = tmp_path / f"{backend}-{k}.npy"
            r = tinysyn("run", path, "--backend", backend, "--input", tmp_path / "x.npy", "--subnet", k, "--output", out)
            assert r.exit_code == 0, r.output
            outs.append(np.load(out))
        assert np.array_equal(outs[0], outs[1])


def test_dress_training_options_are_checked(tmp_path):
    out = tmp_path / "x.dress"
    one_line_error(tinysyn("dress", "builtin:digits-cnn", "--gamma", -1, "--steps", 5, "-o", out), 4, "gamma -1")
    one_line_error(tinysyn("dress", KWS, "--gamma", 1, "-o", out), 4, "--gamma applies to DRESS training")
    one_line_error(tinysyn("dress", "builtin:nope", "-o", out), 4, "unknown builtin")
    assert not out.exists()
