"""The ``tinysyn`` command line: a thin layer over codegen and host.

Every failure the toolkit anticipates is a TinysynError; the CLI prints its
one-line message and exits with the error class's code, never a traceback.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from codegen import __version__
from codegen.emit import c as emit_c
from codegen.errors import InputError, TinysynError
from codegen.frontends.tflite import load
from codegen.pipeline import Program, compile_graph


def _fail_cleanly(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TinysynError as err:
            click.echo(f"tinysyn: error: {err}", err=True)
            sys.exit(err.exit_code)

    return wrapper


def _program(model: str, prefix: str | None = None) -> Program:
    return compile_graph(load(model), prefix)


model_argument = click.argument("model", type=click.Path(dir_okay=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinysyn")
def main():
    """tinysyn: neural networks for microcontrollers and FPGAs, verified bit-exact."""


@main.command()
@model_argument
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@_fail_cleanly
def info(model, as_json):
    """Layers, shapes, MACs, weight bytes and the planned arena of MODEL."""
    program = _program(model)
    g = program.graph
    layers = []
    for layer in program.layers:
        op = layer.op
        layers.append({
            "index": layer.index,
            "op": op.OP,
            "kernel": layer.kernel,
            "input": list(g.tensor(op.inputs[0]).shape),
            "output": list(g.op_output(op).shape),
            "macs": layer.macs,
            "weight_bytes": sum(a.nbytes for a in layer.consts.values()),
        })
    summary = {
        "model": model,
        "name": program.prefix,
        "sha256": g.sha256,
        "input": {"shape": list(g.tensor(g.inputs[0]).shape), "dtype": "int8"},
        "output": {"shape": list(g.tensor(g.outputs[0]).shape), "dtype": "int8"},
        "layers": layers,
        "macs": program.macs,
        "weight_bytes": program.weight_bytes,
        "arena_bytes": program.plan.peak_bytes,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{model}: {len(layers)} layers, sha256 {g.sha256[:16]}")
    click.echo(f"{'#':>3}  {'op':<18} {'input':<18} {'output':<18} {'MACs':>10} {'weights':>8}")
    for row in layers:
        click.echo(f"{row['index']:>3}  {row['op']:<18} {str(row['input']):<18} {str(row['output']):<18} "
                   f"{row['macs']:>10} {row['weight_bytes']:>8}")
    click.echo(f"total MACs {program.macs}, weight bytes {program.weight_bytes}, "
               f"planned peak arena bytes {program.plan.peak_bytes}")


@main.command()
@model_argument
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--target", type=click.Choice(emit_c.TARGETS), default="host", show_default=True,
              help="Which compiler the generated Makefile uses.")
@click.option("--prefix", default=None, help="C identifier prefix (default: from the model file name).")
@_fail_cleanly
def gen(model, out_dir, target, prefix):
    """Generate CMSIS-style C for MODEL into DIR."""
    program = _program(model, prefix)
    files = emit_c.write(program, Path(out_dir), target)
    click.echo(f"wrote {len(files)} files to {out_dir} ({program.prefix}: arena {program.plan.peak_bytes} bytes, "
               f"weights {program.weight_bytes} bytes); build with `make -C {out_dir}`")


def _inputs(program: Program, input_path, random_n, seed) -> np.ndarray:
    from codegen.ref import prepare_input

    if (input_path is None) == (random_n is None):
        raise InputError("give exactly one of --input X.npy or --random N")
    if input_path is not None:
        try:
            x = np.load(input_path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise InputError(f"{input_path}: cannot read as .npy ({err})") from None
        return prepare_input(program.graph, x)
    if random_n < 1:
        raise InputError(f"--random must be at least 1, got {random_n}")
    shape = program.graph.tensor(program.graph.inputs[0]).shape[1:]
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(random_n, *shape), dtype=np.int8)


def _save_atomically(path: Path, array: np.ndarray) -> None:
    """Write the .npy next to its destination, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@main.command()
@model_argument
@click.option("--backend", type=click.Choice(["numpy", "host-c"]), required=True,
              help="numpy: the reference; host-c: the generated C compiled for this machine.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False), help="int8 .npy: one sample or N on axis 0.")
@click.option("--random", "random_n", type=int, help="Run N random int8 inputs instead.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --random.")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the int8 outputs (.npy, N on axis 0).")
@_fail_cleanly
def run(model, backend, input_path, random_n, seed, output_path):
    """Run MODEL on inputs with the chosen backend; write the int8 outputs."""
    program = _program(model)
    x = _inputs(program, input_path, random_n, seed)
    if backend == "numpy":
        from codegen.ref import run as run_reference

        y = run_reference(program.graph, x)
    else:
        from codegen.hostrun import HostModel

        with tempfile.TemporaryDirectory(prefix="tinysyn-") as tmp:
            gen_dir = Path(tmp) / program.prefix
            emit_c.write(program, gen_dir)
            y = HostModel(program, gen_dir).run(x)
    _save_atomically(Path(output_path), y)
    click.echo(f"{backend}: {len(x)} inputs -> {output_path} {y.shape} int8")


if __name__ == "__main__":
    main()
