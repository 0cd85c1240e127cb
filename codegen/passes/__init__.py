"""Passes over the IR, run in this order by :func:`codegen.pipeline.compile_graph`:

1. ``Graph.validate``   the IR invariants
2. ``lower.lower``      integer parameters, kernel choice, folded constants per layer
3. ``plan.plan_memory`` one static arena: an offset per activation tensor and scratch buffer
"""
