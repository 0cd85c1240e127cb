"""What each layer computes, forward and backward, written once for both arithmetics.

Sums go through ``ar.dot`` (int32-exact int64 in int8, float32 in fp32); how an
accumulator becomes an activation or a gradient, and how parameters move, is
the arithmetic's business (:mod:`arith`). The order of calls here is part of
the int8 contract: it fixes the order of random draws (TRAINING.md).
"""
from __future__ import annotations

from .arith import Params, Value
from .geometry import Patches
from .graph import Layer


def forward(layer: Layer, geo: Patches | None, p: Params | None, ins: list[Value], ar) -> Value:
    x = ins[0]
    kind = layer.kind
    if kind == "conv":
        cols = geo.gather(x.data).reshape(geo.index.shape[0], -1)
        acc = ar.dot("pk,ok->po", cols, p.w.reshape(p.w.shape[0], -1))
        return _shaped(ar.output(acc, x.exp + p.w_exp, layer, p), layer)
    if kind == "dwconv":
        cols = geo.gather(x.data)
        acc = ar.dot("pkc,kc->pc", cols, p.w.reshape(-1, p.w.shape[-1]))
        return _shaped(ar.output(acc, x.exp + p.w_exp, layer, p), layer)
    if kind == "fc":
        acc = ar.dot("k,nk->n", x.data.ravel(), p.w)
        return ar.output(acc, x.exp + p.w_exp, layer, p)
    if kind == "avgpool":
        sums = ar.dot("pkc,pk->pc", geo.gather(x.data), geo.valid)
        return _shaped(ar.average(sums, x.exp, geo.count, layer), layer)
    if kind == "maxpool":
        return _shaped(ar.maximum(geo.gather(x.data), geo.valid, x.exp), layer)
    if kind == "add":
        return ar.add(x, ins[1], layer)
    if kind == "reshape":
        return Value(x.data.reshape(layer.out_shape), x.exp)
    raise AssertionError(kind)


def _shaped(v: Value, layer: Layer) -> Value:
    return Value(v.data.reshape(layer.out_shape), v.exp)


def backward(layer: Layer, geo: Patches | None, p: Params | None, ins: list[Value], y: Value, g: Value,
             ar, need_input_grad: bool) -> list[Value | None]:
    """Input gradients (None where not needed); updates ``p`` if the layer is trainable."""
    kind = layer.kind
    x = ins[0]
    if kind in ("conv", "dwconv", "fc"):
        g2, lac = ar.output_grad(g, y, layer, p if layer.trainable else None)
        if kind == "fc":
            gv, xv = g2.data.ravel(), x.data.ravel()
            dx = ar.dot("n,nk->k", gv, p.w).reshape(x.data.shape) if need_input_grad else None
            dw = ar.dot("n,k->nk", gv, xv) if layer.trainable else None
            db = gv
        else:
            gp = g2.data.reshape(geo.index.shape[0], -1)  # [P, C_out]
            cols = geo.gather(x.data)  # [P, KK, C_in]
            dx = None
            if kind == "conv":
                w = p.w.reshape(p.w.shape[0], -1)
                if need_input_grad:
                    dcols = ar.dot("po,ok->pk", gp, w).reshape(cols.shape)
                    dx = geo.scatter(dcols, x.data.shape)
                dw = ar.dot("pk,po->ok", cols.reshape(cols.shape[0], -1), gp).reshape(p.w.shape) if layer.trainable else None
            else:
                w = p.w.reshape(-1, p.w.shape[-1])
                if need_input_grad:
                    dx = geo.scatter(ar.dot("pc,kc->pkc", gp, w), x.data.shape)
                dw = ar.dot("pkc,pc->kc", cols, gp).reshape(p.w.shape) if layer.trainable else None
            db = ar.column_sum(gp)
        dx_value = ar.gradient(dx, g2.exp + p.w_exp) if need_input_grad else None
        if layer.trainable:
            ar.update(layer, p, dw, x.exp + g2.exp, db, g2.exp, lac)
        return [dx_value]
    if kind == "avgpool":
        g1, _ = ar.output_grad(g, y, layer, None)
        gp, exp = ar.scaled(Value(g1.data.reshape(geo.index.shape[0], -1), g1.exp), geo.count)
        taps = gp[:, None, :] * geo.valid[:, :, None]
        return [ar.gradient(geo.scatter(taps, x.data.shape), exp)]
    if kind == "add":
        g1, _ = ar.output_grad(g, y, layer, None)
        return [g1, g1]
    if kind == "reshape":
        return [Value(g.data.reshape(x.data.shape), g.exp)]
    raise AssertionError(kind)
