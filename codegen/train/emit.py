"""Generate C for one training step (int8 or fp32): kernels, a planned static arena and the step itself.

The step is straight-line code, one commented block per layer, in the order
TRAINING.md fixes (forward in layer order, the loss, backward in reverse with
each layer's update right after its input gradient). The arena is planned over
a timeline of the step: forward of layer i at time i, the loss at L, backward
of layer i at 2L - i; saved activations live until the last backward that
reads them, gradients from their producer's to their consumer's backward.
Both arithmetics share the plan, the step code and the model templates; fp32
tensors are floats (4 bytes an element), carry no exponents and need no int32
scratch, and its kernels (tsn_train_f32.c) end in _f32. An int8 kernel's int32
scratch lives only while the call runs; kernels that can make their sums again
keep only the pixels' sums that fit under the step's peak (TRAINING.md, Memory).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..emit.c import environment, write_files
from ..errors import UnsupportedError
from ..passes.plan import Buffer, place
from . import arith, floatmath, intmath, state
from .graph import WEIGHTED, Layer, TrainGraph
from .model import TrainModel

ACTIVATION_CODES = {"NONE": "TSN_TRAIN_ACT_NONE", "RELU": "TSN_TRAIN_ACT_RELU", "RELU6": "TSN_TRAIN_ACT_RELU6"}
C_BACKWARD = ("conv", "dwconv", "fc", "avgpool", "add", "reshape")  # what the C step can run backward
C_FORWARD = (*C_BACKWARD, "maxpool")
SCRATCH_FORWARD = ("conv", "dwconv", "fc", "avgpool", "add")  # int8 forward kernels that sum into a scratch
INT32_SUM_TERMS = (1 << 17) - 1  # int8 products (each |p| <= 2^14) whose sum provably fits int32 (TRAINING.md)
# A kernel whose sums have at most this many terms each may make the sums of some pixels twice (first for the
# tensor's range, then to round them) instead of keeping them, where keeping them would set the arena's peak:
# a 3x3 window, a 1x1 conv over 16 channels. Wider sums cost more to make again than they save.
RECOMPUTE_MAX_TERMS = 16
STEP_MEMORY = ("small", "fast")  # plan(memory=...): make sums twice where they set the peak, or never
_C_STATE = {"w": "weights_{i}", "w_exp": "&weights_{i}_exp", "b": "bias_{i}", "mu": "mu_{i}", "off": "offset_{i}"}


@dataclass
class TrainPlan:
    arena_bytes: int
    activation: dict[int, int]  # tensor id -> arena offset in bytes
    gradient: dict[int, int]
    scratch: dict[int, int]  # time in the step -> offset of the int32 scratch of the kernels running then
    scratch_words: int  # the largest scratch; 0 in fp32: its kernels write sums straight into float tensors
    saved: set[int]
    merge: dict[tuple[int, int], int]  # (layer, input position) -> offset of a second gradient, summed in after
    kept: dict[tuple[str, int], int]  # (kernel, layer) -> pixels whose sums stay in scratch; the others are made twice
    sums: dict[tuple[str, int], Sums]  # (kernel, layer) -> the int32 sums of every int8 call that quantizes some

    @property
    def recomputed(self) -> dict[tuple[str, int], int]:
        """The calls that make some of their pixels' sums twice -> how many pixels."""
        return {key: self.sums[key].pixels - k for key, k in self.kept.items() if k < self.sums[key].pixels}

    @property
    def scratch_bytes(self) -> int:
        return 4 * self.scratch_words


def _elements(shape) -> int:
    return int(np.prod(shape))


@dataclass(frozen=True)
class Sums:
    """One kernel call's int32 sums, made pixel by pixel (``channels`` values each) and quantized as one tensor;
    with ``terms`` at most RECOMPUTE_MAX_TERMS, some pixels' sums may be made twice instead of kept."""
    pixels: int
    channels: int
    terms: int | None = None  # products (or values) in one sum; None: the kernel always keeps its sums
    extra_words: int = 0  # after the sums: a conv's im2col patch
    staged: bool = False  # a weighted forward: its pixels made twice need each channel's smallest and largest sum

    @property
    def recomputable(self) -> bool:
        return self.terms is not None and self.terms <= RECOMPUTE_MAX_TERMS

    def words(self, kept: int) -> int:
        """Scratch for ``kept`` pixels' sums plus, for the others, one working pixel and, staged, each channel's
        smallest and largest sum (quantize_pixels in C)."""
        return (self.pixels if kept == self.pixels else kept + 1 + 2 * self.staged) * self.channels + self.extra_words

    @property
    def least_words(self) -> int:
        return self.words(0 if self.recomputable else self.pixels)

    def most_kept(self, words: int) -> int:
        """The most pixels whose sums fit in ``words`` of scratch."""
        if not self.recomputable or self.words(self.pixels) <= words:
            return self.pixels
        return min(self.pixels - 1, (words - self.extra_words) // self.channels - 1 - 2 * self.staged)


def merges(graph: TrainGraph) -> list[tuple[int, int, int]]:
    """(layer, input position, tensor) of every gradient that lands on a tensor which already has one.

    Backward visits layers in reverse; a tensor read by two layers of the backward
    region (a residual block's input) gets its first gradient from the later
    reader, and the earlier reader's is summed into it (TRAINING.md).
    """
    region = {l.output for l in graph.layers[graph.first_backward:]}
    has_grad, out = set(), []
    for l in reversed(graph.layers[graph.first_backward:]):
        for pos, t in enumerate(l.inputs):
            if t not in region:
                continue
            if t in has_grad:
                out.append((l.index, pos, t))
            has_grad.add(t)
    reshaped = {l.inputs[0] for l in graph.layers if l.kind == "reshape"}
    for index, _, t in out:
        if t in reshaped:
            raise UnsupportedError(f"{graph.source}: layer {index}: the generated training step cannot sum a "
                                   f"second gradient into tensor {t}, which a reshape also reads")
    return out


def _conv_patch_bytes(l: Layer) -> int:
    """A conv's forward gathers one output pixel's int8 window (im2col) into scratch, after the outputs."""
    return l.window.kernel_h * l.window.kernel_w * l.in_shapes[0][-1]


def _update_bytes(l: Layer) -> int:
    """A conv's weight gradient gathers every tap's inputs, int8 [tap][ci][pixel], and one output channel's
    gradients at a time; a depthwise gathers g transposed and one tap at a time: 2 bytes an output."""
    pixels = l.out_shape[0] * l.out_shape[1]
    return pixels * (_conv_patch_bytes(l) + 1) if l.kind == "conv" else 2 * _elements(l.out_shape)


def plan(graph: TrainGraph, mode: str = "int8", memory: str = "small") -> TrainPlan:
    """memory="small" makes sums twice where keeping them would set the arena's peak; "fast" keeps them all."""
    if memory not in STEP_MEMORY:
        raise ValueError(f"memory={memory!r}: expected one of {STEP_MEMORY}")
    size = 4 if mode == "fp32" else 1  # bytes an element
    layers = graph.layers
    n = len(layers)
    first = graph.first_backward
    back_time = {l.index: 2 * n - l.index for l in layers[first:]}
    shape = {graph.input: graph.input_shape}
    for l in layers:
        shape[l.output] = l.out_shape
    alias = {l.output: l.inputs[0] for l in layers if l.kind == "reshape"}

    def root(t: int) -> int:
        while t in alias:
            t = alias[t]
        return t

    # activations: written by the producer's forward, read by consumers and by backward passes
    span: dict[int, list[int]] = {root(graph.input): [0, 0]}
    for l in layers:
        span.setdefault(root(l.output), [l.index, l.index])
        for t in l.inputs:
            span[root(t)][1] = max(span[root(t)][1], l.index)
    span[root(graph.logits)][1] = max(span[root(graph.logits)][1], n)
    saved = set()
    for l in layers[first:]:
        needs = []
        if l.kind in WEIGHTED:
            needs.append(l.output)  # the activation mask and LAC read y
            if l.trainable:
                needs.append(l.inputs[0])  # dW reads x
        elif l.kind == "add":
            needs.append(l.output)  # the activation mask reads y
        for t in needs:
            saved.add(root(t))
            span[root(t)][1] = max(span[root(t)][1], back_time[l.index])
    buffers = {t: Buffer([t], size * _elements(shape[t]), a, b) for t, (a, b) in span.items()}
    # gradients: from the consumer's backward (or the loss) to the producer's backward
    grads: dict[int, Buffer] = {}
    producer = {l.output: l for l in layers}
    for l in layers[first:]:
        t = root(l.output)
        start = n if root(graph.logits) == t else min(
            back_time[c.index] for c in layers[first:] if t in map(root, c.inputs))
        grads[t] = Buffer([t], size * _elements(shape[t]), start, back_time[producer[t].index])
    # int8: a kernel's int32 sums, in a scratch that lives only while that kernel runs (fp32 writes
    # its sums straight into the float tensors), so it shares memory with tensors not alive then. Planned
    # first at its least (recomputable kernels keep no pixel), then widened into the room free at its time.
    sums = {} if mode == "fp32" else _scratch_sums(graph)
    at_time: dict[int, dict[tuple[str, int], Sums]] = {}
    for (kernel, i), s in sums.items():
        at_time.setdefault(_sums_time(kernel, i, n), {})[(kernel, i)] = s
    least = {key: s.words(s.pixels) if memory == "fast" else s.least_words for key, s in sums.items()}
    scratch = {t: Buffer([], 4 * max(least[key] for key in calls), t, t) for t, calls in at_time.items()}
    # a second gradient lives only in its reader's backward, until it is summed in
    parts = {(i, pos): Buffer([], size * _elements(shape[t]), back_time[i], back_time[i]) for i, pos, t in merges(graph)}
    tensors = [*buffers.values(), *grads.values(), *parts.values()]
    arena = place([*tensors, *scratch.values()])
    kept = {}
    for t, calls in at_time.items():
        scratch[t].offset, room = _widest_gap([b for b in tensors if b.first <= t <= b.last], arena)
        kept.update({key: s.pixels if memory == "fast" else s.most_kept(room // 4) for key, s in calls.items()})
        scratch[t].size = 4 * max(s.words(kept[key]) for key, s in calls.items())
    activation = {t: buffers[root(t)].offset for t in shape}
    gradient = {t: grads[root(t)].offset for t in shape if root(t) in grads}
    return TrainPlan(arena, activation, gradient, {t: b.offset for t, b in scratch.items()},
                     max((b.size // 4 for b in scratch.values()), default=0), saved,
                     {key: b.offset for key, b in parts.items()}, kept, sums)


def _widest_gap(live: list[Buffer], arena: int) -> tuple[int, int]:
    """(offset, bytes) of the widest word-aligned stretch of the arena that no buffer in ``live`` occupies."""
    best, cursor = (0, 0), 0
    for b in sorted(live, key=lambda b: b.offset):
        if b.offset - cursor > best[1]:
            best = (cursor, b.offset - cursor)
        cursor = max(cursor, -(-(b.offset + b.size) // 4) * 4)
    return best if best[1] >= arena - cursor else (cursor, arena - cursor)


def _sums_time(kernel: str, index: int, n: int) -> int:
    """When a call runs in the step's timeline: forward of layer i at i, the loss at n, backward at 2n - i."""
    return index if kernel in ("forward", "loss") else 2 * n - index


def _scratch_sums(graph: TrainGraph) -> dict[tuple[str, int], Sums]:
    """The int32 sums of every int8 kernel call that quantizes them, by (kernel, layer): what its scratch holds."""
    layers, n = graph.layers, len(graph.layers)
    sums = {}
    for l in layers:
        if l.kind not in SCRATCH_FORWARD:
            continue
        pixels, channels = _elements(l.out_shape[:-1]), l.out_shape[-1]
        if l.kind == "conv":  # the forward also gathers one patch (im2col) after its sums
            taps = l.window.kernel_h * l.window.kernel_w * l.in_shapes[0][-1]
            sums[("forward", l.index)] = Sums(pixels, channels, taps, -(-_conv_patch_bytes(l) // 4), True)
        elif l.kind in ("dwconv", "avgpool"):
            taps = l.window.kernel_h * l.window.kernel_w
            sums[("forward", l.index)] = Sums(pixels, channels, taps, staged=l.kind == "dwconv")
        else:
            sums[("forward", l.index)] = Sums(1, _elements(l.out_shape))
    sums[("loss", n)] = Sums(1, graph.classes)
    region = {l.output for l in layers[graph.first_backward:]}
    for l in layers[graph.first_backward:]:
        if l.kind in WEIGHTED:  # LAC's gradient requantized: one product a value
            sums[("output_grad", l.index)] = Sums(_elements(l.out_shape[:-1]), l.out_shape[-1], 1)
        if l.inputs[0] in region and l.kind in (*WEIGHTED, "avgpool"):  # the input gradient
            x = l.in_shapes[0]
            if l.kind in ("dwconv", "avgpool"):  # a sum over the taps that reach an input pixel
                sums[("input_grad", l.index)] = Sums(x[0] * x[1], x[2], l.window.kernel_h * l.window.kernel_w)
            else:
                sums[("input_grad", l.index)] = Sums(1, _elements(x))
        if l.kind in ("conv", "dwconv") and l.trainable:  # not sums: the update's gathered columns, same scratch
            sums[("update", l.index)] = Sums(1, -(-_update_bytes(l) // 4))
    for i, pos, _ in merges(graph):
        sums[("merge", i)] = Sums(1, _elements(graph.layers[i].in_shapes[pos]))
    return sums


def static_ram_bytes(model: TrainModel) -> int:
    """RAM the step needs outside its arena: trained parameters (int8 weights, int32 bias and
    exponent, int16 mu and int32 offset with LAC) and the LAC gradient sums (two int64 per channel)."""
    params = model.params.values()
    if model.mode == "fp32":  # float32 weights and bias
        return sum(p.w.nbytes + p.b.nbytes for p in params)
    total = sum(p.w.size + 4 * p.b.size + 4 + (6 * p.b.size if p.mu is not None else 0) for p in params)
    return total + 16 * lac_channels(model)


def lac_channels(model: TrainModel) -> int:
    """The widest LAC layer: the size of the step's dmu and doffset arrays."""
    return max([p.b.size for p in model.params.values() if p.mu is not None] + [1])


def _check_supported(graph: TrainGraph) -> None:
    for l in graph.layers:
        allowed = C_BACKWARD if l.index >= graph.first_backward else C_FORWARD
        if l.kind not in allowed:
            raise UnsupportedError(f"{graph.source}: {l.where}: the generated training step has no "
                                   f"{'backward pass' if l.kind in C_FORWARD else 'kernel'} for it yet")
        if l.kind in WEIGHTED and _int32_sum_terms(l) > INT32_SUM_TERMS:
            raise UnsupportedError(f"{graph.source}: {l.where}: a sum of {_int32_sum_terms(l)} int8 products could "
                                   f"leave the int32 the kernels hold it in (at most {INT32_SUM_TERMS})")
        if l.kind == "avgpool" and l.activation != "NONE" and l.index >= graph.first_backward:
            raise UnsupportedError(f"{graph.source}: {l.where}: a fused activation on a trained average pool")


def _int32_sum_terms(l: Layer) -> int:
    """The most int8 products one sum of the layer's kernels adds (forward, input gradient, weight gradient)."""
    if l.kind == "fc":
        return max(_elements(l.in_shapes[0]), l.out_shape[-1])
    taps = l.window.kernel_h * l.window.kernel_w
    pixels = l.out_shape[0] * l.out_shape[1]
    if l.kind == "dwconv":
        return max(taps, pixels)
    return max(taps * l.in_shapes[0][-1], taps * l.out_shape[-1], pixels)


def _window(l: Layer) -> dict:
    w = l.window
    h, wd, c = l.in_shapes[0]
    oh, ow, oc = l.out_shape
    return {"in": (h, wd, c), "out": (oh, ow, oc), "kernel": (w.kernel_h, w.kernel_w),
            "stride": (w.stride_h, w.stride_w), "dilation": (w.dilation_h, w.dilation_w), "pad": (w.pad_h, w.pad_w)}


def _describe(l: Layer) -> str:
    shapes = " + ".join("x".join(map(str, s)) for s in l.in_shapes)
    act = f", {l.activation}" if l.activation != "NONE" else ""
    role = "trained" if l.trainable else "frozen"
    return f"layer {l.index}: {l.kind} '{l.name}' {shapes} -> {'x'.join(map(str, l.out_shape))}{act} ({role})"


def _step_code(graph: TrainGraph, tp: TrainPlan, fp32: bool) -> tuple[list[str], list[str], list[str]]:
    """The forward, loss and backward statements of the step (forward also serves predict).

    Written once for both arithmetics: fp32 drops the exponents (None below), the
    int32 scratch and the contexts its kernels do not need, and calls the _f32 kernels.
    """
    size = 4 if fp32 else 1
    T = lambda t: f"&arena[{tp.activation[t] // size}]"
    G = lambda t: f"&arena[{tp.gradient[t] // size}]"
    E = (lambda t: None) if fp32 else (lambda t: f"e_t{t}")
    Eg = (lambda t: None) if fp32 else (lambda t: f"e_t{t}_grad")
    int8_ctx = None if fp32 else "&ctx"
    n = len(graph.layers)

    def scratch_at(t: int) -> str | None:
        return None if fp32 or t not in tp.scratch else f"SCRATCH_AT({tp.scratch[t]})"

    def kept(kernel: str, i: int) -> str | None:
        """The pixels whose sums a recomputing kernel keeps (the plan's choice)."""
        return None if fp32 else f"{tp.kept[(kernel, i)]}"

    def call(result: str | None, kernel: str, *args: str | None) -> str:
        """A kernel call; fp32 kernels end in _f32 and return nothing (the int8 ones return an exponent)."""
        text = f"tsn_train_{kernel}{'_f32' if fp32 else ''}({', '.join(a for a in args if a is not None)});"
        return text if result is None else f"{result} = {text}"

    fwd, bwd = [], []
    for l in graph.layers:
        x = l.inputs[0]
        i, y = l.index, l.output
        scratch = scratch_at(i)
        fwd.append(f"/* {_describe(l)} */")
        fwd.append(f"ctx.layer = {i};")
        if l.kind == "conv":
            fwd.append(call(E(y), "conv_forward", int8_ctx, T(x), E(x), f"&window_{i}", f"&layers[{i}]", scratch,
                            kept("forward", i), T(y)))
        elif l.kind == "dwconv":
            fwd.append(call(E(y), "depthwise_forward", int8_ctx, T(x), E(x), f"&window_{i}", f"&layers[{i}]", scratch,
                            kept("forward", i), T(y)))
        elif l.kind == "fc":
            fwd.append(call(E(y), "fc_forward", int8_ctx, T(x), E(x), f"{_elements(l.in_shapes[0])}", f"&layers[{i}]", scratch, T(y)))
        elif l.kind == "avgpool":
            fwd.append(call(E(y), "avgpool_forward", int8_ctx, T(x), E(x), f"&window_{i}", ACTIVATION_CODES[l.activation],
                            scratch, kept("forward", i), T(y)))
        elif l.kind == "maxpool":
            fwd.append(call(E(y), "maxpool_forward", T(x), E(x), f"&window_{i}", T(y)))
        elif l.kind == "add":
            b = l.inputs[1]
            fwd.append(call(E(y), "add_forward", int8_ctx, T(x), E(x), T(b), E(b), f"{_elements(l.out_shape)}", ACTIVATION_CODES[l.activation], scratch, T(y)))
        elif l.kind == "reshape":
            fwd.append("/* same bytes, new shape */" if fp32 else f"{E(y)} = {E(x)}; /* same bytes, new shape */")
    z = graph.logits
    loss = [call(Eg(z), "softmax_cross_entropy", "&ctx", T(z), E(z), f"{graph.classes}", "label", scratch_at(n), G(z),
                 "loss")]
    first = graph.first_backward
    backward_region = {l.output for l in graph.layers[first:]}
    merging = {(i, pos): t for i, pos, t in merges(graph)}

    def into(l: Layer, pos: int) -> tuple[str | None, str]:
        """Where input ``pos``'s gradient goes: its own buffer, or a part to be summed into it
        (and, in int8, the variable its exponent goes to)."""
        if (l.index, pos) in merging:
            return None if fp32 else f"const int32_t e_part{pos}", f"&arena[{tp.merge[(l.index, pos)] // size}]"
        return Eg(l.inputs[pos]), G(l.inputs[pos])

    for l in reversed(graph.layers[first:]):
        x = l.inputs[0]
        need_dx = x in backward_region
        i, y = l.index, l.output
        scratch = scratch_at(2 * n - i)
        gy, ey = G(y), Eg(y)
        parts = [(pos, t) for (j, pos), t in merging.items() if j == i]
        bwd.append(f"/* {_describe(l)} */")
        if parts:
            bwd.append("{ /* a second gradient for a tensor that has one: summed in after the update */")
        bwd.append(f"ctx.layer = {i};")
        gx, dx = into(l, 0) if need_dx else (None, None)
        if l.kind in WEIGHTED:
            pixels = f"{_elements(l.out_shape[:-1]) if len(l.out_shape) > 1 else 1}"
            if not fp32:
                bwd.append(f"g_exp = {ey};")
            bwd.append(call(ey, "output_grad", int8_ctx, gy, ey, T(y), E(y), pixels, f"&layers[{i}]",
                            *([] if fp32 else ["dmu", "doffset", scratch, kept("output_grad", i)])))
            kernel = {"conv": "conv", "dwconv": "depthwise", "fc": "fc"}[l.kind]
            geometry = f"{_elements(l.in_shapes[0])}" if l.kind == "fc" else f"&window_{i}"
            if need_dx:
                recompute = kept("input_grad", i) if l.kind == "dwconv" else None
                bwd.append(call(gx, f"{kernel}_input_grad", int8_ctx, gy, ey, geometry, f"&layers[{i}]", scratch,
                                recompute, dx))
            if l.trainable:
                if l.kind == "fc":
                    bwd.append(call(None, "fc_update", "&ctx", T(x), E(x), geometry, gy, ey, f"&layers[{i}]"))
                else:
                    bwd.append(call(None, f"{kernel}_update", "&ctx", T(x), E(x), gy, ey, geometry, f"&layers[{i}]",
                                    scratch))
                if fp32:
                    bwd.append(call(None, "bias_update", "&ctx", gy, pixels, f"&layers[{i}]"))
                else:
                    bwd.append(call(None, "bias_lac_update", "&ctx", gy, ey, pixels, f"&layers[{i}]", "dmu",
                                    f"g_exp + {E(y)}", "doffset", "g_exp"))
        elif l.kind == "avgpool" and need_dx:
            bwd.append(call(gx, "avgpool_input_grad", int8_ctx, gy, ey, f"&window_{i}", scratch,
                            kept("input_grad", i), dx))
        elif l.kind == "add":
            for pos, t in enumerate(l.inputs):
                if t in backward_region:
                    assign, dest = into(l, pos)
                    bwd.append(call(assign, "add_input_grad", gy, ey, T(y), E(y), f"{_elements(l.out_shape)}",
                                    ACTIVATION_CODES[l.activation], dest))
        elif l.kind == "reshape" and need_dx:
            bwd.append("/* same bytes, new shape */" if fp32 else f"{gx} = {ey}; /* same bytes, new shape */")
        for pos, t in parts:
            bwd.append(call(Eg(t), "merge_grad", int8_ctx, G(t), Eg(t), f"&arena[{tp.merge[(i, pos)] // size}]",
                            None if fp32 else f"e_part{pos}", f"{_elements(l.in_shapes[pos])}", scratch))
        if parts:
            bwd.append("}")
    return fwd, loss, bwd


def render(model: TrainModel, prefix: str = "train", target: str = "host",
           memory: str = "small") -> tuple[dict[str, str], TrainPlan]:
    graph = model.graph
    fp32 = model.mode == "fp32"
    _check_supported(graph)
    tp = plan(graph, model.mode, memory)
    env = environment()
    fwd, loss, bwd = _step_code(graph, tp, fp32)
    weighted = []
    for l in graph.layers:
        p = model.params.get(l.index)
        if p is None:
            continue
        weighted.append({"index": l.index, "name": l.name, "w": p.w, "w_exp": p.w_exp, "b": p.b,
                         "lac": p.mu is not None, "channels": l.out_shape[-1],
                         "activation": ACTIVATION_CODES[l.activation]})
    tensors = sorted({*tp.activation})
    common = {"version": __version__, "source_name": Path(graph.source).name, "model_hash": graph.meta.get("sha256", ""),
              "prefix": prefix, "PREFIX": prefix.upper(), "target": target}
    consts = {k: getattr(intmath, k) if hasattr(intmath, k) else getattr(arith, k)
              for k in ("Q_MAX", "MAX_SHIFT", "LR_FRAC", "BIAS_EXP", "MU_FRAC", "MU_LIMIT", "LAC_LR_SHIFT", "LAC_DECAY_DIV",
                        "POOL_FRAC", "WEIGHT_GROW_BELOW", "WEIGHT_EXP_LIMIT", "PROB_FRAC", "EXP_INPUT_FRAC",
                        "LN2_Q16", "FP32_WEIGHT_LIMIT")}
    context = {
        **common,
        "c": consts,
        "fp32": fp32,
        "f": {k: getattr(floatmath, k) for k in ("LOG2E", "LN2", "LN2_HI", "LN2_LO", "EXP_UNDERFLOW", "SQRT2",
                                                  "EXP_POLY", "LOG_POLY")},
        "log2_table": intmath.LOG2_TABLE,
        "graph": graph,
        "plan": tp,
        "windows": {l.index: _window(l) for l in graph.layers if l.window is not None},
        "weighted": weighted,
        "num_layers": len(graph.layers),
        "lac_channels": lac_channels(model),
        "tensors": tensors,
        "gradients": sorted(tp.gradient),
        "input_offset": tp.activation[graph.input] // (4 if fp32 else 1),  # in arena elements
        "input_bytes": _elements(graph.input_shape),
        "logits_offset": tp.activation[graph.logits] // (4 if fp32 else 1),
        "logits": graph.logits,
        "forward": fwd,
        "loss": loss,
        "backward": bwd,
        "lr_q": model.ar.lr_q,
        "prc_z": getattr(model.ar, "prc_z", 0),
        "static_bytes": static_ram_bytes(model),
        "blocks": [(_C_STATE[b.field].format(i=b.layer), b.nbytes) for b in state.layout(model)],
    }
    kernels = ["tsn_train_f32.h", "tsn_train_f32.c"] if fp32 else ["tsn_train_s8.c"]
    files = {
        "tsn_train.h": env.get_template("train/tsn_train.h.j2").render(context),
        "tsn_train_window.h": env.get_template("train/tsn_train_window.h.j2").render(context),
        **{name: env.get_template(f"train/{name}.j2").render(context) for name in kernels},
        f"{prefix}.h": env.get_template("train/model_train.h.j2").render(context),
        f"{prefix}.c": env.get_template("train/model_train.c.j2").render(context),
    }
    if not fp32:  # the int8 loss uses the inference library's fixed-point exp
        files.update({
            "tsn_nn_exp.c": env.get_template("nn/tsn_nn_exp.c.j2").render(common),
            "tsn_nnsupportfunctions.h": env.get_template("nn/tsn_nnsupportfunctions.h.j2").render(common),
            "tsn_nn_types.h": env.get_template("nn/tsn_nn_types.h.j2").render(common),
        })
    return files, tp


def write(model: TrainModel, out_dir: Path, prefix: str = "train", target: str = "host",
          memory: str = "small") -> TrainPlan:
    files, tp = render(model, prefix, target, memory)
    write_files(files, out_dir)
    return tp
