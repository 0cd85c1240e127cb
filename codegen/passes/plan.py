"""Memory planning: place every activation tensor and scratch buffer in one static arena.

Tensors whose lifetimes overlap never share bytes. RESHAPE outputs alias their
input; ADD and SOFTMAX write over an input that dies at that layer (both read
each element before writing it). Placement is greedy, largest buffer first, at
the lowest aligned offset that does not collide with a buffer alive at the same
time; the emitter only reads the offsets this pass writes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import ir
from .lower import Layer

ALIGNMENT = 4  # word-aligned, so kernels may load int8 data 32 bits at a time


@dataclass
class Buffer:
    tensors: list[int]  # activation tensors sharing these bytes (aliases)
    size: int
    first: int  # first layer that writes it (0 for the graph input)
    last: int  # last layer that reads it
    offset: int = -1
    scratch_of: int | None = None  # layer index, for scratch buffers

    def overlaps(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class MemoryPlan:
    buffers: list[Buffer]
    peak_bytes: int
    tensor_offset: dict[int, int] = field(default_factory=dict)
    scratch_offset: dict[int, int] = field(default_factory=dict)


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan_memory(graph: ir.Graph, layers: list[Layer]) -> MemoryPlan:
    last_op = len(graph.ops) - 1
    readers: dict[int, list[int]] = {}
    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            readers.setdefault(t, []).append(i)

    owner: dict[int, Buffer] = {}
    buffers: list[Buffer] = []

    def new_buffer(t: int, first: int) -> None:
        buf = Buffer([t], graph.tensor(t).nbytes, first, first)
        buffers.append(buf)
        owner[t] = buf

    def dies_at(buf: Buffer, i: int) -> bool:
        return not any(r > i for t in buf.tensors for r in readers.get(t, [])) and not any(
            t in graph.outputs for t in buf.tensors)

    for t in graph.inputs:
        new_buffer(t, 0)
    for layer in layers:
        op, i = layer.op, layer.index
        out = op.outputs[0]
        activations = [t for t in op.inputs if t >= 0 and not graph.tensor(t).is_const]
        reuse = None
        if isinstance(op, ir.Reshape):
            reuse = owner[activations[0]]
        elif isinstance(op, (ir.Add, ir.Softmax)):
            reuse = next((owner[t] for t in activations if dies_at(owner[t], i)), None)
        if reuse is not None:
            reuse.tensors.append(out)
            owner[out] = reuse
        else:
            new_buffer(out, i)
        if layer.scratch_bytes:
            buffers.append(Buffer([], layer.scratch_bytes, i, i, scratch_of=i))

    for buf in buffers:
        if buf.scratch_of is None:
            uses = [r for t in buf.tensors for r in readers.get(t, [])]
            buf.last = max([buf.first] + uses)
            if any(t in graph.outputs for t in buf.tensors):
                buf.last = last_op

    plan = MemoryPlan(buffers, place(buffers))
    for buf in buffers:
        if buf.scratch_of is not None:
            plan.scratch_offset[buf.scratch_of] = buf.offset
        for t in buf.tensors:
            plan.tensor_offset[t] = buf.offset
    return plan


def place(buffers: list[Buffer]) -> int:
    """Give every buffer an offset, largest first, lowest aligned gap among the buffers alive with it;
    returns the arena size."""
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first)):
        offset = 0
        for other in sorted((o for o in placed if o.overlaps(buf)), key=lambda o: o.offset):
            if offset + buf.size <= other.offset:
                break
            offset = max(offset, _align(other.offset + other.size))
        buf.offset = offset
        placed.append(buf)
    return max((b.offset + b.size for b in buffers), default=0)
