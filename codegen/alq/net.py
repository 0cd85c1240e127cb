"""A batched float forward and backward of a training graph, with ALQ's activation quantizers.

The layers are codegen/train's (the IR model's conv, depthwise, fc, average pool and
reshape, with their windows as :class:`~codegen.train.geometry.Patches`), computed on a
batch in float64. With quantizers, every weighted layer's input goes through its own
:class:`~.activations.ActQuant` before the sum, and padding taps take the lowest level, as
the integer reference does; the backward pass is straight-through. Without them it is the
plain float network used for pre-training.
"""
from __future__ import annotations

import numpy as np

from ..train.geometry import Patches
from ..train.graph import WEIGHTED, TrainGraph
from .activations import ActQuant

KINDS = ("conv", "dwconv", "fc", "avgpool", "reshape")


class Net:
    def __init__(self, tg: TrainGraph):
        for layer in tg.layers:
            if layer.kind not in KINDS:
                raise AssertionError(f"{layer.where}: not an ALQ layer kind")
        self.layers = tg.layers
        self.geo = {l.index: Patches(l.in_shapes[0], l.out_shape, l.window) for l in tg.layers if l.window}
        self.weighted = [l.index for l in tg.layers if l.kind in WEIGHTED]

    def _gather(self, index: int, x: np.ndarray, pad: float) -> np.ndarray:
        """[B, H, W, C] -> [B, P, KK, C], taps outside the image ``pad``."""
        geo = self.geo[index]
        flat = x.reshape(len(x), geo.pixels, -1)
        ext = np.concatenate([flat, np.full((len(x), 1, flat.shape[2]), pad)], axis=1)
        return ext[:, geo.index]

    def _scatter(self, index: int, taps: np.ndarray, shape) -> np.ndarray:
        geo = self.geo[index]
        ext = np.zeros((len(taps), geo.pixels + 1, taps.shape[-1]))
        np.add.at(ext, (slice(None), geo.index), taps)
        return ext[:, : geo.pixels].reshape(shape)

    def forward(self, x: np.ndarray, weights: dict, biases: dict, acts: dict[int, ActQuant] | None = None,
                update_acts: bool = False) -> tuple[np.ndarray, list]:
        """Logits [B, classes] and the cache for :meth:`backward`. ``update_acts``: the quantizers
        take a running-average least-squares step on this batch's inputs first."""
        cache = []
        for layer in self.layers:
            i, kind = layer.index, layer.kind
            inp, pad, mask = x, 0.0, None
            if acts is not None and kind in WEIGHTED:
                if update_acts:
                    acts[i].update(x)
                mask = acts[i].passes(x)
                inp, pad = acts[i].quantize(x)[0], acts[i].lowest()
            if kind == "conv":
                cols = self._gather(i, inp, pad).reshape(len(x), -1, self.geo[i].index.shape[1] * x.shape[-1])
                y = cols @ weights[i].reshape(len(weights[i]), -1).T + biases[i]
            elif kind == "dwconv":
                cols = self._gather(i, inp, pad)
                y = np.einsum("bpkc,kc->bpc", cols, weights[i].reshape(-1, x.shape[-1])) + biases[i]
            elif kind == "fc":
                cols = inp.reshape(len(x), -1)
                y = cols @ weights[i].T + biases[i]
            elif kind == "avgpool":
                cols = None
                y = self._gather(i, x, 0.0).mean(axis=2)
            else:
                cols = None
                y = x
            y = y.reshape(len(x), *layer.out_shape)
            relu = layer.activation == "RELU" and kind in WEIGHTED
            cache.append((x, cols, mask, y if relu else None))
            x = np.maximum(y, 0.0) if relu else y
        return x.reshape(len(x), -1), cache

    def backward(self, grad: np.ndarray, cache: list, weights: dict) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """dl/dw and dl/db of every weighted layer from dl/dlogits (straight through the quantizers)."""
        out = {}
        for layer, (x, cols, mask, pre) in zip(reversed(self.layers), reversed(cache)):
            i, kind = layer.index, layer.kind
            g = grad.reshape(len(x), *layer.out_shape)
            if pre is not None:
                g = g * (pre > 0)
            if kind == "conv":
                gp = g.reshape(len(x), -1, g.shape[-1])  # [B, P, O]
                w = weights[i].reshape(len(weights[i]), -1)
                out[i] = (np.einsum("bpk,bpo->ok", cols, gp).reshape(weights[i].shape), gp.sum(axis=(0, 1)))
                taps = (gp @ w).reshape(len(x), gp.shape[1], -1, x.shape[-1])
                grad = self._scatter(i, taps, x.shape)
            elif kind == "dwconv":
                gp = g.reshape(len(x), -1, g.shape[-1])
                w = weights[i].reshape(-1, x.shape[-1])
                out[i] = (np.einsum("bpkc,bpc->kc", cols, gp).reshape(weights[i].shape), gp.sum(axis=(0, 1)))
                grad = self._scatter(i, gp[:, :, None, :] * w, x.shape)
            elif kind == "fc":
                gv = g.reshape(len(x), -1)
                out[i] = (gv.T @ cols, gv.sum(axis=0))
                grad = (gv @ weights[i]).reshape(x.shape)
            elif kind == "avgpool":
                gp = g.reshape(len(x), -1, g.shape[-1])
                taps = np.repeat(gp[:, :, None, :] / self.geo[i].index.shape[1], self.geo[i].index.shape[1], axis=2)
                grad = self._scatter(i, taps, x.shape)
            else:
                grad = g.reshape(x.shape)
            if mask is not None:
                grad = grad * mask
        return out


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over the batch and its gradient."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(labels)), labels] + 1e-12).mean()
    p[np.arange(len(labels)), labels] -= 1
    return float(loss), p / len(labels)
