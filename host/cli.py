"""The ``tinysyn`` command line: a thin layer over codegen and host.

Every failure the toolkit anticipates is a TinysynError; the CLI prints its
one-line message and exits with the error class's code, never a traceback.
"""
from __future__ import annotations

import functools
import io
import json
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from codegen import __version__
from codegen.emit import c as emit_c
from codegen.errors import InputError, TinysynError
from codegen.files import write_atomically
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


def _program_or_dress(model: str, prefix: str | None = None):
    """(program, None) for a .tflite; (program with sparse layers, the DRESS model) for a DRESS file."""
    from codegen.dress.program import compile_file

    return compile_file(model, prefix)


model_argument = click.argument("model", type=click.Path(dir_okay=False))
ONE_SHOT_CALIBRATION = 200  # dataset samples that re-calibrate one-shot DRESS sub-nets (tinysyn dress --dataset)


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
        click.echo(f"{row['index']:>3}  {row['op']:<18} {row['input']!s:<18} {row['output']!s:<18} "
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
    """Generate CMSIS-style C for MODEL (a .tflite, or a DRESS file from `tinysyn dress`) into DIR."""
    program, _ = _program_or_dress(model, prefix)
    files = emit_c.write(program, Path(out_dir), target)
    click.echo(f"wrote {len(files)} files to {out_dir} ({program.prefix}: arena {program.plan.peak_bytes} bytes, "
               f"weights {program.weight_bytes} bytes); build with `make -C {out_dir}`")


@main.command()
@model_argument
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False), help="The DRESS file.")
@click.option("--sparsity", default="0.5,0.75,0.9", show_default=True,
              help="Overall sparsities of the sub-nets, strictly increasing, comma-separated.")
@click.option("--row", default="filter", show_default=True, help="'filter' or a chunk length such as 256.")
@click.option("--dataset", type=click.Choice(["digits"]), default=None,
              help="A builtin is trained on it (DRESS training, the default: digits); a .tflite's one-shot sub-nets "
                   "are re-calibrated on it instead of on random inputs.")
@click.option("--gamma", type=float, default=None,
              help="DRESS training: loss weights pi_k proportional to (1 - s_k)^gamma [default: 1].")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="DRESS training steps, and as many of dense pre-training first [default: 8000].")
@click.option("--seed", type=int, default=1, show_default=True,
              help="DRESS training: seeds the builtin's initial weights and the sample order.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="DRESS training: write each sub-net's accuracy (float and int8) and nnz here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_fail_cleanly
def dress(model, out_path, sparsity, row, dataset, gamma, steps, seed, json_path, quiet):
    """K sparse sub-nets of MODEL in one DRESS file (codegen/dress/FORMAT.md).

    A builtin (builtin:digits-cnn) is trained: dense pre-training, DRESS training of all
    sub-nets in parallel, each sub-net's per-channel gain and bias, then int8 export. A .tflite gets one-shot
    DRESS: sampling and re-calibration, no training."""
    from codegen.dress import format as dress_format
    from codegen.dress.sampling import parse_sparsities
    from codegen.train import builtin

    sparsities = parse_sparsities(sparsity)
    if builtin.is_builtin(model):
        result, rows = _train_dress(model, sparsities, row, dataset or "digits", gamma, steps, seed, quiet)
        name = model
        if json_path:
            write_atomically(Path(json_path), json.dumps({"model": model, "subnets": rows}, indent=1).encode())
        for r in rows:
            click.echo(f"sub-net {r['subnet']}: sparsity {r['sparsity']:g} (real {r['real_sparsity']:.3f}), "
                       f"int8 test accuracy {100 * r['int8_accuracy']:.1f}% (fp32 {100 * r['float_accuracy']:.1f}%)")
    else:
        from codegen.dress.oneshot import digits_inputs, one_shot

        for option, value in (("--gamma", gamma), ("--steps", steps), ("--json", json_path)):
            if value is not None:
                raise InputError(f"{model}: {option} applies to DRESS training of a builtin model; "
                                 "a .tflite gets one-shot DRESS")
        source = load(model)  # checks the model with the usual one-line errors
        calibration = digits_inputs(source, "train", ONE_SHOT_CALIBRATION) if dataset else None
        result = one_shot(Path(model).read_bytes(), sparsities, row, calibration, name=model)
        name = source.name
    dress_format.write(out_path, result)
    click.echo(f"wrote {out_path}: {result.subnets} sub-nets of {name} at sparsity "
               f"{', '.join(f'{s:g}' for s in result.sparsities)}, {len(result.layers)} sparse layers; "
               f"generate C with `tinysyn gen {out_path} -o DIR`")


@main.command()
@model_argument
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False), help="The ALQ model file.")
@click.option("--avg-bits", type=float, required=True, help="Average weight bit-width to reach (0 < B <= 8).")
@click.option("--dataset", type=click.Choice(["digits"]), default="digits", show_default=True)
@click.option("--group", default="kernel", show_default=True,
              help="Weight groups: kernel, channel or subchannel[:N] (codegen/alq/ALQ.md).")
@click.option("--act-bits", type=int, default=None, help="Activation bases I_x [default: 4].")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="ALQ training steps [default: 1200].")
@click.option("--pretrain-steps", type=click.IntRange(min=0), default=None,
              help="Float pre-training steps before sketching [default: 3000 for a builtin; none for a .tflite, "
                   "which is trained already, or 300 when its head is reset for the dataset's classes].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the initial weights and the batches.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the accuracies and bit-widths here.")
@_fail_cleanly
def alq(model, out_path, avg_bits, dataset, group, act_bits, steps, pretrain_steps, seed, json_path):
    """Adaptive loss-aware quantization of MODEL (builtin:digits-cnn, or a .tflite whose int8 weights are
    the float start) into a multi-bit ALQ file (codegen/alq/FORMAT.md): pre-training, sketching, pruning in
    the alpha domain, optimization."""
    from dataclasses import replace

    from codegen.alq import format as alq_format
    from codegen.alq import train as alq_train
    from codegen.alq.structure import parse_group

    structure, slices = parse_group(group)
    given = {"avg_bits": avg_bits, "act_bits": act_bits, "steps": steps, "pretrain": pretrain_steps}
    options = replace(alq_train.Options(structure=structure, slices=slices, seed=seed),
                      **{k: v for k, v in given.items() if v is not None})
    result = alq_train.alq(model, dataset, options, progress=lambda line: click.echo(line, err=True))
    alq_format.write(out_path, result.model)
    if json_path:
        write_atomically(Path(json_path), json.dumps({"model": model, **result.summary()}, indent=1).encode())
    click.echo(f"wrote {out_path}: {result.avg_bits:.3f} average weight bits, {result.act_bits}-bit activations; "
               f"integer test accuracy {100 * result.int_accuracy:.1f}% (float {100 * result.float_accuracy:.1f}%)")


def _train_dress(model, sparsities, row, dataset, gamma, steps, seed, quiet):
    """DRESS training of a builtin with a progress bar; the int8 DRESS model and its per-sub-net report."""
    from dataclasses import replace

    from tqdm import tqdm

    from codegen.dress import train as dress_train
    from codegen.frontends.tflite_writer import write as write_tflite

    budget = dress_train.Budget()
    steps = budget.sparse if steps is None else steps
    budget = replace(budget, pretrain=steps, sparse=steps, gamma=budget.gamma if gamma is None else gamma)
    dress_train.loss_weights(sparsities, budget.gamma)
    total = budget.pretrain + budget.sparse + budget.bias * len(sparsities)
    with tqdm(total=total, desc="DRESS training", unit="step", disable=quiet, file=sys.stderr) as bar:
        def progress(stage, t, n, loss):
            bar.set_postfix_str(f"{stage}, loss {loss:.3f}", refresh=False)
            bar.update(1)

        trainer = dress_train.trainer_for(model, dataset, row, seed, progress)
        dense, _ = dress_train.pretrain(trainer, budget)
        trained = dress_train.dress(trainer, dense, sparsities, budget)
    result, graph = dress_train.to_int8(trainer, trained, sparsities, row, write_tflite)
    return result, dress_train.report(trainer, trained, result, graph)


def _inputs(program: Program, input_path, random_n, seed) -> np.ndarray:
    from codegen.ref import prepare_input, random_inputs

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
    return random_inputs(program.graph, random_n, seed)


def _save_atomically(path: Path, array: np.ndarray) -> None:
    """Write the .npy next to its destination, then rename: never a half-written file."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_atomically(path, buffer.getvalue())


@main.command()
@model_argument
@click.option("--backend", type=click.Choice(["numpy", "host-c"]), required=True,
              help="numpy: the reference; host-c: the generated C compiled for this machine.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False), help="int8 .npy: one sample or N on axis 0.")
@click.option("--random", "random_n", type=int, help="Run N random int8 inputs instead.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --random.")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the int8 outputs (.npy, N on axis 0).")
@click.option("--subnet", type=int, default=None,
              help="For a DRESS file (tinysyn dress): the sub-net to run, 0 (the densest) to K-1. Default 0.")
@_fail_cleanly
def run(model, backend, input_path, random_n, seed, output_path, subnet):
    """Run MODEL on inputs with the chosen backend; write the int8 outputs."""
    program, dress = _program_or_dress(model)
    if dress is None and subnet is not None:
        raise InputError(f"{model}: --subnet needs a DRESS file (made by tinysyn dress)")
    k = subnet or 0
    if dress is not None and not 0 <= k < dress.subnets:
        raise InputError(f"{model}: sub-net {k} out of range; the file has sub-nets 0 to {dress.subnets - 1}")
    x = _inputs(program, input_path, random_n, seed)
    if backend == "numpy":
        from codegen.dress import reference
        from codegen.ref import run as run_reference

        y = reference.run(dress, k, x) if dress is not None else run_reference(program.graph, x)
    else:
        from codegen.hostrun import HostModel

        with tempfile.TemporaryDirectory(prefix="tinysyn-") as tmp:
            gen_dir = Path(tmp) / program.prefix
            emit_c.write(program, gen_dir)
            host = HostModel(program, gen_dir)
            if dress is not None:
                host.set_subnet(k)
            y = host.run(x)
    _save_atomically(Path(output_path), y)
    which = f" (sub-net {k} of {dress.subnets})" if dress is not None else ""
    click.echo(f"{backend}{which}: {len(x)} inputs -> {output_path} {y.shape} int8")


BOARD_CHOICES = click.Choice(["qemu-mps2-an386", "nucleo-l4r5zi"])


@main.command()
@model_argument
@click.option("--board", type=BOARD_CHOICES, default="qemu-mps2-an386", show_default=True,
              help="The emulated board (started here) or a real one (give --port).")
@click.option("--port", default=None, help="Serial port or pyserial URL of a board already running the "
              "bootloader or a tinysyn app (default: start the emulator).")
@click.option("--runs", type=int, default=1, show_default=True, help="Random inputs to run and verify.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the report as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write the per-layer trace as CSV.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG of per-layer latency and stack.")
@click.option("--work", type=click.Path(file_okay=False), default="build/profile", show_default=True,
              help="Where generated code and firmware are built.")
@click.option("--subnet", default=None,
              help="For a DRESS file: the sub-net K to profile, or 'all' (each in turn, switched on the running "
                   "board, no reflash; --plot then draws accuracy and latency against sparsity). Default: 0.")
@click.option("--dataset", type=click.Choice(["digits"]), default=None,
              help="With --subnet all: the model classifies digits (as tinysyn trains on them); measure top-1 "
                   "accuracy against the digits labels (needs 10 outputs). Otherwise the accuracy is the top-1 "
                   "agreement with the DRESS file's source dense model, on digits test inputs too.")
@click.option("--eval-samples", type=click.IntRange(min=1), default=None,
              help="With --subnet all: digits test samples for the accuracy [default: the whole split, 359].")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_fail_cleanly
def profile(model, board, port, runs, seed, json_path, csv_path, plot_path, work, subnet, dataset, eval_samples,
            quiet):
    """Build, flash over serial, run and verify MODEL on a board; print the per-layer trace."""
    from codegen.errors import MismatchError
    from host import report as reports
    from host.profiler import profile as run_profile

    sweep = subnet == "all"
    if sweep or subnet is None:
        subnets = subnet
    else:
        try:
            subnets = [int(subnet)]
        except ValueError:
            raise InputError(f"--subnet {subnet!r}: give a sub-net number or 'all'") from None
    if (dataset or eval_samples) and not sweep:
        raise InputError("--dataset and --eval-samples measure accuracy across sub-nets: give --subnet all")
    try:
        result = run_profile(Path(model), board, port, runs, seed, Path(work), progress=not quiet, subnets=subnets)
    except MismatchError as err:
        if err.report is not None and json_path:
            reports.write_json(err.report, Path(json_path))
        raise
    if sweep:
        from codegen.dress import format as dress_format
        from codegen.dress.accuracy import evaluate

        result["accuracy"] = evaluate(dress_format.read(model), dataset == "digits", eval_samples)
        if dataset and result["accuracy"]["metric"] != "top1_accuracy":
            click.echo(f"note: {model} has {result['accuracy']['classes']} outputs, digits 10 classes: "
                       f"reporting agreement with the source model instead of accuracy")
    if json_path:
        reports.write_json(result, Path(json_path))
    if csv_path:
        reports.write_csv(result, Path(csv_path))
    if plot_path:
        (reports.write_subnet_plot if sweep else reports.write_plot)(result, Path(plot_path))
    click.echo(reports.format_subnet_table(result) if sweep else reports.format_table(result))
    stack = max(s["stack_high_water_bytes"] for s in result["subnets"]) if sweep else result["stack_high_water_bytes"]
    flash = result["flash"]
    click.echo(f"flash {result['flash_bytes']:,} B, static RAM {result['static_ram_bytes']:,} B, "
               f"arena {result['arena_bytes']:,} B, stack high-water {stack:,} B")
    click.echo(f"flashed {flash['payload_bytes']:,} B in {flash['seconds']:.2f} s, "
               f"wire efficiency {flash['wire_efficiency']:.3f}")
    which = (f", sub-nets {', '.join(str(s['subnet']) for s in result['subnets'])} switched on the board" if sweep
             else f", sub-net {result['subnet']} (sparsity {result['sparsity']:g})" if "subnet" in result else "")
    click.echo(f"BIT-EXACT: {result['runs']} run(s) on {board}{which}, every layer equals the NumPy reference")


@main.command()
@model_argument
@click.option("--board", type=click.Choice(["qemu-mps2-an386"]), default="qemu-mps2-an386", show_default=True)
@click.option("--serial", "serial_kind", default="tcp:0", show_default=True,
              help="pty, or tcp:PORT (0: a free port).")
@click.option("--work", type=click.Path(file_okay=False), default="build/emulate", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_fail_cleanly
def emulate(model, board, serial_kind, work, quiet):
    """Boot the emulated board, flash MODEL's DUT firmware and keep it running for any serial client."""
    from host.emulate import serve

    serve(Path(model), board, serial_kind, Path(work), progress=not quiet, echo=click.echo)


@main.command()
@model_argument
@click.option("--board", type=BOARD_CHOICES, default="qemu-mps2-an386", show_default=True)
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="build/firmware", show_default=True,
              help="Build directory; the images go to OUT/<model>/boot/boot.elf and OUT/<model>/app/dut.elf.")
@_fail_cleanly
def firmware(model, board, out_dir):
    """Build the serial bootloader and MODEL's DUT app for a board (checks the model fits first)."""
    from host.profiler import prepare

    program, boot, app, sizes = prepare(Path(model), board, Path(out_dir))
    click.echo(f"bootloader: {boot}")
    click.echo(f"app:        {app} (flash {sizes['flash_bytes']:,} B, static RAM {sizes['static_ram_bytes']:,} B, "
               f"arena {program.plan.peak_bytes:,} B)")


@main.command()
@click.argument("image", type=click.Path(dir_okay=False, exists=True))
@click.option("--port", required=True, help="Serial port or pyserial URL (/dev/ttyACM0, socket://127.0.0.1:PORT).")
@click.option("--baud", type=int, default=115200, show_default=True, help="Baud rate (ignored by socket:// URLs).")
@click.option("--protocol", type=click.Choice(["tinysyn", "stm32"]), default="tinysyn", show_default=True,
              help="tinysyn: our serial bootloader (IMAGE linked with image=app); "
                   "stm32: the STM32 ROM bootloader, AN3155 at 8E1 (IMAGE linked for 0x08000000).")
@click.option("--no-boot", is_flag=True, help="Leave the board in its bootloader after verifying.")
@click.option("--retries", type=click.IntRange(min=0), default=None,
              help="Resends per request [default: 5 for tinysyn, 3 NACKed commands for stm32].")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Seconds to wait for each answer (erase and read-back waits grow with the image).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_fail_cleanly
def flash(image, port, baud, protocol, no_boot, retries, timeout, quiet):
    """Write IMAGE (.elf or .bin) to a board over serial, verify it by read-back, then start it."""
    import contextlib

    from host.transport import open_port

    if protocol == "stm32":
        from host.stm32rom import DEFAULT_RETRIES
        from host.stm32rom import Stm32RomFlasher as flasher_class
    else:
        from host.flasher import DEFAULT_RETRIES
        from host.flasher import Flasher as flasher_class
    with contextlib.closing(open_port(port, baudrate=baud, parity="E" if protocol == "stm32" else "N")) as line:
        flasher = flasher_class(line, timeout=timeout, retries=DEFAULT_RETRIES if retries is None else retries,
                                progress=not quiet)
        result = flasher.flash(Path(image), boot=not no_boot)
    click.echo(f"flashed {image} to {result.board} at 0x{result.address:08x} over {port} ({protocol})")
    click.echo(f"verify: OK by {result.verified_by}: CRC-32 0x{result.verify_crc32:08x} over "
               f"{result.image_bytes:,} bytes matches the image")
    click.echo("started the application" if result.booted else "left the board in its bootloader")
    click.echo(f"throughput: {result.payload_bytes:,} payload bytes, {result.wire_bytes:,} bytes on the wire "
               f"(efficiency {result.wire_efficiency:.3f}), {result.bytes_per_second:,.0f} B/s, "
               f"{result.elapsed_s:.2f} s, {result.wire.retries} retries")


@main.command()
@click.argument("model")
@click.option("--dataset", type=click.Choice(["digits"]), default="digits", show_default=True,
              help="scikit-learn's digits, fixed 80/20 split, fitted to the model's input shape (and, for a "
                   ".tflite, spread over the real range its input quantization covers).")
@click.option("--mode", type=click.Choice(["int8", "fp32"]), default="int8", show_default=True,
              help="int8: Octo (int8 forward and backward, LAC, PRC); fp32: the float baseline.")
@click.option("--no-lac", is_flag=True, help="int8 without loss-aware compensation layers.")
@click.option("--no-prc", is_flag=True, help="int8 without parameterized range clipping of backward tensors.")
@click.option("--update", default="all", show_default=True,
              help="Layers to train: all, last:N (the last N weighted layers) or indices like 2,5.")
@click.option("--backend", type=click.Choice(["numpy", "host-c", *BOARD_CHOICES.choices]),
              default="numpy", show_default=True,
              help="Where the steps run: numpy (the reference), host-c (the generated C compiled here) or a board "
                   "(the training app, flashed over serial; the emulator unless --port). Every backend but numpy "
                   "is checked against the reference after every step.")
@click.option("--port", default=None, help="Serial port or pyserial URL of a board already running the "
              "tinysyn bootloader (board backends).")
@click.option("--step-memory", type=click.Choice(["small", "fast"]), default="small", show_default=True,
              help="The generated int8 step: small makes a layer's sums twice where keeping them would set the "
                   "RAM peak; fast keeps them all (fewer instructions, more RAM).")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="SGD steps, one sample each.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Starting learning rate (held as a Q16 integer) [default: 0.1 for a builtin; for a .tflite, "
                   "1 / mean |h|^2 of the features h entering its head, measured on 64 training samples: "
                   "pretrained features are far from unit scale, and a fixed rate diverges on one model and "
                   "crawls on another].")
@click.option("--schedule", type=click.Choice(["step", "constant"]), default="step", show_default=True,
              help="step: the rate drops to 1/4 at half the steps and to 1/16 at three quarters; constant: no decay.")
@click.option("--head", type=click.Choice(["auto", "reset", "keep"]), default="auto", show_default=True,
              help="The classifier (last fc): reset starts a new one at zero with the dataset's classes "
                   "(fine-tuning a .tflite trained for other classes); keep trains the model's own; "
                   "auto resets a .tflite's and keeps a builtin's.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seeds the builtin model's weights, the sample order and the stochastic rounding stream.")
@click.option("--eval-every", type=click.IntRange(min=0), default=0, help="Also measure test accuracy every K steps.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the run report as JSON.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a loss and accuracy plot (PNG).")
@click.option("-o", "--out", "weights_path", type=click.Path(dir_okay=False),
              help="Write the trained (last good) weights as .npz.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@_fail_cleanly
def train(model, dataset, mode, no_lac, no_prc, update, backend, port, step_memory, steps, lr, schedule, head, seed,
          eval_every, json_path, plot_path, weights_path, quiet):
    """Train MODEL (a .tflite or builtin:digits-cnn) with int8 or fp32 SGD; report loss and accuracy."""
    from tqdm import tqdm

    from host import training
    from host.report import write_json

    with tqdm(total=steps, unit="step", disable=quiet, leave=False) as bar:
        def progress(step, loss):
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss:.3f}")

        report, tm = training.run(model, dataset, mode=mode, lac=not no_lac, prc=not no_prc, update=update,
                                  backend=backend, steps=steps, lr=lr, schedule=schedule, seed=seed,
                                  eval_every=eval_every, progress=progress, port=port, step_memory=step_memory,
                                  head=head)
    if json_path:
        write_json(report, Path(json_path))
    if plot_path:
        training.write_plot(report, Path(plot_path))
    if weights_path:
        training.write_weights(tm, Path(weights_path))
    if report["bit_exact"] is False:
        click.echo(f"tinysyn: error: the {backend} step differs from the reference at {report['first_mismatch']}", err=True)
        sys.exit(8)
    tail = report["loss"][-50:]
    click.echo(f"{model}: {mode} on {backend}, {report['steps_done']}/{steps} steps, "
               f"loss {sum(tail) / max(len(tail), 1):.4f} (mean of last {len(tail)}), "
               f"test accuracy {report['test_accuracy']:.4f} (from {report['start_accuracy']:.4f}), lr {report['lr']:g}")
    if report["bit_exact"] is not None:
        cost = (f", {report['instructions_per_step']:,} instructions per step"
                if report["instructions_per_step"] else "")
        click.echo(f"bit-exact with the NumPy reference after every step; peak RAM {report['peak_ram_bytes']:,} B"
                   f"{cost}")
    if report["diverged"]:
        click.echo(f"tinysyn: error: training stopped at {report['diverged']} "
                   f"(kept the weights after {report['steps_done']} good steps)", err=True)
        sys.exit(9)

main.add_command(__import__("host.hw_cli", fromlist=["hw"]).hw)


if __name__ == "__main__":
    main()
