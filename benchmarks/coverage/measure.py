"""One model through the coverage pipeline on one side; every failure is a figure.

Stages, in order (`STAGES`); a stage that raises records ``"<stage>_error"`` (the
exception type and the first line of its message) and the later stages are not
reached:

- build: the model, seeded (keras.applications with `weights=None`).
- float: float training; an application then takes its BatchNormalization moving
  statistics from one batch (`set_batchnorm_statistics`), so that its activations
  do not fade to zero layer after layer and its int8 outputs are not all zero.
- quantize: `tfopt.quantization.quantize_model` / tfmot's `quantize_model`.
- train: QAT steps (applications) or epochs (small models).
- tflite: the QAT model to an int8 .tflite (tfopt: `to_tflite(parity_bar=False)`;
  tfmot: the TFLite converter with `optimizations=[Optimize.DEFAULT]`), its op census
  (`tfopt.export.op_census`), parity against the QAT model, LiteRT's own XNNPACK vs
  reference kernel agreement on the file.
- onnx: the QAT model to a QDQ .onnx (tfopt: `to_onnx(parity_bar=False)`; tfmot:
  tf2onnx's `from_keras`, which `tfopt.export.to_onnx` refuses for tfmot models), the
  same figures, onnxruntime's optimized vs unoptimized graph agreement.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.coverage import budget as budgets
from benchmarks.coverage import data as tasks
from benchmarks.coverage import files

STAGES = ("build", "float", "quantize", "train", "tflite", "onnx")
ERROR_CHARS = 300


# Keras' wrapper of a layer's error: "... calling layer "name" (type X)." (tf_keras),
# "... calling X.call()." (Keras 3), the cause on a later line.
_WRAPPED = "Exception encountered when calling"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Keras 3 prints the cause in bold
_INNER = re.compile(r"^[\w.]*(Error|Exception): ")
_NOT_THE_ERROR = ("in user code:", "File ", "Call arguments received", "Arguments received", "•")


def describe(err: BaseException) -> str:
    """ "Type: first non-blank line of the message", at most `ERROR_CHARS` characters.

    When the first line is Keras' "Exception encountered when calling ..." wrapper, which
    says where but not what, the wrapped error's line is added after " -> ".
    """
    message = _ANSI.sub("", str(err))
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    if lines and lines[0].startswith(_WRAPPED):
        # The wrapped error: its "Type: message" line inside a traceback, else the
        # first line that is not the traceback's or the call arguments'.
        typed = [line for line in lines[1:] if _INNER.match(line)]
        plain = [line for line in lines[1:] if not line.startswith(_NOT_THE_ERROR)]
        inner = typed[-1:] or plain[:1]
        if inner:
            text += f" -> {inner[0]}"
    return text[:ERROR_CHARS]


def set_batchnorm_statistics(model, x, batchnorm_class) -> int:
    """Sets every BatchNormalization's moving statistics from one batch of `x`.

    Momentum 0 for one training-mode call, then restored. An untrained application
    holds mean 0 / variance 1 (MobileNetV3's momentum is 0.999, so a short training
    barely moves them); in inference its activations then shrink layer after layer.

    Returns:
        How many layers were set.
    """
    norms = [layer for layer in _all_layers(model) if isinstance(layer, batchnorm_class)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(x, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    return len(norms)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def measure(spec, side, quick: bool, progress=lambda stage, row: None) -> dict:
    """The row of `spec` on `side` (a `TfoptSide` or `TfmotSide`).

    Args:
        spec: a `models.ModelSpec`.
        side: what quantizes and exports.
        quick: the --quick budget.
        progress: called as `progress(stage, row)` before each stage, with the row so
            far (the child process writes it down, so a crash keeps what was measured).
    """
    plan = budgets.budget(quick)
    row = {"model": spec.name, "side": side.name, "kind": spec.kind, "input": spec.input_note}
    row["quick"] = bool(quick)
    start = time.perf_counter()
    state = {}
    for stage in STAGES:
        progress(stage, row)
        begun = time.perf_counter()
        try:
            _STAGE_RUNNERS[stage](spec, side, plan, quick, state, row)
        except Exception as err:  # errors are data: the row says what broke, and where
            row[f"{stage}_error"] = describe(err)
            break
        finally:
            row[f"{stage}_s"] = time.perf_counter() - begun
    row["seconds"] = time.perf_counter() - start
    if "tmp" in state:
        state["tmp"].cleanup()
    return row


def _build(spec, side, plan, quick, state, row):
    state["task"] = tasks.task_for(spec, quick)
    side.keras.utils.set_random_seed(budgets.SEED)
    state["model"] = spec.build(side.keras)
    row["params"] = int(state["model"].count_params())


def _compile(model, side, eager):
    model.compile(
        optimizer=side.keras.optimizers.Adam(budgets.LEARNING_RATE),
        loss=side.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=eager,
    )


def _float(spec, side, plan, quick, state, row):
    model, task = state["model"], state["task"]
    if spec.kind == "application":
        n = plan.app_float_steps * plan.app_float_batch
        _compile(model, side, eager=True)
        model.fit(task.x_train[:n], task.y_train[:n], batch_size=plan.app_float_batch, verbose=0)
        row["float_steps"] = plan.app_float_steps
        batch = task.x_train[n : n + plan.app_statistics_batch]
        bn = set_batchnorm_statistics(model, batch, side.keras.layers.BatchNormalization)
        row["batchnorm_layers"] = bn
        state["x_verify"] = task.x_test[: plan.app_verify]
        state["y_verify"] = task.y_test[: plan.app_verify]
    else:
        _compile(model, side, eager=False)
        side.keras.utils.set_random_seed(budgets.SEED)
        model.fit(
            task.x_train,
            task.y_train,
            epochs=plan.small_float_epochs,
            batch_size=plan.small_batch,
            verbose=0,
        )
        row["float_epochs"] = plan.small_float_epochs
        row["float_accuracy"] = _accuracy(_predict(model, task.x_test), task.y_test)
        row["test_samples"] = len(task.x_test)
        state["x_verify"], state["y_verify"] = task.x_test, task.y_test


def _quantize(spec, side, plan, quick, state, row):
    state["qat"] = side.quantize(state["model"])
    row["quantize"] = "ok"


def _train(spec, side, plan, quick, state, row):
    qat, task = state["qat"], state["task"]
    side.keras.utils.set_random_seed(budgets.SEED)
    if spec.kind == "application":
        # Eager steps: tracing a graph of hundreds of layers costs more than the steps.
        _compile(qat, side, eager=True)
        n = plan.app_qat_steps * plan.app_qat_batch
        history = qat.fit(
            task.x_train[:n], task.y_train[:n], batch_size=plan.app_qat_batch, verbose=0
        )
        row["train_steps"] = plan.app_qat_steps
        row["train_batch"] = plan.app_qat_batch
    else:
        _compile(qat, side, eager=False)
        history = qat.fit(
            task.x_train,
            task.y_train,
            epochs=plan.small_qat_epochs,
            batch_size=plan.small_batch,
            verbose=0,
        )
        row["train_epochs"] = plan.small_qat_epochs
    loss = float(history.history["loss"][-1])
    row["train_loss"] = loss
    if not math.isfinite(loss):
        raise FloatingPointError(f"the QAT loss is {loss}")
    expected = _predict(qat, state["x_verify"])
    state["expected"] = expected
    row["output_std"] = float(np.std(expected))
    if spec.kind != "application":
        row["qat_accuracy"] = _accuracy(expected, state["y_verify"])
    state["tmp"] = tempfile.TemporaryDirectory(prefix="tfopt-coverage-")


def _tflite(spec, side, plan, quick, state, row):
    path = Path(state["tmp"].name) / "model.tflite"
    result = side.to_tflite(state["qat"], path, state["x_verify"], state["expected"])
    _record_file(row, "tflite", path, result, state)
    floor = files.litert_self_agreement(path, state["x_verify"], result.parity.output_step)
    row["tflite_self_within"], row["tflite_self_max_steps"] = floor


def _onnx(spec, side, plan, quick, state, row):
    path = Path(state["tmp"].name) / "model.onnx"
    result = side.to_onnx(state["qat"], path, state["x_verify"], state["expected"])
    _record_file(row, "onnx", path, result, state)
    if result.parity.output_step:
        floor = files.ort_self_agreement(path, state["x_verify"], result.parity.output_step)
        row["onnx_self_within"], row["onnx_self_max_steps"] = floor


def _record_file(row, prefix, path, result, state):
    """The census and parity figures of one exported file, under `prefix`_*."""
    from tfopt.export import file_sizes, op_census

    census = op_census(path)
    row[f"{prefix}_bytes"] = file_sizes(path)[0]
    row[f"{prefix}_quantization"] = result.quantization
    floats = census.float_compute_ops()
    row[f"{prefix}_float_compute"] = _op_counts(op.op for op in floats if not op.graph)
    row[f"{prefix}_subgraph_compute"] = _op_counts(op.op for op in floats if op.graph)
    compute = {op.index for op in floats if not op.graph}
    row[f"{prefix}_float_other"] = _op_counts(
        op.op for op in census.float_ops() if op.index not in compute
    )
    row[f"{prefix}_notes"] = "; ".join(result.notes)
    parity = result.parity
    got = parity.outputs[0]
    row[f"{prefix}_within"] = parity.within_one_step
    row[f"{prefix}_max_steps"] = parity.max_error_steps
    row[f"{prefix}_top1"] = (
        parity.top1_agreement
        if parity.top1_agreement is not None
        else files.top1_agreement(got, state["expected"])
    )
    row[f"{prefix}_bar"] = files.bar_failures(parity, result.bar)
    if "y_verify" in state and row["kind"] != "application":
        row[f"{prefix}_accuracy"] = _accuracy(got, state["y_verify"])


def _op_counts(names) -> str:
    """ "FULLY_CONNECTED x2, SOFTMAX" from op type names, in order of first appearance;
    "" for none."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(name if n == 1 else f"{name} x{n}" for name, n in counts.items())


def _predict(model, x):
    return np.asarray(model.predict(x, batch_size=64, verbose=0))


def _accuracy(outputs, labels) -> float:
    return float(np.mean(np.argmax(outputs, axis=-1) == labels))


_STAGE_RUNNERS = {
    "build": _build,
    "float": _float,
    "quantize": _quantize,
    "train": _train,
    "tflite": _tflite,
    "onnx": _onnx,
}
