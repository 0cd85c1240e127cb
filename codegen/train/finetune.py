"""Fine-tuning an imported model: a fresh head for the dataset's classes and a learning rate to match.

A pretrained model's features are on whatever scale its training left them
(mean |h|^2 of the head's input is about 1800 in KWS and 60 in ResNet-8 on
digits), and SGD on a linear head is stable only below lr ~ 2 / |h|^2. So a
fixed default learning rate either diverges on one model or crawls on
another; :func:`head_lr` scales it by the measured feature energy instead.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError, UnsupportedError
from .data import Dataset
from .graph import TrainGraph
from .model import TrainModel

LR_GAIN = 1.0  # lr * mean |h|^2: each step moves a sample's logits by about (p - onehot)
PROBE_SAMPLES = 64  # training samples the feature energy is measured on
def reset_head(graph: TrainGraph, classes: int) -> None:
    """Replace the classifier (the fc producing the logits) by a fresh one with ``classes`` outputs.

    Fine-tuning an imported model on another dataset: its head maps features to the
    wrong classes (KWS's 12 words for 10 digits). The new head starts at zero, every
    class equally likely, so the first steps are not spent undoing large random
    logits (pretrained features are far from unit scale: |h|^2 is about 1800 in KWS).
    """
    head = graph.layers[-1]
    if head.kind != "fc" or head.output != graph.logits:
        raise UnsupportedError(f"{graph.source}: --head reset needs a fully connected layer producing the logits, "
                               f"the last layer is {head.where}")
    if not head.trainable:
        raise InputError(f"--head reset: the head, {head.where}, must be among the updated layers")
    head.weights = np.zeros((classes, head.weights.shape[1]))
    head.bias = np.zeros(classes)
    head.out_shape = (classes,)
    graph.classes = classes


def head_lr(graph: TrainGraph, data: Dataset, gain: float = LR_GAIN) -> float:
    """gain / mean |h|^2, h the head's input (real values, fp32 forward) on the first training samples."""
    probe = TrainModel(graph, "fp32", lr=1.0)
    h = graph.layers[-1].inputs[0]
    energy = np.mean([np.sum(probe.activations(probe.input(x, data.exp))[h] ** 2)
                      for x in data.x_train[:PROBE_SAMPLES]])
    if not energy > 0:
        raise InputError(f"{graph.source}: the features entering the head are all zero on {data.name}; "
                         "give --lr explicitly")
    return float(f"{gain / energy:.3g}")
