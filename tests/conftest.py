"""Shared fixtures: where the shared models live, hypothesis profiles."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TINYSYN_SHARED", REPO.parent / "shared"))
MODELS = SHARED / "models"
SHARED_MODELS = ["kws_ref_model", "pretrainedResnet_quant"]


# CI runs a fixed, derandomized sample; TINYSYN_HYPOTHESIS=thorough explores more.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=12,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", deadline=None, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("TINYSYN_HYPOTHESIS", "ci"))


def model_path(name: str) -> Path:
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.fail(f"shared model missing: {path} (set TINYSYN_SHARED)")
    return path


@pytest.fixture(scope="session")
def trained_digits():
    """builtin:digits-cnn through every DRESS stage on a short budget, row = filter, sparsities 0.5, 0.75, 0.9:
    (trainer, trained backbone, int8 DRESS model, its int8 graph)."""
    from codegen.dress import train as dress_train
    from codegen.frontends.tflite_writer import write as write_tflite

    sparsities = (0.5, 0.75, 0.9)
    short = dress_train.Budget(pretrain=300, sparse=300, bias=60)  # sub-nets above chance in seconds
    trainer = dress_train.trainer_for("builtin:digits-cnn", "digits", "filter", seed=3)
    dense, _ = dress_train.pretrain(trainer, short)
    trained = dress_train.dress(trainer, dense, sparsities, short)
    model, graph = dress_train.to_int8(trainer, trained, sparsities, "filter", write_tflite)
    return trainer, trained, model, graph


@pytest.fixture(scope="session")
def alq_digits():
    """builtin:digits-cnn through the ALQ pipeline on a short budget at 2 bits: (integer model, a held-out
    digit as the model's input). Every ALQ backend runs this model layer by layer."""
    from codegen.alq.train import digits_alq
    from codegen.train import data

    model = digits_alq(2.0, steps=40, pretrain_steps=200, progress=lambda _: None).model
    return model, data.load("digits", model.input_shape, 10).x_test[0]
