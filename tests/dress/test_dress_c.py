"""Generated C of one-shot DRESS models: every sub-net, switched at run time in one library, == the reference.

The expected values come from codegen/dress/reference.py (codegen/ref on sub-net k's masked
weights), never from the generated code.
"""
import numpy as np
import pytest
from conftest import model_path

from codegen.build import build_cortex_m4
from codegen.dress import oneshot, reference
from codegen.dress.lower import (
    FUSED_ACC_BOUND,
    FUSED_RIGHT_SHIFTS,
    FUSED_WORDS,
    Q31_HALF,
    compile_dress,
    fused_requant,
    sparse_table_bytes,
    write_c,
)
from codegen.errors import UnsupportedError
from codegen.hostrun import HostModel, run_sanitized
from codegen.ref import fixedpoint

SPARSITIES = (0.5, 0.75, 0.9)
N_INPUTS = 3
SWITCH_ORDER = (0, 2, 1, 0, 2)  # every sub-net, back to earlier ones
ARG_ERROR = -1  # TSN_NN_ARG_ERROR in templates/nn/tsn_nn_types.h.j2


# row 256 chunks ResNet's 3x3x32 and 3x3x64 filters (u8 index + chunk base); row 16 gives KWS's 10x4 filters
# of 40 three rows of 14, so rows end in pad columns
# digits-cnn: the DRESS-trained model of conftest.py (its own biases and gains per sub-net)
CASES = [("kws_ref_model", "filter"), ("pretrainedResnet_quant", "filter"), ("pretrainedResnet_quant", 256),
         ("kws_ref_model", 16), ("digits_cnn", "filter")]


@pytest.fixture(scope="module", params=CASES, ids=[f"{m}-row{r}" for m, r in CASES])
def case(request, tmp_path_factory):
    name, row = request.param
    if name == "digits_cnn":
        model = request.getfixturevalue("trained_digits")[2]
    else:
        model = oneshot.one_shot(model_path(name).read_bytes(), SPARSITIES, row, recalibrate="bias", name=name)
    gen_dir = tmp_path_factory.mktemp(f"{name}-{row}") / "gen"
    program, _ = write_c(model, gen_dir, source=name)
    shape = program.graph.tensor(program.graph.inputs[0]).shape[1:]
    x = np.random.default_rng(2027).integers(-128, 128, size=(N_INPUTS, *shape), dtype=np.int8)
    expected = [reference.run(model, k, x) for k in range(model.subnets)]
    return model, program, gen_dir, x, expected


def test_every_subnet_switched_at_run_time_equals_reference(case):
    _, program, gen_dir, x, expected = case
    assert {layer.kernel for layer in program.layers if layer.sparse} >= {"tsn_sparse_convolve_s8",
                                                                           "tsn_sparse_fully_connected_s8"}
    host = HostModel(program, gen_dir)
    for k in SWITCH_ORDER:
        assert host.set_subnet(k) == 0
        out = host.run(x)
        mismatches = int((out.reshape(expected[k].shape) != expected[k]).sum())
        assert mismatches == 0, f"sub-net {k}: {mismatches} output values differ from the reference"
    # sub-nets really differ, so a kernel ignoring the switch could not pass
    assert any(not np.array_equal(expected[0], e) for e in expected[1:])


def test_set_subnet_rejects_out_of_range(case):
    model, program, gen_dir, _, _ = case
    host = HostModel(program, gen_dir)
    for k in (model.subnets, -1, 1 << 30):
        assert host.set_subnet(k) == ARG_ERROR


def test_sparse_tables_store_all_subnets_in_little_more_than_the_densest(case):
    """All K sub-nets share one set of tables: their bytes <= 1.1x what the densest sub-net alone needs."""
    model, program, _, _, _ = case
    densest = sum(layer.shape.rows * int(layer.nnz[0]) * (1 + (1 if layer.shape.row_length <= 256 else 2))
                  for layer in model.layers)  # one int8 value and one column index per kept weight (FORMAT.md)
    stored = sparse_table_bytes(program)
    print(f"sparse weight tables for {model.subnets} sub-nets: {stored} bytes, densest sub-net alone {densest}")
    assert stored <= 1.1 * densest


@pytest.mark.parametrize("case", CASES[:1], indirect=True, ids=["kws_ref_model-rowfilter"])  # one is enough
def test_sanitized_runner_all_subnets(case):
    model, program, gen_dir, x, expected = case
    outs = run_sanitized(program, gen_dir, x[:2])
    for k in range(model.subnets):
        assert np.array_equal(outs[-1][k].reshape(expected[k][:2].shape), expected[k][:2]), f"sub-net {k}"


@pytest.mark.parametrize("case", [c for c in CASES if c[0] == "kws_ref_model"], indirect=True,
                         ids=["kws_ref_model-rowfilter", "kws_ref_model-row16"])  # every sparse kernel kind
def test_cortex_m4_compiles_with_werror(case):
    _, _, gen_dir, _, _ = case
    assert build_cortex_m4(gen_dir)


def test_folded_bias_overflow_is_refused():
    model = oneshot.one_shot(model_path("kws_ref_model").read_bytes(), SPARSITIES[:1], recalibrate="none")
    model.layers[0].bias[0, 0] = 2**31 - 1
    model.layers[0].values[0, 0] = 127
    with pytest.raises(UnsupportedError, match="folded bias overflows"):
        compile_dress(model)


def test_fc_fast_path_requantization_equals_the_reference_to_its_bound():
    """The FC fast path's SMMLAR words (fused_requant) against the reference's double rounding, at accumulators
    next to every rounding step of small shifts, random ones and both ends of the bound."""
    rng = np.random.default_rng(5)
    rs = np.arange(FUSED_RIGHT_SHIFTS.start, FUSED_RIGHT_SHIFTS.stop)
    multiplier = rng.integers(Q31_HALF + 1, 2**31, rs.size)
    bias = rng.integers(-1000, 1000, rs.size)
    words = fused_requant(bias, multiplier, -rs, -7, np.zeros(rs.size, np.int64))
    assert words.shape == (rs.size, FUSED_WORDS) and np.array_equal(words[:, 0], np.append(bias[1:], 0))
    m, h, shift = (words[:, k].astype(np.int64)[:, None] for k in (1, 2, 3))
    bound = FUSED_ACC_BOUND - 1
    acc = np.concatenate([np.arange(-5000, 5000), rng.integers(-bound, bound, 20000), [-bound, bound]])[None, :]
    # SMMLAR(2 acc, m, h - [acc < 0]) >> rs, as the kernel's asm and C compute it
    kernel = ((2 * acc * m + (h - (acc < 0)) * 2**32 + 2**31) >> 32) >> shift
    reference = fixedpoint.multiply_by_quantized_multiplier(acc, multiplier[:, None], -rs[:, None]) - 7
    assert np.array_equal(kernel, reference)


def test_fc_fast_path_refuses_accumulators_past_its_bound():
    magnitude = np.array([FUSED_ACC_BOUND // 128])
    assert fused_requant(np.array([0]), np.array([Q31_HALF + 1]), np.array([-5]), 0, magnitude) is None
    assert fused_requant(np.array([0]), np.array([Q31_HALF + 1]), np.array([-5]), 0, magnitude - 1) is not None
