"""The `tfopt` command line: demo, inspect, export."""

from __future__ import annotations

import argparse
import inspect
import os
import sys


def _quiet_tensorflow() -> None:
    """Keeps TensorFlow's native start-up notices off the terminal.

    TensorFlow's libraries log a few lines (CUDA probing on a machine without a
    GPU, CPU features) straight to file descriptor 2 before their logging is set
    up, where TF_CPP_MIN_LOG_LEVEL does not reach. Python's own stderr (our
    errors, warnings, tracebacks) is moved to a copy of the terminal's stderr,
    and descriptor 2 goes to /dev/null. TFOPT_VERBOSE=1 keeps everything.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if os.environ.get("TFOPT_VERBOSE") == "1":
        return
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(terminal, "w", buffering=1)
    except (OSError, AttributeError, ValueError):
        pass


def _cmd_demo(args) -> int:
    from tfopt._demo import run_demo

    run_demo(args.out, epochs=args.epochs, seed=args.seed, threads=args.threads)
    return 0


def _cmd_inspect(args) -> int:
    from tfopt.export import op_census
    from tfopt.export._files import file_sizes
    from tfopt.export._runtime import open_runner
    from tfopt.report import format_bytes

    raw, gz = file_sizes(args.file)
    census = op_census(args.file)
    runner = open_runner(args.file)
    print(
        f"{args.file}: {census.format}, {raw:,} bytes ({format_bytes(raw)}), "
        f"{gz:,} bytes gzipped ({format_bytes(gz)})"
    )
    for kind, specs in (("input", runner.inputs), ("output", runner.outputs)):
        for s in specs:
            quant = f", scale {s.scale:.6g} zero point {s.zero_point}" if s.scale else ""
            print(f"  {kind} {s.name}: {s.dtype.name} {list(s.shape)}{quant}")
    print()
    print(census.table())
    float_ops = census.float_compute_ops()
    print()
    if float_ops:
        print(
            f"{len(float_ops)} compute op(s) take float inputs: "
            + ", ".join(sorted({op.op for op in float_ops}))
        )
    else:
        print(
            "every compute op (conv, depthwise conv, dense, matmul) runs on integer inputs"
            if census.of_type(*_compute_ops())
            else "no compute ops found"
        )
    # Integer end to end, inputs and outputs included: what integer-only accelerators run.
    print(f"fully integer: {census.integer_summary()}")
    return 0


def _compute_ops():
    from tfopt.export import COMPUTE_OPS

    return COMPUTE_OPS


def _cmd_export(args) -> int:

    # Importing the subpackages registers their layers (QAT and pruning wrappers,
    # Distiller) with Keras, so saved compressed models load by name.
    from tfopt import distillation, export, pruning, quantization  # noqa: F401

    fmt = export.format_for(args.output, argument="output")
    accepted = inspect.signature(fmt.export).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    data = _load_data(args.data) if args.data is not None else None
    # The flags the user gave, as the exporter's keyword arguments; --data calibrates
    # where the exporter calibrates, else it is what the file is verified on.
    calibrates = "representative_data" in accepted or (takes_any and args.quantization)
    data_key = "representative_data" if calibrates else "verify_data"
    given = {
        "--quantization": ("quantization", args.quantization),
        "--data": (data_key, data),
        "--int8-io": ("int8_io", args.int8_io or None),
        "--opset": ("opset", args.opset),
        "--batch-size": ("batch_size", args.batch_size),
    }
    options = {}
    for flag, (key, value) in given.items():
        if value is None:
            continue
        if key not in accepted and not takes_any:
            raise ValueError(
                f"{flag} does not apply to {fmt.name} files ({', '.join(fmt.suffixes)}). "
                f"Received: {flag} for output '{args.output}'."
            )
        options[key] = value
    if args.quantization in ("int8", "int16x8") and data is None:
        raise ValueError(
            f"--quantization {args.quantization} calibrates on sample inputs: pass --data "
            "samples.npy (a .npy array of inputs, prepared as at inference)."
        )
    if args.int8_io and args.quantization not in ("int8", "int16x8"):
        raise ValueError(
            "--int8-io needs a full-integer file: add --quantization int8 (or int16x8). "
            f"Received: --quantization {args.quantization}"
        )
    model = _load_model(args.model)
    if isinstance(model, distillation.Distiller):
        print(f"{args.model} holds a Distiller: exporting its student, {model.student.name!r}.")
        model = model.student
    print(fmt.export(model, args.output, **options))
    return 0


def _load_data(path: str):
    """The --data array, or a usage error that says what the file is."""
    import os

    import numpy as np

    if not path or not os.path.exists(path):
        raise FileNotFoundError(f"--data: no such file: '{path}'")
    if os.path.isdir(path):
        raise ValueError(f"--data names a directory, not a .npy file: '{path}'")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as err:
        raise ValueError(
            f"--data: '{path}' is not a .npy file of numbers (write one with np.save from a "
            f"numeric array; reading it failed with {type(err).__name__})."
        ) from err
    if not isinstance(data, np.ndarray):
        raise ValueError(
            f"--data must be one .npy array (np.save), not an .npz archive. Received: '{path}'"
        )
    return data


# Python argument names in tfopt's messages, as the command line's flags and positionals.
_CLI_NAMES = {
    "export": {
        "representative_data": "--data",
        "verify_data": "--data",
        "quantization": "--quantization",
        "opset": "--opset",
        "int8_io": "--int8-io",
        "batch_size": "--batch-size",
        "path": "OUTPUT",
        "model": "MODEL",
    },
    "inspect": {"path": "FILE"},
}


def _in_cli_terms(message: str, command: str) -> str:
    """A tfopt error message with its Python argument names replaced by the CLI's."""
    import re

    for name, flag in _CLI_NAMES.get(command, {}).items():
        message = message.replace(f"Argument `{name}`", flag)
        message = re.sub(rf"`{name}`", flag, message)
        message = re.sub(rf"\b{name}=", f"{flag} ", message)
    return message


def _load_model(path: str):
    """A saved Keras model, or a usage error that says what the file is."""
    import os

    import keras

    if not os.path.isfile(path):
        raise FileNotFoundError(f"MODEL: no such file: '{path}'")
    try:
        return keras.saving.load_model(path)
    except Exception as err:
        raise ValueError(
            f"MODEL: '{path}' is not a Keras model file Keras can load (a .keras archive "
            f"saved by model.save, or a legacy .h5): {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}"
        ) from err


def build_parser() -> argparse.ArgumentParser:
    """Builds the `tfopt` parser: `--version` and the demo, inspect and export subcommands.

    Each subcommand's parsed arguments carry `func`, the function that runs it.

    Returns:
        The `argparse.ArgumentParser`.
    """
    parser = argparse.ArgumentParser(
        prog="tfopt",
        description="Make Keras 3 models small and fast: verified TFLite and ONNX exports.",
    )
    from tfopt import __version__

    parser.add_argument("--version", action="version", version=f"tfopt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="train a CNN on the digits, export TFLite (4 ways) and ONNX, verify and compare",
    )
    demo.add_argument(
        "--out", default="tfopt-demo", help="output directory (default: %(default)s)"
    )
    demo.add_argument(
        "--epochs", type=int, default=30, help="training epochs (default: %(default)s)"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.add_argument(
        "--threads", type=int, default=1, help="runtime threads for latency (default: %(default)s)"
    )
    demo.set_defaults(func=_cmd_demo)

    inspect_cmd = sub.add_parser(
        "inspect",
        help="sizes, inputs/outputs and op census of a .tflite or .onnx file, and whether it "
        "is fully integer",
    )
    inspect_cmd.add_argument("file")
    inspect_cmd.set_defaults(func=_cmd_inspect)

    exp = sub.add_parser("export", help="export a saved .keras model to .tflite or .onnx")
    exp.add_argument("model", help="a .keras file")
    exp.add_argument("output", help="the .tflite or .onnx file to write")
    exp.add_argument(
        "--quantization", choices=["float16", "dynamic", "int8", "int16x8"], default=None
    )
    exp.add_argument("--data", help="a .npy file of sample inputs (calibration for int8)")
    exp.add_argument("--int8-io", action="store_true", help="int8 inputs and outputs (int8)")
    exp.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 17)")
    exp.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="N",
        help="fix the batch at N (e.g. 1): static shapes, no shape ops, for edge compilers "
        "(Edge TPU, Vela) (default: a free batch)",
    )
    exp.set_defaults(func=_cmd_export)
    return parser


def main(argv=None) -> int:
    """Runs the command line.

    `argv=None` reads sys.argv (and quiets TensorFlow's native notices); a list
    runs in-process without touching the streams.

    Example:

    ```python
    assert main(["inspect", "model.tflite"]) == 0
    ```

    Args:
        argv: the arguments after the program name, or None for `sys.argv[1:]`.
            Defaults to `None`.

    Returns:
        The exit status: 0, or 2 when the command failed with a ValueError,
        TypeError, FileNotFoundError or PermissionError (printed to stderr).

    Raises:
        SystemExit: from argparse, for a usage error (status 2) or after
            `--help` / `--version` (status 0).
    """
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # bare `tfopt`: the help
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if argv is None:
        _quiet_tensorflow()
    if getattr(args, "epochs", 1) < 1:
        parser.error(f"argument --epochs must be >= 1, got {args.epochs}")
    try:
        code = args.func(args)
    except (ValueError, TypeError, OSError) as err:
        message = _in_cli_terms(str(err), args.command)
        print(f"tfopt {args.command}: error: {message}", file=sys.stderr)
        code = 2
    return code


if __name__ == "__main__":
    sys.exit(main())
