"""The compiler pipeline: IR -> validated -> lowered -> memory-planned Program."""
from __future__ import annotations

from dataclasses import dataclass

from . import ir
from .passes.lower import Layer, lower
from .passes.plan import MemoryPlan, plan_memory


@dataclass
class Program:
    graph: ir.Graph
    layers: list[Layer]
    plan: MemoryPlan
    prefix: str
    sparsities: tuple[float, ...] = ()  # a DRESS model's sub-nets (run-time switchable); () when dense

    @property
    def weight_bytes(self) -> int:
        """Bytes of constant data the generated code stores (filters, biases, requant tables)."""
        return sum(a.nbytes for layer in self.layers for a in layer.consts.values())

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


def compile_graph(graph: ir.Graph, prefix: str | None = None) -> Program:
    graph.validate()
    layers = lower(graph)
    return Program(graph, layers, plan_memory(graph, layers), prefix or graph.name)
