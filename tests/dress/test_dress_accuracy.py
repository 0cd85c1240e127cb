"""The accuracy `tinysyn profile --subnet all` plots: each sub-net's top-1 on digits, from its NumPy reference."""
from __future__ import annotations

import json

from click.testing import CliRunner

from codegen.dress import format as dress_format
from codegen.dress.accuracy import evaluate
from host.cli import main


def test_labelled_accuracy_is_what_dress_training_measured(tmp_path):
    """A DRESS-trained digits classifier: the accuracy against the labels equals the int8 test accuracy the
    trainer reports for every sub-net (its own inputs and reference run, codegen/dress/train.py)."""
    path, report = tmp_path / "digits.dress", tmp_path / "train.json"
    result = CliRunner().invoke(main, ["dress", "builtin:digits-cnn", "--steps", "300", "-o", str(path), "--json",
                                       str(report), "--quiet"])
    assert result.exit_code == 0, result.output
    trained = [s["int8_accuracy"] for s in json.loads(report.read_text())["subnets"]]
    measured = evaluate(dress_format.read(path), labelled=True)
    assert measured["metric"] == "top1_accuracy" and measured["inputs"] == "digits test split, 359 samples"
    assert measured["subnets"] == trained
    assert len(set(trained)) > 1  # sub-nets that differ: a measure ignoring the sub-net could not pass
    unlabelled = evaluate(dress_format.read(path), labelled=False, count=40)
    assert unlabelled["metric"] == "top1_agreement" and unlabelled["source"] == 1.0
