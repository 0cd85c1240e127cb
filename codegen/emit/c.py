"""C emitter: renders the Jinja2 templates in ``templates/`` for a planned Program.

The emitter only formats: every number it writes was computed by a pass
(kernel parameters by the reference's params, offsets by the memory planner).
Files are rendered into a temporary directory first and moved into place, so
a failure never leaves a half-written model behind.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import jinja2
import numpy as np

from .. import __version__, ir
from ..build import TOOLCHAINS
from ..pipeline import Program

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
VALUES_PER_LINE = 16

# kernel -> the template of its implementation (one public function per file)
KERNEL_SOURCES = {
    "tsn_convolve_s8": ["tsn_convolve_s8"],
    "tsn_convolve_1x1_s8": ["tsn_convolve_1x1_s8", "tsn_nn_vec_mat_mult_s8"],
    "tsn_depthwise_conv_s8": ["tsn_depthwise_conv_s8"],
    "tsn_fully_connected_s8": ["tsn_fully_connected_s8", "tsn_nn_vec_mat_mult_s8"],
    "tsn_avgpool_s8": ["tsn_avgpool_s8"],
    "tsn_max_pool_s8": ["tsn_max_pool_s8"],
    "tsn_elementwise_add_s8": ["tsn_elementwise_add_s8"],
    "tsn_softmax_s8": ["tsn_softmax_s8", "tsn_nn_exp"],
    "tsn_sparse_convolve_s8": ["tsn_sparse_convolve_s8", "tsn_nn_gather_patch_s8"],
    "tsn_sparse_depthwise_conv_s8": ["tsn_sparse_depthwise_conv_s8", "tsn_nn_gather_patch_s8"],
    "tsn_sparse_fully_connected_s8": ["tsn_sparse_fully_connected_s8"],
}
C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t"}  # anything else is emitted as int32_t
HEADERS = ["tsn_nn_types.h", "tsn_nnfunctions.h", "tsn_nnsupportfunctions.h", "tsn_model.h"]
TARGETS = tuple(TOOLCHAINS)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["c_array"] = c_array
    env.filters["c_number"] = c_number
    env.filters["c_type"] = lambda values: C_TYPES.get(values.dtype.name, "int32_t")
    return env


def c_number(value) -> str:
    """An integer, or a float32 as the shortest literal that reads back to the same float."""
    if isinstance(value, (float, np.floating)):
        return f"{np.float32(value)!s}f"
    return str(int(value))


def c_array(values: np.ndarray, indent: str = "    ") -> str:
    """Comma-separated values, VALUES_PER_LINE a line, for an initializer list."""
    flat = [c_number(v) for v in np.asarray(values).ravel()]
    lines = [", ".join(flat[i:i + VALUES_PER_LINE]) for i in range(0, len(flat), VALUES_PER_LINE)]
    return (",\n" + indent).join(lines)


def _dims(shape) -> tuple[int, int, int, int]:
    """NHWC dims of a tensor shape, padding missing leading dimensions with 1."""
    shape = tuple(shape)
    if len(shape) > 4:
        raise ValueError(f"tensor rank {len(shape)} > 4")
    return (1,) * (4 - len(shape)) + shape if len(shape) < 4 else shape


def _describe(program: Program, layer) -> str:
    """One-line summary for the per-layer comment."""
    g, op = program.graph, layer.op
    x, y = g.tensor(op.inputs[0]), g.op_output(op)
    parts = [op.OP]
    if hasattr(op, "stride"):
        kernel = op.filter if hasattr(op, "filter") else g.tensor(op.inputs[1]).shape[1:3]
        parts.append(f"{kernel[0]}x{kernel[1]} stride {op.stride[0]}x{op.stride[1]} {op.padding}")
    if getattr(op, "activation", "NONE") != "NONE":
        parts.append(op.activation)
    return f"{' '.join(parts)}: {list(x.shape)} -> {list(y.shape)}"


def layer_context(program: Program, layer) -> dict:
    g, op = program.graph, layer.op
    out = g.op_output(op)
    activations = [t for t in op.inputs if t >= 0 and not g.tensor(t).is_const]
    ctx = {
        "index": layer.index,
        "op": op.OP,
        "kernel": layer.kernel,
        "describe": _describe(program, layer),
        "macs": layer.macs,
        "p": layer.params,
        "consts": layer.consts,
        "inputs": [{"offset": program.plan.tensor_offset[t], "dims": _dims(g.tensor(t).shape),
                    "size": g.tensor(t).size} for t in activations],
        "output": {"offset": program.plan.tensor_offset[op.outputs[0]], "dims": _dims(out.shape), "size": out.size},
        "sparse": layer.sparse,
        "scratch": {"offset": program.plan.scratch_offset.get(layer.index, 0), "size": layer.scratch_bytes},
    }
    if isinstance(op, ir.FullyConnected):
        units, depth = g.tensor(op.inputs[1]).shape
        ctx["filter_dims"] = (units, 1, 1, depth)
        ctx["rows"] = out.size // units
    elif isinstance(op, ir.Convolution):
        ctx["filter_dims"] = _dims(g.tensor(op.inputs[1]).shape)
    if hasattr(op, "filter"):
        ctx["filter_dims"] = (1, op.filter[0], op.filter[1], 1)
    return ctx


def template_context(program: Program, target: str = "host") -> dict:
    """What every template sees: the banner facts and the model's prefix."""
    return {
        "version": __version__,
        "source_name": Path(program.graph.source).name,
        "model_hash": program.graph.sha256,
        "prefix": program.prefix,
        "PREFIX": program.prefix.upper(),
        "target": target,
    }


def render(program: Program, target: str = "host") -> dict[str, str]:
    """All files of the generated model, name -> text."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    g = program.graph
    env = environment()
    x, y = g.tensor(g.inputs[0]), g.tensor(g.outputs[0])
    common = template_context(program, target)
    layers = [layer_context(program, layer) for layer in program.layers]
    model = {
        **common,
        "layers": layers,
        "arena_bytes": program.plan.peak_bytes,
        "input": {"offset": program.plan.tensor_offset[g.inputs[0]], "bytes": x.nbytes, "shape": list(x.shape),
                  "scale": float(x.scale), "zero_point": x.zero_point},
        "output": {"offset": program.plan.tensor_offset[g.outputs[0]], "bytes": y.nbytes, "shape": list(y.shape),
                   "scale": float(y.scale), "zero_point": y.zero_point},
        "weight_bytes": program.weight_bytes,
        "macs": program.macs,
        "subnets": len(program.sparsities),
        "sparsities": [f"{s:g}" for s in program.sparsities],
    }
    files = {h: env.get_template(f"nn/{h}.j2").render(common) for h in HEADERS}
    sources = sorted({src for layer in program.layers if layer.kernel for src in KERNEL_SOURCES[layer.kernel]})
    for src in sources:
        files[f"{src}.c"] = env.get_template(f"nn/{src}.c.j2").render(common)
    p = program.prefix
    files[f"{p}.h"] = env.get_template("model/model.h.j2").render(model)
    files[f"{p}_weights.h"] = env.get_template("model/weights.h.j2").render(model)
    files[f"{p}.c"] = env.get_template("model/model.c.j2").render(model)
    files[f"{p}_entry.c"] = env.get_template("model/entry.c.j2").render(model)
    cc, ar, cflags = TOOLCHAINS[target]
    files["Makefile"] = env.get_template("model/Makefile.j2").render(model, cc=cc, ar=ar, cflags=cflags)
    return files


def write(program: Program, out_dir: Path, target: str = "host") -> list[Path]:
    """Render and write the model into ``out_dir`` atomically (replacing earlier output)."""
    return write_files(render(program, target), out_dir)


def write_files(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Write rendered files as the whole new content of ``out_dir``, or leave it untouched on failure."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, text in files.items():
            (staging / name).write_text(text)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out_dir / name for name in files]
