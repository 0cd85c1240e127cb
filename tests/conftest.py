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
