"""make bench-train: five variants on one schedule, a JSON summary, the Markdown table and the plot."""
from __future__ import annotations

import json

import pytest

from host import bench_train

NAMES = ["fp32", "int8 LAC+PRC", "int8 no LAC", "int8 no PRC", "int8 neither"]


def test_tiny_schedule_writes_five_variants_table_and_plot(tmp_path, capsys):
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    assert bench_train.main(["--steps", "50", "--seeds", "3", "--finetune-steps", "0", "--json", str(out),
                             "--plot", str(png)]) == 0
    report = json.loads(out.read_text())
    assert (report["steps"], report["seeds"], report["lr"]) == (50, [3], bench_train.DEFAULT_LR)

    rows = report["variants"]
    assert [r["variant"] for r in rows] == NAMES
    assert [(r["mode"], r["lac"], r["prc"]) for r in rows] == [
        ("fp32", None, None), ("int8", True, True), ("int8", False, True), ("int8", True, False),
        ("int8", False, False)]
    for r in rows:
        assert 0 <= r["accuracy_min"] <= r["accuracy_mean"] <= r["accuracy_max"] <= 1
        assert r["final_loss_mean"] > 0 and r["diverged"] == 0
    assert rows[0]["delta_vs_fp32_pp"] == 0
    assert rows[1]["delta_vs_fp32_pp"] == pytest.approx(
        100 * (rows[1]["accuracy_mean"] - rows[0]["accuracy_mean"]), abs=0.01)

    # one summary per run, same schedule for all, each run trained with its variant's flags
    assert [(r["variant"], r["seed"], r["steps"], r["steps_done"]) for r in report["runs"]] == [
        (name, 3, 50, 50) for name in NAMES]
    assert [(r["mode"], r["lac"], r["prc"]) for r in report["runs"]] == [
        (r["mode"], r["lac"], r["prc"]) for r in rows]
    for r in report["runs"]:  # no per-step loss lists
        assert set(r) == {"variant", "mode", "lac", "prc", "steps", "steps_done", "lr", "seed", "test_accuracy",
                          "final_loss", "diverged", "train_seconds"}
    # the arithmetic differs between variants, so the runs do too
    assert len({r["final_loss"] for r in report["runs"]}) == 5

    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| variant | test accuracy | Δ vs fp32 (pp) | mean loss (last 50 steps) |")
    body = [line.split(" | ") for line in table[1:]]
    assert [cells[0].lstrip("| ") for cells in body] == NAMES
    for cells, r in zip(body, rows):
        assert cells[1] == f"{100 * r['accuracy_mean']:.1f}%"
        assert cells[3].rstrip(" |") == f"{r['final_loss_mean']:.3f}"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_uses_its_seed_and_the_last_200_steps():
    a, b = (bench_train.run_variant(("fp32", "fp32", None, None, 250, 0.03, seed)) for seed in (1, 2))
    assert len(a["_loss"]) == 250 and a["steps_done"] == 250 and (a["seed"], b["seed"]) == (1, 2)
    assert a["final_loss"] == pytest.approx(sum(a["_loss"][-200:]) / 200, abs=1e-5)
    assert a["_loss"] != b["_loss"]  # the seed reaches the initial weights and the sample order


def test_seeds_summary_and_markdown_range():
    runs = [{"variant": name, "seed": seed, "test_accuracy": acc, "final_loss": 0.5, "diverged": None}
            for name in NAMES for seed, acc in ((1, 0.9), (2, 0.8))]
    runs[2]["test_accuracy"], runs[2]["diverged"] = 0.5, "step 9: diverged"  # int8 LAC+PRC seed 1
    rows = bench_train.summarize(runs)
    assert rows[1]["accuracy_mean"] == pytest.approx(0.65) and rows[1]["diverged"] == 1
    assert rows[1]["delta_vs_fp32_pp"] == pytest.approx(-20.0)
    lines = bench_train.markdown(rows).splitlines()
    assert "mean (min-max) of 2 seeds" in lines[0]
    assert lines[3] == "| int8 LAC+PRC | 65.0% (50.0-80.0), 1 diverged | -20.0 | 0.500 |"


def test_bad_seeds_are_rejected():
    with pytest.raises(SystemExit):
        bench_train.main(["--seeds", "1,x"])
    with pytest.raises(SystemExit):
        bench_train.main(["--seeds", "1,1"])


def test_a_finetune_row_runs_a_shared_model_with_its_defaults():
    label, file = bench_train.FINETUNE_MODELS[0]
    row = bench_train.run_finetune((label, file, "last:1", "int8", 20))
    assert (row["model"], row["update"], row["mode"], row["steps_done"]) == (label, "last:1", "int8", 20)
    assert row["head"] == "reset" and 0 < row["lr"] < 0.1  # an imported model: zero head, feature-scaled rate
    assert abs(row["start_accuracy"] - 0.1058) < 0.01  # the zero head: every class equally likely
    line = bench_train.finetune_markdown([row]).splitlines()[-1]
    assert line.startswith(f"| {label} | last:1 | int8 | 20 | ") and line.endswith(f"{100 * row['test_accuracy']:.1f}% |")
