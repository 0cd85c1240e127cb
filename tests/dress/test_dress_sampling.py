"""Row-based sampling: nested masks, exact nnz per row, importance order, global allocation, bad requests."""
import itertools

import numpy as np
import pytest
from conftest import model_path
from hypothesis import given
from hypothesis import strategies as st
from tflite_builder import ModelBuilder, conv_options, fc_options
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from codegen.dress import sampling
from codegen.errors import InputError
from codegen.frontends import tflite


@st.composite
def graphs(draw):
    """conv -> depthwise -> FC with random int8 weights (many ties and zeros) and per-channel scales."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ci, co, k = draw(st.integers(1, 6)), draw(st.integers(1, 8)), draw(st.sampled_from([1, 3]))
    units, hw = draw(st.integers(1, 5)), 4
    spread = draw(st.sampled_from([3, 127]))  # 3: mostly ties
    b = ModelBuilder()

    def weights(shape, channels):
        w = rng.integers(-spread, spread + 1, size=shape, dtype=np.int8)
        return w, rng.uniform(0.001, 0.1, size=channels).astype(np.float32)

    x = b.tensor([1, hw, hw, ci], scale=0.05, zero_point=3)
    w1, s1 = weights((co, k, k, ci), co)
    y1 = b.tensor([1, hw, hw, co], scale=0.1, zero_point=-2)
    b.op(fb.BuiltinOperator.CONV_2D, [x, b.tensor(w1.shape, scale=s1, data=w1), b.tensor([co], "int32", data=np.zeros(co))],
         [y1], fb.BuiltinOptions.Conv2DOptions, conv_options((1, 1), (1, 1), "SAME", "RELU"))
    w2, s2 = weights((1, 3, 3, co), co)
    y2 = b.tensor([1, hw, hw, co], scale=0.2, zero_point=0)
    b.op(fb.BuiltinOperator.DEPTHWISE_CONV_2D, [y1, b.tensor(w2.shape, scale=s2, data=w2, axis=3),
                                                b.tensor([co], "int32", data=np.zeros(co))],
         [y2], fb.BuiltinOptions.DepthwiseConv2DOptions, conv_options((1, 1), (1, 1), "SAME", "NONE", 1))
    w3, s3 = weights((units, hw * hw * co), 1)
    y3 = b.tensor([1, units], scale=0.3, zero_point=1)
    b.op(fb.BuiltinOperator.FULLY_CONNECTED, [y2, b.tensor(w3.shape, scale=s3, data=w3),
                                              b.tensor([units], "int32", data=np.zeros(units))],
         [y3], fb.BuiltinOptions.FullyConnectedOptions, fc_options("NONE"))
    return tflite.parse(b.build([x], [y3]))


sparsity_lists = st.lists(st.floats(0.01, 0.99), min_size=1, max_size=4, unique=True).map(sorted).filter(
    lambda s: all(b - a > 1e-6 for a, b in itertools.pairwise(s)))
rows = st.sampled_from(["filter", 2, 5, 16, 256])


def selected(layer, k):
    """Sub-net k's kept positions as a boolean [G, N] mask, from the column table."""
    mask = np.zeros((layer.shape.rows, layer.shape.row_length), dtype=bool)
    for r in range(layer.shape.rows):
        mask[r, layer.columns[r, : layer.nnz[k]]] = True
    return mask


@given(graphs(), sparsity_lists, rows)
def test_masks_nest_and_every_row_keeps_exactly_nnz(graph, sparsities, row):
    for layer in sampling.sample(graph, sparsities, row):
        assert layer.nnz[-1] >= 1 and layer.nnz[0] <= layer.shape.row_length
        for k in range(len(sparsities)):
            mask = selected(layer, k)
            assert np.all(mask.sum(axis=1) == layer.nnz[k])  # distinct columns, exactly nnz_k per row
            if k:
                assert not np.any(mask & ~selected(layer, k - 1)), "sub-net k keeps a weight sub-net k-1 drops"


@given(graphs(), sparsity_lists, rows)
def test_rows_are_in_importance_order(graph, sparsities, row):
    """Each row's stored prefix is its weights sorted by (-|w|, column), pad columns after every real weight."""
    for layer in sampling.sample(graph, sparsities, row):
        op = graph.ops[layer.op_index]
        table = sampling.filters(op, graph.op_inputs(op)[1].data).astype(int)
        s = layer.shape
        for r in range(s.rows):
            start = (r % s.chunks) * s.row_length
            real = table[r // s.chunks, start: start + s.row_length].tolist()
            ranked = sorted(range(s.row_length), key=lambda c: (-abs(real[c]) if c < len(real) else 1, c))
            keep = int(layer.nnz[0])
            assert layer.columns[r].tolist() == ranked[:keep]
            assert layer.values[r].tolist() == [real[c] if c < len(real) else 0 for c in ranked[:keep]]


@given(st.integers(1, 64), st.integers(1, 5000), st.sampled_from([0, 2, 7, 256]))
def test_chunked_rows_split_a_filter_evenly(channels, length, chunk):
    s = sampling.RowShape.of(channels, length, chunk)
    assert s.chunks * s.row_length >= length and 0 <= s.pad < s.chunks
    assert s.row_length <= (chunk or length)
    table = np.arange(channels * length).reshape(channels, length)
    assert np.array_equal(s.from_rows(s.to_rows(table, -1)), table)


@given(graphs(), sparsity_lists, st.sampled_from(["output", "real", "uniform"]))
def test_allocation_hits_the_overall_sparsity_within_rounding(graph, sparsities, allocation):
    layers = sampling.sample(graph, sparsities, "filter", allocation)
    total = sum(layer.shape.rows * layer.shape.filter_length for layer in layers)
    for k, s in enumerate(sparsities):
        kept = sum(layer.shape.rows * int(layer.nnz[k]) for layer in layers)
        # each layer rounds its count to whole rows (half a row each way), or is raised to one per row
        slack = sum(layer.shape.rows * (1 if layer.nnz[k] == 1 else 0.5) for layer in layers) + 1
        assert abs(kept - (1 - s) * total) <= slack


@pytest.mark.parametrize("sparsities, row, allocation, needle", [
    ([0.0, 0.5], "filter", "output", "outside (0, 1)"),
    ([0.5, 1.0], "filter", "output", "outside (0, 1)"),
    ([-0.1], "filter", "output", "outside (0, 1)"),
    ([0.75, 0.5], "filter", "output", "strictly increasing"),
    ([0.5, 0.5], "filter", "output", "strictly increasing"),
    ([], "filter", "output", "need 1 to"),
    ([0.5], "rows", "output", "chunk length"),
    ([0.5], 1, "output", "2..65536"),
    ([0.5], 70000, "output", "2..65536"),
    ([0.5], "filter", "global", "choose one of"),
])
def test_bad_requests_are_one_line_input_errors(sparsities, row, allocation, needle):
    graph = tflite.load(model_path("kws_ref_model"))
    with pytest.raises(InputError) as err:
        sampling.sample(graph, sparsities, row, allocation)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_row_longer_than_a_16_bit_index_is_refused():
    with pytest.raises(InputError, match="16-bit column index"):
        sampling.RowShape.of(1, 65537, 0)
