"""tinysyn alq: a builtin quantized and written, its JSON report, and one-line errors that write nothing."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from conftest import model_path

from codegen.alq import format as alq_format
from codegen.alq import reference
from codegen.train import data
from host.cli import main


def tinysyn(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def one_line_error(result, code: int, text: str) -> None:
    errors = [line for line in result.output.splitlines() if line.startswith("tinysyn: error:")]
    assert result.exit_code == code and len(errors) == 1 and text in errors[0], result.output


def test_alq_writes_a_model_the_reference_runs(tmp_path):
    out, report = tmp_path / "m.npz", tmp_path / "r.json"
    r = tinysyn("alq", "builtin:digits-cnn", "--avg-bits", 2, "--steps", 30, "--pretrain-steps", 150,
                "--group", "subchannel:3", "--act-bits", 3, "--json", report, "-o", out)
    assert r.exit_code == 0, r.output
    assert "integer test accuracy" in r.output
    model = alq_format.read(out)
    summary = json.loads(report.read_text())
    assert summary["avg_bits"] <= 2 and summary["act_bits"] == 3
    assert all(layer.group == "subchannel" for layer in model.layers if layer.alq)
    digits = data.load("digits", (8, 8, 1), 10)
    hits = (reference.predict(model, digits.x_test) == digits.y_test).mean()
    assert hits == summary["int_accuracy"]


def test_bad_options_are_one_line_errors_and_write_nothing(tmp_path):
    out = tmp_path / "m.npz"
    for args, text in ((("--avg-bits", 0), "--avg-bits 0"), (("--avg-bits", 8.5), "I_max = 8"),
                       (("--avg-bits", 2, "--group", "rows"), "--group 'rows'"),
                       (("--avg-bits", 2, "--group", "subchannel:0"), "subchannel:N"),
                       (("--avg-bits", 2, "--act-bits", 9), "--act-bits 9"),
                       (("--avg-bits", 2, "--dataset", "digits", "--group", "subchannel:99"), "only 9 inputs")):
        one_line_error(tinysyn("alq", "builtin:digits-cnn", *args, "--pretrain-steps", 0, "--steps", 1, "-o", out),
                       4, text)
    one_line_error(tinysyn("alq", model_path("kws_ref_model"), "--avg-bits", 2, "-o", out), 3,
                   "layer 9 (AVERAGE_POOL_2D): average pool 25x5")
    assert not out.exists()
    assert not np.any([p.name.startswith(".m.npz") for p in tmp_path.iterdir()])
