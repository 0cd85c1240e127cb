"""Generated Cortex-M4 code on QEMU mps2-an386: every layer bit-exact with the reference, both kernel paths."""
import pytest
from conftest import SHARED_MODELS, model_path

from codegen.frontends.tflite import load
from codegen.pipeline import compile_graph
from host.bench import VARIANTS, run_on_board
from host.icount import BenchError, bench_input


def test_bench_input_matches_the_firmware_prng():
    """xorshift32(13, 17, 5) from the seed, low bytes: values worked out by hand for the first states."""
    x = 0x2545F491
    expected = []
    for _ in range(3):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        expected.append(((x & 0xFF) ^ 0x80) - 0x80)
    assert bench_input(3).tolist() == expected


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("name", SHARED_MODELS)
def test_every_layer_on_the_emulated_board_equals_the_reference(tmp_path, name, variant):
    program = compile_graph(load(model_path(name)))
    report = run_on_board(program, tmp_path, variant)  # raises BenchError on any CRC mismatch
    assert len(report.layers) == len(program.layers)
    assert report.total_instructions > program.macs  # at least an instruction per MAC: a real run happened


def test_a_wrong_reference_is_caught(tmp_path, monkeypatch):
    """The CRC comparison can fail: perturb one layer's expected CRC."""
    import host.bench as bench

    program = compile_graph(load(model_path("kws_ref_model")))
    from host.checker import ReferenceRun

    real = bench.reference_runs

    def perturbed(p, x):
        run = real(p, x)[0]
        return [ReferenceRun(tuple(c ^ (i == 5) for i, c in enumerate(run.layer_crc32)), run.output)]

    monkeypatch.setattr(bench, "reference_runs", perturbed)
    with pytest.raises(BenchError, match="layer 5 output CRC-32"):
        bench.run_on_board(program, tmp_path, "dsp")
