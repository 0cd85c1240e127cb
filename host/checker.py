"""Bit-exact checks of board results against the NumPy reference.

The board reports each layer's output as a zlib CRC-32 (moving every tensor over
a serial line would take longer than the inference) and the model output in
full; both are compared with ``==``, never a tolerance:

    expected = reference_runs(program, inputs)        # one ReferenceRun per input
    expected = reference_runs(program, inputs, reference.subnet_graph(dress, k))  # DRESS sub-net k
    problems = compare(expected[k], board_crcs, board_output)   # [] when bit-exact
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from codegen import ir, ref
from codegen.pipeline import Program


@dataclass(frozen=True)
class ReferenceRun:
    """What the NumPy reference computes for one input."""

    layer_crc32: tuple[int, ...]   #: zlib CRC-32 of every layer's output tensor
    output: bytes                  #: the model output, int8 bytes


def reference_runs(program: Program, inputs: np.ndarray, graph: ir.Graph | None = None) -> list[ReferenceRun]:
    """Reference results for a batch of int8 inputs (axis 0 = sample): of ``program.graph``, or of ``graph``
    (a DRESS sub-net's dense graph, whose tensors have the program's indices)."""
    g = graph or program.graph
    values = ref.run_graph(g, inputs)
    runs = []
    for k in range(values[g.outputs[0]].shape[0]):
        crcs = tuple(zlib.crc32(values[layer.op.outputs[0]][k].tobytes()) for layer in program.layers)
        runs.append(ReferenceRun(crcs, values[g.outputs[0]][k].tobytes()))
    return runs


def compare(expected: ReferenceRun, layer_crc32: list[int], output: bytes | None = None) -> list[str]:
    """Differences between the board's results and the reference, one line each ([] = bit-exact)."""
    problems = []
    if len(layer_crc32) != len(expected.layer_crc32):
        problems.append(f"board traced {len(layer_crc32)} layers, the model has {len(expected.layer_crc32)}")
    for index, (got, want) in enumerate(zip(layer_crc32, expected.layer_crc32)):
        if got != want:
            problems.append(f"layer {index} output CRC-32 {got:08x}, reference {want:08x}")
    if output is not None and output != expected.output:
        diff = next((i for i, (a, b) in enumerate(zip(output, expected.output)) if a != b), min(len(output), len(expected.output)))
        problems.append(f"output differs from the reference at byte {diff}")
    return problems
