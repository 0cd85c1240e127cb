"""Emitted C for values at the edges of what the templates print."""
import numpy as np
import pytest
from tflite_builder import ModelBuilder, fb, fc_options

from codegen import ref
from codegen.build import build_cortex_m4
from codegen.emit import c as emit_c
from codegen.frontends.tflite import parse
from codegen.hostrun import HostModel
from codegen.pipeline import compile_graph


@pytest.mark.parametrize("out_scale", [1.0, 2.0, 1e-7, 0.1])
def test_output_scales_print_as_float_literals_that_compile(tmp_path, out_scale):
    """1.0 once rendered as `1f`, which is not C: the scale must always print as a float literal."""
    b = ModelBuilder()
    x = b.tensor([1, 4], scale=0.5, zero_point=0)
    w = b.tensor([2, 4], scale=0.25, zero_point=0, data=np.arange(8, dtype=np.int8).reshape(2, 4))
    y = b.tensor([1, 2], scale=out_scale, zero_point=-3)
    b.op(fb.BuiltinOperator.FULLY_CONNECTED, [x, w], [y], fb.BuiltinOptions.FullyConnectedOptions, fc_options("NONE"))
    program = compile_graph(parse(b.build([x], [y]), "edge.tflite"))
    emit_c.write(program, tmp_path / "host")
    inputs = ref.random_inputs(program.graph, 3, seed=0)
    assert np.array_equal(HostModel(program, tmp_path / "host").run(inputs), ref.run(program.graph, inputs))
    emit_c.write(program, tmp_path / "m4", target="cortex-m4")
    build_cortex_m4(tmp_path / "m4", tmp_path / "m4" / "build")
