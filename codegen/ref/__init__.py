"""The NumPy reference: the project's single arithmetic truth.

C, RTL and boards are compared against it with ``==``. It imports nothing from
the emitters, the hardware or the host tools.
"""
from .run import prepare_input, random_inputs, run, run_graph, run_layer

__all__ = ["prepare_input", "random_inputs", "run", "run_graph", "run_layer"]
