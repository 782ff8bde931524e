"""What `tfopt.optimize` checks before any training: model, data, teacher, recipe against them.

Everything here runs before the first `fit`, so a bad input costs seconds, not a
training run. The result is a `Plan`: the checked arrays and what the stages need.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import re
from pathlib import Path

import keras
import numpy as np

from tfopt._keras import is_graph_model
from tfopt.pipeline.recipe import Recipe
from tfopt.pipeline.stages import OPTIMIZERS_HINT, PruneStage, QATStage, TrainingStage


@dataclasses.dataclass
class Plan:
    """Checked inputs and the settings each stage runs with."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    val_ids: np.ndarray  # the class id of each validation sample
    num_classes: int
    sparse_labels: bool  # class ids (True) or one-hot / probability rows (False)
    from_logits: bool
    teacher: keras.Model | None
    model: keras.Model  # the copy of the caller's model that the stages train
    out_dir: Path
    steps: dict  # stage kind -> training steps in that stage
    prune_schedule: object = None  # the tfopt.pruning schedule of the prune stage
    log_dir: Path | None = None  # TensorBoard logs of the prune and qat stages
    preserve_sparsity: bool = False

    def loss(self) -> keras.losses.Loss:
        """The training loss for these labels and outputs."""
        if self.sparse_labels:
            return keras.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)
        return keras.losses.CategoricalCrossentropy(from_logits=self.from_logits)


def stage_error(kind: str, err: Exception) -> Exception:
    """`err` again, its message prefixed with the stage it concerns."""
    return type(err)(f"Stage '{kind}': {err}")


def optimizer(stage: TrainingStage):
    """A fresh Keras optimizer of the stage's name and learning rate."""
    try:
        return keras.optimizers.get(
            {"class_name": stage.optimizer, "config": {"learning_rate": stage.learning_rate}}
        )
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"Stage '{stage.kind}': Argument `optimizer` must be {OPTIMIZERS_HINT} "
            f"(keras.optimizers.get). Received: optimizer={stage.optimizer!r}"
        ) from err


def _check_model(model, argument: str) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Argument `{argument}` must be a Keras 3 keras.Model. Received: {argument} of "
            f"type {type(model).__module__}.{type(model).__name__}"
        )
    if not is_graph_model(model):
        raise TypeError(
            f"Argument `{argument}` must be a Sequential or functional Keras model (pruning "
            f"and QAT rewrite its layer graph). Received: subclassed model {model.name!r} of "
            f"class {type(model).__name__}; rebuild it with keras.Input and layer calls."
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"Argument `{argument}`: tfopt.optimize takes a model with one input and one "
            f"output (a classifier). Received: {argument} {model.name!r} with "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs."
        )
    shape = tuple(model.outputs[0].shape)
    if len(shape) != 2 or shape[-1] is None or shape[-1] < 2:
        raise ValueError(
            f"Argument `{argument}`: tfopt.optimize trains classifiers, whose output is "
            f"(batch, classes) with classes >= 2 (accuracy is the measure of every artifact). "
            f"Received: {argument} {model.name!r} with output shape {shape}."
        )


_SAFE_MODE_HINT = (
    " The model holds Python code (a Lambda layer's function) that Keras's safe mode "
    "refuses to rebuild from its config, which tfopt.optimize does to train a copy (and "
    "pruning and QAT to rewrite it). If you trust the model, pass safe_mode=False "
    "(`--unsafe` on the command line)."
)


def _refused_by_safe_mode(err: Exception) -> bool:
    text = str(err)
    return "safe_mode" in text or "unsafe_deserialization" in text


def copy_model(model):
    """A new model of the same graph and weights, sharing no variables with `model`."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _check_copy(model) -> keras.Model:
    """The copy of `model` the stages train (the caller's model is never trained)."""
    try:
        return copy_model(model)
    except Exception as err:
        if _refused_by_safe_mode(err):
            raise ValueError(
                f"Argument `model` {model.name!r} cannot be copied.{_SAFE_MODE_HINT}"
            ) from err
        raise ValueError(
            f"Argument `model` {model.name!r} cannot be copied with keras.models.clone_model "
            f"(tfopt.optimize trains a copy): {type(err).__name__}: {err}"
        ) from err


def _check_split(data, argument: str, model) -> tuple[np.ndarray, np.ndarray]:
    split = "train" if argument == "train_data" else "val"
    xn, yn = f"x_{split}", f"y_{split}"
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            f"Argument `{argument}` must be a pair ({xn}, {yn}) of numpy arrays. "
            f"Received: {argument} of type {type(data).__name__}"
            + (f" with {len(data)} items" if isinstance(data, (tuple, list)) else "")
        )
    x, y = (np.asarray(a) if not isinstance(a, np.ndarray) else a for a in data)
    for name, a in ((xn, x), (yn, y)):
        if a.dtype.kind not in "biuf" or a.ndim == 0:
            raise TypeError(
                f"Argument `{argument}`: {name} must be a numeric array with a sample axis. "
                f"Received: {name} of dtype {a.dtype} and shape {a.shape}"
            )
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(
            f"Argument `{argument}`: {xn} and {yn} must hold the same number (>= 1) of samples. "
            f"Received: {xn} of shape {x.shape}, {yn} of shape {y.shape}"
        )
    expected = tuple(model.inputs[0].shape)[1:]
    got = tuple(x.shape[1:])
    if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
        shown = tuple("any" if d is None else d for d in expected)
        raise ValueError(
            f"Argument `{argument}`: {xn} samples have shape {got}, the model "
            f"{model.name!r} takes {shown} (its input shape without the batch axis). "
            f"Received: {xn} of shape {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"Argument `{argument}`: {xn} holds NaN or infinite values.")
    return x, y


def _check_labels(y, argument: str, num_classes: int) -> tuple[np.ndarray, bool]:
    """The labels as int32 class ids or float32 rows, and whether they are ids."""
    name = "y_train" if argument == "train_data" else "y_val"
    fits = (
        f"class ids 0..{num_classes - 1} of shape (n,), or one-hot rows of shape "
        f"(n, {num_classes}), fit"
    )
    if y.ndim == 2 and y.shape[1] == 1 and num_classes != 1:
        y = y[:, 0]
    if y.ndim == 1:
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(
                f"Argument `{argument}`: {name} must hold whole class ids ({fits}). "
                f"Received: {name} of dtype {y.dtype} with non-integer values"
            )
        low, high = (int(y.min()), int(y.max()))
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"Argument `{argument}`: {name} holds class ids in [{low}, {high}], but the "
                f"model has {num_classes} output units ({fits}). Received: {name} of shape "
                f"{y.shape} with values in [{low}, {high}]"
            )
        return y.astype(np.int32), True
    if y.ndim == 2:
        if y.shape[1] != num_classes:
            raise ValueError(
                f"Argument `{argument}`: {name} rows have {y.shape[1]} columns, but the model "
                f"has {num_classes} output units ({fits}). Received: {name} of shape {y.shape}"
            )
        sums = y.sum(axis=1)
        if np.any(y < 0) or np.any(y > 1) or not np.allclose(sums, 1.0, atol=1e-3):
            raise ValueError(
                f"Argument `{argument}`: {name} rows must be one-hot (or class probabilities "
                f"summing to 1). Received: {name} with values in [{y.min():g}, {y.max():g}] "
                f"and row sums in [{sums.min():g}, {sums.max():g}]"
            )
        return y.astype(np.float32), False
    raise ValueError(f"Argument `{argument}`: {name} has shape {y.shape}; {fits}.")


def _outputs_probabilities(model, x: np.ndarray) -> bool:
    """True when the model's outputs on `x` are probability rows (>= 0, summing to 1)."""
    out = keras.ops.convert_to_numpy(model(x[:64], training=False)).astype(np.float64)
    return bool(np.all(out >= 0) and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3))


def _check_not_independent_probabilities(model, x: np.ndarray) -> None:
    """Refuses outputs that are per-class probabilities that do not sum to 1 (a sigmoid):
    the classification loss would read them as logits and train the wrong thing."""
    history = getattr(model.outputs[0], "_keras_history", None)
    layer = history.operation if history else None
    name = getattr(getattr(layer, "activation", None), "__name__", "")
    out = keras.ops.convert_to_numpy(model(x[:64], training=False)).astype(np.float64)
    bounded = bool(out.size and np.all(out >= 0) and np.all(out <= 1))
    sigmoid = name in ("sigmoid", "hard_sigmoid")
    if sigmoid or (bounded and out.shape[-1] > 1):
        what = (
            f"its output layer {layer.name!r} ends in {name}"
            if sigmoid
            else "its outputs are all in [0, 1] without summing to 1"
        )
        raise ValueError(
            f"Argument `model`: {what}: per-class probabilities of a multi-label model, "
            "which the single-label classification loss of tfopt.optimize would read as "
            "logits. Give the model a softmax output or logits (no activation on the last "
            "layer); if its outputs are logits after all, set the recipe's from_logits=True."
        )


def check_classifier_data(model, data, argument: str = "val_data"):
    """`(x, y)` of labelled data checked against a single-label classifier, as
    `tfopt.optimize` checks its own (`tfopt inspect --sensitivity` uses it).

    Returns:
        `(x, y)`: y as int32 class ids or float32 one-hot rows.

    Raises:
        TypeError, ValueError: the model is no classifier (one output of >= 2 units,
            softmax or logits), or the data does not fit it; named by `argument`.
    """
    _check_model(model, "model")
    x, y = _check_split(data, argument, model)
    y, _ = _check_labels(y, argument, int(model.outputs[0].shape[-1]))
    if not _outputs_probabilities(model, x):
        _check_not_independent_probabilities(model, x)
    return x, y


def _load_teacher(path: str, safe_mode: bool) -> keras.Model:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Stage 'distill': Argument `teacher`: no such file: '{path}'")
    from tfopt import distillation, pruning, quantization  # noqa: F401  (registers classes)

    try:
        return keras.saving.load_model(path, safe_mode=safe_mode)
    except Exception as err:
        text = str(err)
        if safe_mode and ("safe_mode" in text or "unsafe_deserialization" in text):
            raise ValueError(
                f"Stage 'distill': Argument `teacher`: '{path}' holds Python code (e.g. a "
                "Lambda layer's function), which Keras's safe mode refuses to load. If you "
                "trust the file, pass safe_mode=False (`--unsafe` on the command line)."
            ) from err
        raise ValueError(
            f"Stage 'distill': Argument `teacher`: '{path}' does not load as a Keras model: "
            f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
        ) from err


def _check_teacher(recipe: Recipe, teacher, model, x_val, model_probs, from_logits, safe_mode):
    stage = recipe.stage("distill")
    if stage is None:
        if teacher is not None:
            raise ValueError(
                "Argument `teacher` is given but the recipe has no 'distill' stage to use it. "
                "Add DistillStage(...) first in the recipe, or leave teacher=None."
            )
        return None
    if teacher is not None and stage.teacher is not None:
        given = (
            f"'{os.fspath(teacher)}'"
            if isinstance(teacher, (str, os.PathLike))
            else f"model {getattr(teacher, 'name', type(teacher).__name__)!r}"
        )
        raise ValueError(
            f"Stage 'distill': the teacher is given twice: {given} as the call's teacher "
            f"argument and '{stage.teacher}' in the stage. Give one."
        )
    if teacher is None and stage.teacher is None:
        raise ValueError(
            "Stage 'distill' needs a teacher: a trained model (or .keras path) as the call's "
            "teacher argument, or a .keras path as the stage's teacher (on the command line: "
            "--teacher T.keras)."
        )
    if teacher is None:
        teacher = _load_teacher(stage.teacher, safe_mode)
    elif isinstance(teacher, (str, os.PathLike)):
        teacher = _load_teacher(os.fspath(teacher), safe_mode)
    if not isinstance(teacher, keras.Model):
        raise TypeError(
            "Argument `teacher` must be a Keras 3 keras.Model or the path of a .keras file. "
            f"Received: teacher of type {type(teacher).__name__}"
        )
    if len(teacher.inputs or ()) > 1 or len(teacher.outputs or ()) > 1:
        raise ValueError(
            f"Stage 'distill': the teacher must have one input and one output. Received: "
            f"teacher {teacher.name!r} with {len(teacher.inputs)} inputs and "
            f"{len(teacher.outputs)} outputs."
        )
    t_shape = tuple(teacher.outputs[0].shape) if teacher.outputs else None
    m_shape = tuple(model.outputs[0].shape)
    if t_shape is not None and (
        len(t_shape) != len(m_shape)
        or any(a is not None and b is not None and a != b for a, b in zip(t_shape, m_shape))
    ):
        raise ValueError(
            f"Stage 'distill': the teacher's output shape {t_shape} differs from the model's "
            f"{m_shape}; the distillation losses compare them element by element. Use a "
            f"teacher with the model's {m_shape[-1]} output units. Received: teacher "
            f"{teacher.name!r}"
        )
    t_in = tuple(teacher.inputs[0].shape)[1:] if teacher.inputs else None
    got = tuple(x_val.shape[1:])
    if t_in is not None and (
        len(t_in) != len(got) or any(e is not None and e != g for e, g in zip(t_in, got))
    ):
        raise ValueError(
            f"Stage 'distill': the teacher {teacher.name!r} takes inputs of shape {t_in}, the "
            f"data has samples of shape {got}."
        )
    if stage.loss in ("soft", "mse") and from_logits is None:
        teacher_probs = _outputs_probabilities(teacher, x_val)
        if teacher_probs != model_probs:
            kinds = {True: "probabilities", False: "logits"}
            raise ValueError(
                f"Stage 'distill': the teacher outputs {kinds[teacher_probs]}, the model "
                f"{kinds[model_probs]}; loss={stage.loss!r} compares them as one kind. Use "
                "loss='hard' (the teacher's argmax as labels), or models whose last layers "
                "agree."
            )
    return teacher


def _prune_schedule(stage: PruneStage, steps: int):
    """The tfopt.pruning schedule of the stage, its steps fitted to the stage's `steps`."""
    from tfopt import pruning

    begin = stage.begin_step
    if begin >= steps:
        raise ValueError(
            f"Stage 'prune': Argument `begin_step` must be below the stage's {steps} training "
            f"steps (epochs x steps per epoch), or nothing is pruned. Received: "
            f"begin_step={begin}"
        )
    end = stage.end_step
    if end is None:
        end = max(begin + 1, begin + round((steps - 1 - begin) * 2 / 3))
    elif end > steps - 1:
        raise ValueError(
            f"Stage 'prune': Argument `end_step` must be at most {steps - 1}, the stage's last "
            f"training step ({steps} steps: epochs x steps per epoch), or the final sparsity "
            f"is never reached. Received: end_step={end}"
        )
    frequency = stage.frequency or max(1, (end - begin) // 10)
    if stage.end_step is None:  # land a pruning step on `end` itself
        end = begin + max(1, (end - begin) // frequency) * frequency
    if stage.schedule == "polynomial":
        return pruning.PolynomialDecay(0.0, stage.sparsity, begin, end, frequency=frequency)
    return pruning.ConstantSparsity(stage.target_sparsity, begin, end, frequency=frequency)


def _dry_run_prune(stage: PruneStage, model, schedule) -> None:
    from tfopt import pruning

    try:
        pruning.prune_low_magnitude(
            model,
            schedule,
            sparsity_m_by_n=stage.sparsity_m_by_n,
            leave_dense=list(stage.leave_dense),
        )
    except (ValueError, TypeError) as err:
        text = str(err)
        if _refused_by_safe_mode(err):
            text = f"{text.splitlines()[0]}{_SAFE_MODE_HINT}"
        if "leave_dense=" in text and stage.sparsity_m_by_n:
            names = sorted(set(_quoted_layer_names(text)))
            text += (
                f". In the recipe: PruneStage(leave_dense={names}) (a recipe file: "
                f"leave_dense: [{', '.join(names)}]; the command line: --leave-dense "
                f"{','.join(names)})"
            )
        raise type(err)(f"Stage 'prune': {text}") from err


def _quoted_layer_names(text: str) -> list[str]:
    import re

    return re.findall(r"layer '([^']+)'", text)


def _dry_run_qat(stage: QATStage, model, preserve: bool) -> None:
    from tfopt import quantization

    try:
        quantization.quantize_model(model, config=stage.config, preserve_sparsity=preserve)
    except (ValueError, TypeError) as err:
        if _refused_by_safe_mode(err):
            raise type(err)(f"Stage 'qat': {str(err).splitlines()[0]}{_SAFE_MODE_HINT}") from err
        raise stage_error("qat", err) from err


# The names of the files a run writes (stage models, exports, reports, plots).
_RUN_FILES = re.compile(
    r"(baseline|teacher|distill|prune|qat|ptq)\.keras|(baseline|optimized)\.(tflite|onnx)"
    r"|report\.(json|md)|(accuracy-vs-size|accuracy-vs-latency|sparsity-schedule"
    r"|layer-sparsity|quantization-error)\.png"
)


def _check_out_dir(out_dir, overwrite=False) -> Path:
    """The output directory, created if needed.

    A directory that holds files is refused: a run would overwrite some of them
    and leave others from an earlier run beside its own. With `overwrite`, the
    files an earlier run wrote there (by their names) are removed first; other
    files stay.
    """
    if not isinstance(out_dir, (str, os.PathLike)) or not os.fspath(out_dir):
        raise TypeError(
            f"Argument `out_dir` must be a directory path. Received: out_dir={out_dir!r}"
        )
    if not isinstance(overwrite, bool):
        raise TypeError(f"Argument `overwrite` must be a bool. Received: overwrite={overwrite!r}")
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"Argument `out_dir` names a file, not a directory: '{path}'")
    held = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if held and not overwrite:
        shown = ", ".join(held[:6]) + (" ..." if len(held) > 6 else "")
        raise FileExistsError(
            f"Argument `out_dir`: '{path}' already holds {len(held)} file(s) ({shown}); "
            "a run would overwrite some and leave the rest beside its own. Choose a new or "
            "empty directory, or pass overwrite=True (on the command line: --overwrite) to "
            "replace the files of an earlier run there (other files are kept)."
        )
    for name in held:
        if _RUN_FILES.fullmatch(name) and (path / name).is_file():
            (path / name).unlink()
    path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK):
        raise PermissionError(f"Argument `out_dir`: cannot write to '{path}'")
    return path


def preflight(
    model,
    train_data,
    val_data,
    recipe: Recipe,
    teacher,
    out_dir,
    safe_mode,
    log_dir=None,
    overwrite=False,
) -> Plan:
    """Checks everything that can be checked before training; returns the `Plan`.

    Raises:
        TypeError, ValueError, FileNotFoundError, PermissionError: named by
            argument (and stage), before any training.
    """
    _check_model(model, "model")
    x_train, y_train = _check_split(train_data, "train_data", model)
    x_val, y_val = _check_split(val_data, "val_data", model)
    num_classes = int(model.outputs[0].shape[-1])
    y_train, sparse_train = _check_labels(y_train, "train_data", num_classes)
    y_val, sparse_val = _check_labels(y_val, "val_data", num_classes)
    if sparse_train != sparse_val:
        kinds = {True: "class ids", False: "one-hot rows"}
        raise ValueError(
            f"Arguments `train_data` and `val_data` label differently: y_train holds "
            f"{kinds[sparse_train]}, y_val {kinds[sparse_val]}. Use one kind for both."
        )
    model_probs = _outputs_probabilities(model, x_val)
    if not model_probs and recipe.from_logits is None:
        _check_not_independent_probabilities(model, x_val)
    from_logits = recipe.from_logits if recipe.from_logits is not None else not model_probs
    teacher = _check_teacher(
        recipe, teacher, model, x_val, model_probs, recipe.from_logits, safe_mode
    )
    steps = {}
    for stage in recipe.stages:
        if isinstance(stage, TrainingStage):
            optimizer(stage)  # the name is one Keras knows
            steps[stage.kind] = stage.epochs * math.ceil(len(x_train) / stage.batch_size)
    plan = Plan(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        val_ids=y_val if sparse_val else np.argmax(y_val, axis=1).astype(np.int32),
        num_classes=num_classes,
        sparse_labels=sparse_train,
        from_logits=from_logits,
        teacher=teacher,
        model=_check_copy(model),
        out_dir=Path(out_dir),
        steps=steps,
    )
    prune = recipe.stage("prune")
    if prune is not None:
        plan.prune_schedule = _prune_schedule(prune, steps["prune"])
        _dry_run_prune(prune, model, plan.prune_schedule)
    qat = recipe.stage("qat")
    if qat is not None:
        plan.preserve_sparsity = (
            qat.preserve_sparsity if qat.preserve_sparsity is not None else prune is not None
        )
        _dry_run_qat(qat, model, plan.preserve_sparsity)
    export = recipe.stage("export")
    if export is not None and "onnx" in export.formats and not importlib.util.find_spec("tf2onnx"):
        raise ImportError(
            "Stage 'export': formats=['onnx'] needs tf2onnx, onnx and onnxruntime: "
            "`pip install tf2onnx onnx onnxruntime` (tfopt's own install brings them)."
        )
    ptq = recipe.stage("ptq")
    if ptq is not None and ptq.mode in ("int8", "int16x8"):
        calibration = min(ptq.calibration_samples, len(x_train))
        if calibration < 1:
            raise ValueError("Stage 'ptq': no training samples to calibrate on.")
    if log_dir is not None:
        if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
            raise TypeError(
                "Argument `log_dir` must be None or a directory path. "
                f"Received: log_dir={log_dir!r}"
            )
        plan.log_dir = Path(log_dir)
    plan.out_dir = _check_out_dir(out_dir, overwrite)
    return plan
