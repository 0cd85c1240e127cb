"""One entry for every command that takes a model file: a .tflite or a DRESS file, compiled.

    program, dress = compile_file("kws.dress")   # dress is None for a .tflite
"""
from __future__ import annotations

from pathlib import Path

from ..frontends.tflite import load
from ..pipeline import Program, compile_graph
from . import format as dress_format
from .format import DressModel


def compile_file(path: str | Path, prefix: str | None = None) -> tuple[Program, DressModel | None]:
    """(program, None) for a .tflite; (the program with sparse layers, the DRESS model) for a DRESS file."""
    if not dress_format.is_dress(path):
        return compile_graph(load(path), prefix), None
    from .lower import compile_dress

    dress = dress_format.read(path)
    return compile_dress(dress, prefix, str(path)), dress
