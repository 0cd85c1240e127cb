"""A training graph with its parameters in one arithmetic: one SGD step, or a prediction."""
from __future__ import annotations

import numpy as np

from .arith import ARITHMETICS, Params, Value
from .geometry import Patches
from .graph import WEIGHTED, TrainGraph
from .layers import backward, forward


class TrainModel:
    def __init__(self, graph: TrainGraph, mode: str, **arith_options):
        self.graph = graph
        self.ar = ARITHMETICS[mode](**arith_options)
        self.mode = mode
        self.base_lr_q = self.ar.lr_q  # a schedule's starting rate
        self.geo = {l.index: Patches(l.in_shapes[0], l.out_shape, l.window) for l in graph.layers if l.window}
        self.params: dict[int, Params] = {l.index: self.ar.init_params(l) for l in graph.layers if l.kind in WEIGHTED}
        if mode == "int8":  # frozen layers keep no LAC parameters
            for l in graph.layers:
                if l.kind in WEIGHTED and not l.trainable:
                    self.params[l.index].mu = self.params[l.index].off = None

    def set_lr(self, lr_q: int) -> None:
        self.ar.set_lr(lr_q)

    def input(self, q: np.ndarray, exp: int) -> Value:
        """A sample given as int8 data with exponent (fp32 takes the same real values)."""
        if self.mode == "int8":
            return Value(q.astype(np.int8), exp)
        return Value(q.astype(np.float32) * np.ldexp(np.float32(1), exp))  # one rounding, as the C

    def _forward(self, x: Value) -> dict[int, Value]:
        values = {self.graph.input: x}
        for layer in self.graph.layers:
            ins = [values[t] for t in layer.inputs]
            values[layer.output] = forward(layer, self.geo.get(layer.index), self.params.get(layer.index), ins, self.ar)
        return values

    def step(self, q: np.ndarray, exp: int, label: int):
        """One SGD step on one int8 sample (value q * 2^exp); returns the loss (Q16 integer in int8, float in fp32)."""
        x = self.input(q, exp)
        self.ar.training = True
        values = self._forward(x)
        loss, g = self.ar.loss(values[self.graph.logits], label)
        grads = {self.graph.logits: g}
        first = self.graph.first_backward
        produced_in_backward = {l.output for l in self.graph.layers[first:]}
        for layer in reversed(self.graph.layers[first:]):
            g = grads.pop(layer.output, None)
            if g is None:
                continue
            ins = [values[t] for t in layer.inputs]
            need = any(t in produced_in_backward for t in layer.inputs)
            in_grads = backward(layer, self.geo.get(layer.index), self.params.get(layer.index), ins,
                                values[layer.output], g, self.ar, need)
            for t, gi in zip(layer.inputs, in_grads):
                if gi is not None and t in produced_in_backward:
                    grads[t] = self.ar.merge(grads[t], gi) if t in grads else gi
        return loss

    def logits(self, x: Value) -> np.ndarray:
        self.ar.training = False
        v = self._forward(x)[self.graph.logits]
        return v.data.ravel()

    def activations(self, x: Value) -> dict[int, np.ndarray]:
        """Every tensor's real values in an evaluation forward (nearest rounding, no draws)."""
        self.ar.training = False
        return {t: v.data.astype(np.float64) * 2.0**v.exp for t, v in self._forward(x).items()}

    def predict(self, x: Value) -> int:
        return int(np.argmax(self.logits(x)))

    def snapshot(self) -> dict[int, Params]:
        return {i: p.copy() for i, p in self.params.items()}

    def restore(self, snap: dict[int, Params]) -> None:
        self.params = {i: p.copy() for i, p in snap.items()}

    def real_weights(self) -> dict[str, np.ndarray]:
        out = {}
        for layer in self.graph.layers:
            if layer.index in self.params:
                out[f"{layer.index}_{layer.kind}"] = self.ar.real_weights(self.params[layer.index])
        return out
