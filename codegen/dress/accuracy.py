"""What each DRESS sub-net's sparsity costs in accuracy, on its NumPy reference (which the board equals
byte for byte: ``tinysyn profile --subnet`` checks every layer).

Inputs are the digits test split fitted to the model's input (:func:`oneshot.digits_split`). Two measures:

- ``top1_accuracy``: top-1 accuracy against the digits labels, for a model that classifies digits (the
  caller says so, and its output has the 10 digit classes), on the digits as tinysyn trains on them (real
  pixel / 16, as ``tinysyn dress builtin:digits-cnn`` and ``tinysyn train`` see them); the source dense
  model's is the baseline;
- ``top1_agreement``: otherwise, the fraction of inputs on which a sub-net's top-1 class equals the
  DRESS file's source dense model's (1.0 for the source itself), on the digits spread over the real range
  the model's input quantization covers, as one-shot DRESS calibrates on them.
"""
from __future__ import annotations

import numpy as np

from .. import ref
from ..frontends import tflite
from ..train.data import LABELS
from .format import DressModel
from .oneshot import digits_split
from .reference import subnet_graph


def evaluate(model: DressModel, labelled: bool = False, count: int | None = None) -> dict:
    """Each sub-net's top-1 accuracy (``labelled`` and a 10-class model) or agreement with the source model
    on the first ``count`` (None: all) digits of the test split."""
    graph = tflite.parse(model.tflite)
    classes = graph.op_output(graph.ops[-1]).shape[-1]
    metric = "top1_accuracy" if labelled and classes == LABELS["digits"] else "top1_agreement"
    x, labels = digits_split(graph, "test", count, spread=metric == "top1_agreement")
    source = ref.run(graph, x).reshape(len(x), -1).argmax(axis=1)
    truth = labels if metric == "top1_accuracy" else source
    subnets = [ref.run(subnet_graph(model, k, graph), x).reshape(len(x), -1).argmax(axis=1)
               for k in range(model.subnets)]
    return {
        "metric": metric,
        "against": "digits labels" if metric == "top1_accuracy" else "the source dense model's top-1 class",
        "inputs": f"digits test split, {len(x)} samples",
        "classes": classes,
        "source": float(np.mean(source == truth)),
        "subnets": [float(np.mean(pred == truth)) for pred in subnets],
    }
