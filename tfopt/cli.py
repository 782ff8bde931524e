"""The `tfopt` command line: demo, inspect, export, optimize."""

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

    run_demo(args.out, epochs=args.epochs, seed=args.seed, threads=args.threads, save=args.save)
    return 0


def _inspect_sensitivity(args) -> int:
    """`tfopt inspect MODEL.keras --sensitivity --data DATA.npz`: the QAT sensitivity ranking."""
    if not args.sensitivity:
        raise ValueError(
            "--data is read by --sensitivity only: "
            "tfopt inspect MODEL.keras --sensitivity --data DATA.npz"
        )
    if args.data is None:
        raise ValueError(
            "--sensitivity measures accuracy on labelled data: pass --data DATA.npz (x_train, "
            "y_train, x_val, y_val; the val split is used)"
        )
    if not 0.0 <= args.max_drop < 1.0:
        raise ValueError(f"--max-drop must be in [0, 1). Received: --max-drop {args.max_drop}")
    from tfopt.report import quantization_sensitivity

    arrays = _load_npz(args.data)
    model = _load_keras_file(args.file, "FILE", safe_mode=not args.unsafe)
    from tfopt.pipeline._checks import check_classifier_data

    x, y = check_classifier_data(model, (arrays["x_val"], arrays["y_val"]))
    sensitivity = quantization_sensitivity(model, (x, y))
    print(f"{args.file}: {model.name}, each layer alone quantized (int8, ranges observed on "
          f"x_val), accuracy on {len(y)} samples of x_val / y_val")  # fmt: skip
    print()
    print(sensitivity.table())
    leave = sensitivity.suggest(args.max_drop)
    outcome = sensitivity.suggestions[-1]
    print()
    print(
        f"to stay within {args.max_drop:g} of the baseline, leave in float: "
        f"{', '.join(leave) or 'nothing'} (measured {sensitivity.metric} "
        f"{outcome['metric']:.4g}, drop {outcome['drop']:.4g})"
    )
    return 0


def _cmd_inspect(args) -> int:
    if args.sensitivity or args.data is not None:
        return _inspect_sensitivity(args)
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
    "inspect": {
        "path": "FILE",
        "model": "FILE",
        "data": "--data",
        "val_data": "--data",
        "max_drop": "--max-drop",
    },
    "optimize": {
        "train_data": "--data",
        "val_data": "--data",
        "model": "MODEL",
        "teacher": "--teacher",
        "out_dir": "--out",
        "log_dir": "--log-dir",
    },
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


# The arrays `tfopt optimize --data` reads from its .npz file.
NPZ_ARRAYS = ("x_train", "y_train", "x_val", "y_val")


def _load_npz(path: str) -> dict:
    """The --data arrays of `tfopt optimize` (an .npz with NPZ_ARRAYS), or a usage error."""
    import zipfile

    import numpy as np

    if not path or not os.path.exists(path):
        raise FileNotFoundError(f"--data: no such file: '{path}'")
    if os.path.isdir(path):
        raise ValueError(f"--data names a directory, not an .npz file: '{path}'")
    how = (
        "np.savez('data.npz', x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val) "
        "(`tfopt demo --save DIR` writes one)"
    )
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:
        raise ValueError(
            f"--data: '{path}' is not an .npz archive of numeric arrays ({how}; reading it "
            f"failed with {type(err).__name__})."
        ) from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"--data must be an .npz archive of {', '.join(NPZ_ARRAYS)} ({how}), not one "
            f".npy array. Received: '{path}'"
        )
    with archive:
        missing = [name for name in NPZ_ARRAYS if name not in archive.files]
        if missing:
            raise ValueError(
                f"--data: '{path}' has no array{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}; it needs {', '.join(NPZ_ARRAYS)} ({how}). It holds: "
                f"{', '.join(archive.files) or 'nothing'}."
            )
        try:
            return {name: archive[name] for name in NPZ_ARRAYS}
        except (ValueError, zipfile.BadZipFile, OSError) as err:
            raise ValueError(
                f"--data: '{path}' holds an array that does not load without pickle (object "
                f"arrays are refused): {err}"
            ) from err


def _load_keras_file(path: str, argument: str, safe_mode: bool = True):
    """A saved Keras model for `tfopt optimize`, with Keras's safe_mode unless --unsafe."""
    import keras

    from tfopt import distillation, pruning, quantization  # noqa: F401  (register classes)

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{argument}: no such file: '{path}'")
    import zipfile

    if str(path).endswith(".keras") and not zipfile.is_zipfile(path):
        # Keras itself answers "File not found" for a file that is there.
        raise ValueError(
            f"{argument}: '{path}' is not a .keras archive (the zip file model.save writes); "
            f"it holds {os.path.getsize(path):,} bytes of something else."
        )
    try:
        model = keras.saving.load_model(path, safe_mode=safe_mode)
    except Exception as err:
        text = str(err)
        if safe_mode and ("safe_mode" in text or "unsafe_deserialization" in text):
            raise ValueError(
                f"{argument}: '{path}' holds Python code (e.g. a Lambda layer's function), "
                "which Keras's safe mode refuses to load: loading it would run code from the "
                "file. If you trust the file, pass --unsafe."
            ) from err
        raise ValueError(
            f"{argument}: '{path}' is not a Keras model file Keras can load (a .keras archive "
            f"saved by model.save): {type(err).__name__}: "
            f"{text.splitlines()[0] if text else ''}"
        ) from err
    if isinstance(model, distillation.Distiller):
        print(f"{path} holds a Distiller: using its student, {model.student.name!r}.")
        model = model.student
    return model


def _optimize_recipe(args):
    """The recipe of `tfopt optimize`: --recipe's file, else one made from the flags."""
    from tfopt import pipeline

    flags = {
        "--prune": args.prune,
        "--quantize": args.quantize,
        "--export": args.export,
        "--epochs": args.epochs,
        "--leave-dense": args.leave_dense,
    }
    given = [flag for flag, value in flags.items() if value is not None]
    if args.recipe is not None:
        if given:
            raise ValueError(
                f"--recipe sets the stages, their budgets and the export formats: drop "
                f"{', '.join(given)}, or drop --recipe. Received: --recipe {args.recipe} with "
                f"{', '.join(given)}"
            )
        return pipeline.Recipe.from_file(args.recipe)
    budget = {} if args.epochs is None else {"epochs": args.epochs}
    stages = []
    if args.teacher is not None:
        stages.append(pipeline.DistillStage(**budget))
    if args.leave_dense is not None and args.prune is None:
        raise ValueError("--leave-dense keeps layers dense while pruning: add --prune.")
    if args.prune is not None:
        stages.append(_prune_stage(args.prune, args.leave_dense, budget))
    export = "tflite" if args.export is None else args.export  # --export '' names nothing
    formats = [f.strip() for f in export.split(",") if f.strip()]
    unknown = [f for f in formats if f not in ("tflite", "onnx")]
    if unknown or not formats:
        raise ValueError(
            f"--export takes tflite, onnx or tflite,onnx. Received: --export {args.export}"
        )
    if args.quantize == "qat":
        stages.append(pipeline.QATStage(**budget))
    elif args.quantize is not None:
        if "onnx" in formats:
            raise ValueError(
                f"--quantize {args.quantize} quantizes the TFLite file only (post-training); "
                "an int8 ONNX file comes from --quantize qat. Drop onnx from --export, or use "
                f"--quantize qat. Received: --export {','.join(formats)}"
            )
        if "tflite" not in formats:
            raise ValueError(
                f"--quantize {args.quantize} quantizes the TFLite file: add tflite to --export."
            )
        stages.append(pipeline.PTQStage(mode=args.quantize))
    if args.epochs is not None and not any(
        isinstance(st, pipeline.TrainingStage) for st in stages
    ):
        raise ValueError(
            f"--epochs sets the budget of the training stages (--teacher, --prune, --quantize "
            f"qat); this run has none. Received: --epochs {args.epochs}"
        )
    stages.append(pipeline.ExportStage(formats=formats))
    return pipeline.Recipe(stages)


def _prune_stage(value: str, leave_dense, budget):
    from tfopt import pipeline

    leave = [n.strip() for n in (leave_dense or "").split(",") if n.strip()]
    try:
        if ":" in value:
            return pipeline.PruneStage(sparsity_m_by_n=value, leave_dense=leave, **budget)
        return pipeline.PruneStage(sparsity=float(value), leave_dense=leave, **budget)
    except (TypeError, ValueError) as err:
        raise ValueError(
            "--prune takes a sparsity in [0, 1) (e.g. 0.8) or an m:n pattern with 0 < m < n "
            f"(e.g. 2:4). Received: --prune {value}"
        ) from err


class _StdoutToStderr:
    """Sends everything printed (Python's and native code's) to stderr while it is active."""

    def __enter__(self):
        import contextlib

        self._redirect = contextlib.redirect_stdout(sys.stderr)
        self._redirect.__enter__()
        self._saved = None
        try:
            sys.__stdout__.flush()
            self._saved = os.dup(1)
            os.dup2(sys.stderr.fileno(), 1)
        except (OSError, AttributeError, ValueError):
            self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            sys.__stdout__.flush()
            os.dup2(self._saved, 1)
            os.close(self._saved)
        self._redirect.__exit__(*exc)
        return False


def _cmd_optimize(args) -> int:
    import json

    from tfopt import pipeline

    recipe = _optimize_recipe(args)
    data = _load_npz(args.data)
    model = _load_keras_file(args.model, "MODEL", safe_mode=not args.unsafe)
    teacher = None
    if args.teacher is not None:
        teacher = _load_keras_file(args.teacher, "--teacher", safe_mode=not args.unsafe)

    def log(line):
        print(line, file=sys.stderr if args.json else sys.stdout)

    train = (data["x_train"], data["y_train"])
    val = (data["x_val"], data["y_val"])
    run = lambda: pipeline.optimize(  # noqa: E731
        model, train, val, recipe, teacher=teacher, out_dir=args.out,
        verbose=0 if args.json else "auto", log=log, safe_mode=not args.unsafe,
        log_dir=args.log_dir, overwrite=args.overwrite,
    )  # fmt: skip
    if args.json:
        with _StdoutToStderr():
            result = run()
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    result = run()
    print()
    print(result.table())
    print()
    for note in result.notes[1:]:  # the first says which loss, printed when the run began
        print(f"note: {note}")
    print(
        f"Accuracy and loss on {len(val[0])} validation samples (x_val, y_val); every file was "
        "run on them in its runtime and compared with its Keras model; latency is the median "
        f"batch-1 run on 1 thread. Reports and plots: {result.out_dir}/report.md"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Builds the `tfopt` parser: `--version` and the demo, inspect, export and optimize commands.

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
    demo.add_argument(
        "--save",
        metavar="DIR",
        default=None,
        help="also write the trained model and its data to DIR/model.keras and DIR/data.npz "
        "(x_train, y_train, x_val, y_val), the input of `tfopt optimize`",
    )
    demo.set_defaults(func=_cmd_demo)

    inspect_cmd = sub.add_parser(
        "inspect",
        help="sizes, inputs/outputs and op census of a .tflite or .onnx file, and whether it "
        "is fully integer; with --sensitivity, a .keras model's per-layer QAT sensitivity",
    )
    inspect_cmd.add_argument("file", help="a .tflite or .onnx file (a .keras with --sensitivity)")
    inspect_cmd.add_argument(
        "--sensitivity",
        action="store_true",
        help="rank the layers of a .keras model by the accuracy lost when each alone is "
        "quantized to int8, and say which to leave in float",
    )
    inspect_cmd.add_argument(
        "--data",
        metavar="DATA.npz",
        default=None,
        help="with --sensitivity: an .npz holding x_train, y_train, x_val, y_val (the val split "
        "is measured)",
    )
    inspect_cmd.add_argument(
        "--max-drop",
        type=float,
        default=0.01,
        help="with --sensitivity: the accuracy drop the suggestion stays within "
        "(default: %(default)s)",
    )
    inspect_cmd.add_argument(
        "--unsafe",
        action="store_true",
        help="load the .keras file with Keras's safe_mode=False (runs Python code stored in "
        "it); only for files you trust",
    )
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

    opt = sub.add_parser(
        "optimize",
        help="distill, prune, quantize (QAT or post-training) and export a trained .keras "
        "classifier; verified files, report.json/md and plots in --out",
        description="Runs a recipe of stages (distill -> prune -> qat or ptq -> export) on a "
        "trained classifier, made from the flags or read from --recipe, and writes each "
        "stage's model, the verified files, report.json, report.md and PNG plots to --out.",
    )
    opt.add_argument("model", metavar="MODEL", help="the trained model, a .keras file")
    opt.add_argument(
        "--data",
        required=True,
        metavar="DATA.npz",
        help="an .npz holding x_train, y_train, x_val, y_val (np.savez; labels are class ids "
        "or one-hot rows)",
    )
    opt.add_argument(
        "--teacher", metavar="T.keras", help="distill from this teacher first (a .keras file)"
    )
    opt.add_argument(
        "--prune",
        metavar="SPARSITY|M:N",
        help="prune to this sparsity (e.g. 0.8) or m:n pattern (e.g. 2:4)",
    )
    opt.add_argument(
        "--leave-dense",
        metavar="NAMES",
        help="comma-separated layer names to keep dense while pruning",
    )
    opt.add_argument(
        "--quantize",
        choices=["qat", "int8", "dynamic", "float16", "int16x8"],
        help="quantization-aware training (qat), or post-training quantization of the TFLite file",
    )
    opt.add_argument(
        "--export", metavar="FORMATS", help="tflite, onnx or tflite,onnx (default: tflite)"
    )
    opt.add_argument(
        "--recipe",
        metavar="RECIPE",
        help="a .yaml/.yml/.json recipe file (instead of --prune, --quantize, --export, --epochs)",
    )
    opt.add_argument(
        "--epochs",
        type=int,
        default=None,
        metavar="N",
        help="epochs of each training stage (default: each stage's, 3)",
    )
    opt.add_argument(
        "--out", required=True, metavar="DIR", help="the output directory (new or empty)"
    )
    opt.add_argument(
        "--overwrite",
        action="store_true",
        help="use a --out that holds files: the files of an earlier run there are replaced, "
        "other files kept",
    )
    opt.add_argument(
        "--log-dir",
        metavar="DIR",
        help="TensorBoard logs: per-layer sparsity while pruning, quantization ranges in QAT",
    )
    opt.add_argument(
        "--json", action="store_true", help="print the result as JSON (nothing else on stdout)"
    )
    opt.add_argument(
        "--unsafe",
        action="store_true",
        help="load .keras files with Keras's safe_mode=False: runs Python code stored in them "
        "(Lambda layers); only for files you trust",
    )
    opt.set_defaults(func=_cmd_optimize)
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
    if getattr(args, "epochs", None) is not None and args.epochs < 1:
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
