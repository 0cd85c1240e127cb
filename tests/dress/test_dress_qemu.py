"""The sparse kernels' DSP path (SMLAxy over 4 output pixels) on QEMU mps2-an386: every layer of a sub-net
== codegen/dress/reference.py, through the bench firmware's CRCs (host/bench_dress.py's run_subnet).

Host tests compile the portable path only (no DSP extension on the host), so this is where the Cortex-M4
path is checked bit for bit. The cases cover its table shapes: u8 columns in row chunks with pad columns
(KWS, row 16), u16 columns (ResNet-8's 3x3x32 and 3x3x64 filters, one row each), nnz with a tail past the
last whole step of 4, nnz = 1, depthwise and fully connected layers, a last partial block of pixels.
"""
import pytest
from conftest import model_path

from codegen.dress import oneshot
from codegen.dress.lower import write_c
from host.bench_dress import run_subnet

CASES = [("kws_ref_model", 16, (0.5, 0.98)), ("pretrainedResnet_quant", "filter", (0.9,))]


@pytest.mark.parametrize("name, row, sparsities", CASES, ids=[f"{m}-row{r}" for m, r, _ in CASES])
def test_dsp_sparse_path_on_the_emulated_board_equals_the_reference(tmp_path, name, row, sparsities):
    model = oneshot.one_shot(model_path(name).read_bytes(), sparsities, row, recalibrate="none", name=name)
    program, _ = write_c(model, tmp_path / "gen", target="cortex-m4", source=name)
    nnz = {int(n) for layer in model.layers for n in layer.nnz}
    if row == 16:
        assert 1 in nnz and any(n % 4 for n in nnz)  # a lone entry and tails past the unrolled steps
    else:
        assert any(layer.shape.row_length > 256 for layer in model.layers)  # u16 columns
    for k in range(model.subnets):
        report = run_subnet(model, program, k, tmp_path / "gen", tmp_path / f"subnet{k}")  # BenchError on a mismatch
        assert len(report.layers) == len(program.layers)
