"""The stages of a `tfopt.optimize` recipe, as plain-data classes validated when built.

Imports neither TensorFlow nor Keras. Each stage checks its own arguments; the
order of stages is the `Recipe`'s to check, and what depends on the model and the
data is checked by `tfopt.optimize` before any training starts.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import ClassVar

from tfopt.pipeline._validate import (
    check_choice,
    check_float,
    check_int,
    check_optional_bool,
    received,
    set_field,
)

# The stages in the one order that loses no work; "qat" and "ptq" share a rank.
ORDER_RANK = {"distill": 0, "prune": 1, "qat": 2, "ptq": 2, "export": 3}
ORDER_TEXT = "distill -> prune -> qat or ptq -> export (each optional, each at most once)"
OPTIMIZERS_HINT = "a Keras optimizer name such as 'adam', 'adamw', 'sgd' or 'rmsprop'"
PTQ_MODES = ("dynamic", "int8", "float16", "int16x8")
QAT_CONFIGS = ("tflite", "tensorrt", "tflite16x8")
FORMATS = ("tflite", "onnx")
DISTILLATION_LOSSES = ("soft", "hard", "mse")
SCHEDULES = ("polynomial", "constant")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingStage:
    """What every training stage has: a budget and an optimizer.

    Args:
        epochs: passes over the training data. Defaults to `3`.
        optimizer: a Keras optimizer name (`keras.optimizers.get`), e.g. "adam",
            "adamw", "sgd". Defaults to `"adam"`.
        learning_rate: the optimizer's learning rate. Defaults to `1e-3`.
        batch_size: samples per training step. Defaults to `32`.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: an argument out of range.
    """

    kind: ClassVar[str] = ""
    epochs: int = 3
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 32

    def __post_init__(self):
        set_field(self, "epochs", check_int("epochs", self.epochs, 1))
        if not isinstance(self.optimizer, str) or not self.optimizer.strip():
            raise TypeError(
                f"Argument `optimizer` must be {OPTIMIZERS_HINT}. "
                f"{received('optimizer', self.optimizer)}"
            )
        if isinstance(self.learning_rate, bool) or not isinstance(
            self.learning_rate, numbers.Real
        ):
            raise TypeError(
                f"Argument `learning_rate` must be a number. "
                f"{received('learning_rate', self.learning_rate)}"
            )
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 10):
            raise ValueError(
                "Argument `learning_rate` must be in (0, 10] (e.g. 1e-3). "
                f"{received('learning_rate', self.learning_rate)}"
            )
        set_field(self, "learning_rate", float(self.learning_rate))
        set_field(self, "batch_size", check_int("batch_size", self.batch_size, 1))


@dataclasses.dataclass(frozen=True, kw_only=True)
class DistillStage(TrainingStage):
    """Trains the model as the student of a frozen teacher (`tfopt.distillation.Distiller`).

    Example:

    ```python
    stage = tfopt.pipeline.DistillStage(epochs=5, temperature=4.0, alpha=0.7)
    ```

    Args:
        teacher: path of the teacher's `.keras` file (loaded with Keras's
            `safe_mode=True`), or None when the teacher is given to
            `tfopt.optimize(..., teacher=model)`. Defaults to `None`.
        loss: the distillation loss: "soft" (KL at `temperature`), "hard" (the
            teacher's argmax as labels) or "mse" (between outputs). Defaults to
            `"soft"`.
        temperature: the soft loss's temperature, in (0, 1e4]. Defaults to `4.0`.
        alpha: weight of the distillation loss against the labels' loss, in
            [0, 1]. Defaults to `0.5`.
        **kwargs: the budget and optimizer of `TrainingStage`.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: an argument out of range.
    """

    kind: ClassVar[str] = "distill"
    teacher: str | None = None
    loss: str = "soft"
    temperature: float = 4.0
    alpha: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        if self.teacher is not None and (not isinstance(self.teacher, str) or not self.teacher):
            raise TypeError(
                "Argument `teacher` must be the path of a .keras file, or None (the teacher "
                f"passed to tfopt.optimize). {received('teacher', self.teacher)}"
            )
        check_choice("loss", self.loss, DISTILLATION_LOSSES)
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, numbers.Real):
            raise TypeError(
                f"Argument `temperature` must be a number. "
                f"{received('temperature', self.temperature)}"
            )
        if not (0 < self.temperature <= 1e4):
            raise ValueError(
                "Argument `temperature` must be in (0, 1e4] (e.g. 4.0). "
                f"{received('temperature', self.temperature)}"
            )
        set_field(self, "temperature", float(self.temperature))
        set_field(self, "alpha", check_float("alpha", self.alpha, 0.0, 1.0))


def _m_by_n(value) -> tuple[int, int] | None:
    """`(m, n)` from a pair or a "m:n" string (recipe files), checked."""
    if value is None:
        return None
    pair = value
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            pair = (int(parts[0]), int(parts[1]))
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in pair)
        or not 0 < pair[0] < pair[1]
    ):
        raise ValueError(
            "Argument `sparsity_m_by_n` must be (m, n) with 0 < m < n, e.g. (2, 4) or "
            f"'2:4' (m zeros in every n weights). {received('sparsity_m_by_n', value)}"
        )
    return int(pair[0]), int(pair[1])


@dataclasses.dataclass(frozen=True, kw_only=True)
class PruneStage(TrainingStage):
    """Prunes by magnitude to a sparsity over the stage, then strips the wrappers.

    Give `sparsity` (unstructured magnitude pruning) or `sparsity_m_by_n` (m
    zeros in every n weights along the input-channel axis), not both. The
    schedule's steps count training steps of this stage from 0; by default
    pruning runs from step 0 to two thirds of the stage's steps, in about ten
    pruning steps, and the rest of the stage fine-tunes with the masks fixed.

    Example:

    ```python
    stage = tfopt.pipeline.PruneStage(sparsity=0.8, epochs=4)
    two_four = tfopt.pipeline.PruneStage(sparsity_m_by_n=(2, 4), leave_dense=["conv2d"])
    ```

    Args:
        sparsity: the final share of zero weights in each pruned layer, in
            [0, 1). Defaults to `None`.
        sparsity_m_by_n: `(m, n)` with 0 < m < n, or "m:n". Defaults to `None`.
        schedule: "polynomial" (`PolynomialDecay` from 0 to `sparsity`) or
            "constant" (`ConstantSparsity`); an m:n pattern takes "constant"
            (its sparsity is m/n; the schedule only says when). Defaults to
            `None` ("polynomial", or "constant" for m:n).
        begin_step: the stage's step at which pruning starts. Defaults to `0`.
        end_step: the step at which the final sparsity is reached (and, for
            "constant", the last pruning step). Defaults to `None` (two thirds
            of the stage's steps).
        frequency: prune every `frequency` steps. Defaults to `None` (a tenth
            of the pruning span, at least 1).
        leave_dense: names of layers to keep dense (e.g. the first convolution
            on a 1-channel input under an m:n pattern). Defaults to `()`.
        **kwargs: the budget and optimizer of `TrainingStage`
            (`learning_rate` defaults to `5e-4` here).

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: an argument out of range, neither or both of `sparsity`
            and `sparsity_m_by_n`, or a "polynomial" schedule with m:n.
    """

    kind: ClassVar[str] = "prune"
    learning_rate: float = 5e-4
    sparsity: float | None = None
    sparsity_m_by_n: tuple[int, int] | None = None
    schedule: str | None = None
    begin_step: int = 0
    end_step: int | None = None
    frequency: int | None = None
    leave_dense: tuple[str, ...] = ()

    def __post_init__(self):
        super().__post_init__()
        m_by_n = _m_by_n(self.sparsity_m_by_n)
        set_field(self, "sparsity_m_by_n", m_by_n)
        if (self.sparsity is None) == (m_by_n is None):
            raise ValueError(
                "PruneStage takes one of `sparsity` (e.g. sparsity=0.8) and `sparsity_m_by_n` "
                f"(e.g. sparsity_m_by_n=(2, 4)). Received: sparsity={self.sparsity!r}, "
                f"sparsity_m_by_n={self.sparsity_m_by_n!r}"
            )
        if self.sparsity is not None:
            set_field(self, "sparsity", check_float("sparsity", self.sparsity, 0.0, 1.0, True))
        if self.schedule is None:
            set_field(self, "schedule", "constant" if m_by_n else "polynomial")
        check_choice("schedule", self.schedule, SCHEDULES)
        if m_by_n and self.schedule != "constant":
            raise ValueError(
                f"Argument `schedule` must be 'constant' with sparsity_m_by_n={m_by_n}: the "
                f"pattern fixes the sparsity at {m_by_n[0]}/{m_by_n[1]}, the schedule only says "
                f"when to prune. {received('schedule', self.schedule)}"
            )
        set_field(self, "begin_step", check_int("begin_step", self.begin_step, 0))
        if self.end_step is not None:
            set_field(self, "end_step", check_int("end_step", self.end_step, self.begin_step + 1))
        if self.frequency is not None:
            set_field(self, "frequency", check_int("frequency", self.frequency, 1))
        leave = self.leave_dense
        if isinstance(leave, str):
            leave = [leave]
        if not isinstance(leave, (list, tuple)) or not all(
            isinstance(n, str) and n for n in leave
        ):
            raise TypeError(
                "Argument `leave_dense` must be a list of layer names. "
                f"{received('leave_dense', self.leave_dense)}"
            )
        set_field(self, "leave_dense", tuple(leave))

    @property
    def target_sparsity(self) -> float:
        """The sparsity the stage ends at: `sparsity`, or m/n for an m:n pattern."""
        if self.sparsity_m_by_n:
            return self.sparsity_m_by_n[0] / self.sparsity_m_by_n[1]
        return self.sparsity


@dataclasses.dataclass(frozen=True, kw_only=True)
class QATStage(TrainingStage):
    """Quantization-aware training (`tfopt.quantization.quantize_model`).

    After a "prune" stage the zeros are kept (`preserve_sparsity=True`).

    Example:

    ```python
    stage = tfopt.pipeline.QATStage(epochs=2, learning_rate=1e-4)
    ```

    Args:
        config: the QAT preset: "tflite" (int8 TFLite and QDQ ONNX), "tensorrt"
            (symmetric, ONNX) or "tflite16x8" (int16 activations, TFLite only).
            Defaults to `"tflite"`.
        preserve_sparsity: keep zero weights at zero. Defaults to `None`
            (True after a "prune" stage, else False); False after "prune" is
            refused, as it would lose the pruning.
        **kwargs: the budget and optimizer of `TrainingStage`
            (`learning_rate` defaults to `1e-4` here).

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: an argument out of range.
    """

    kind: ClassVar[str] = "qat"
    learning_rate: float = 1e-4
    config: str = "tflite"
    preserve_sparsity: bool | None = None

    def __post_init__(self):
        super().__post_init__()
        check_choice("config", self.config, QAT_CONFIGS)
        check_optional_bool("preserve_sparsity", self.preserve_sparsity)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PTQStage:
    """Post-training quantization of the TFLite file (`tfopt.export.to_tflite`).

    Trains nothing: the "tflite" export of the final model is converted in this
    mode, calibrated on training samples for "int8" and "int16x8".

    Example:

    ```python
    stage = tfopt.pipeline.PTQStage(mode="int8")
    ```

    Args:
        mode: "dynamic", "int8", "float16" or "int16x8". Defaults to `"int8"`.
        calibration_samples: training samples used to calibrate "int8" and
            "int16x8". Defaults to `200`.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: an argument out of range.
    """

    kind: ClassVar[str] = "ptq"
    mode: str = "int8"
    calibration_samples: int = 200

    def __post_init__(self):
        check_choice("mode", self.mode, PTQ_MODES)
        set_field(
            self,
            "calibration_samples",
            check_int("calibration_samples", self.calibration_samples, 1),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExportStage:
    """Exports the final model, each file verified against it, and times it.

    Example:

    ```python
    stage = tfopt.pipeline.ExportStage(formats=["tflite", "onnx"], latency_runs=20)
    ```

    Args:
        formats: "tflite" and/or "onnx" (a list, or a comma-separated string).
            Defaults to `("tflite",)`.
        baseline: also export the model as it came in (float), as the
            reference point of the trade-off. Defaults to `True`.
        sparse: TFLite's sparse weight encoding (`to_tflite(sparse=True)`).
            Defaults to `None` (on after a "prune" stage).
        latency_runs: timed single-sample runs per file
            (`tfopt.export.benchmark_latency`). Defaults to `50`.
        num_threads: runtime threads when timing. Defaults to `1`.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: an unknown or repeated format, or a count out of range.
    """

    kind: ClassVar[str] = "export"
    formats: tuple[str, ...] = ("tflite",)
    baseline: bool = True
    sparse: bool | None = None
    latency_runs: int = 50
    num_threads: int = 1

    def __post_init__(self):
        formats = self.formats
        if isinstance(formats, str):
            formats = [f.strip() for f in formats.split(",")]
        if not isinstance(formats, (list, tuple)) or not formats:
            raise ValueError(
                f"Argument `formats` must name one or more of {', '.join(map(repr, FORMATS))}. "
                f"{received('formats', self.formats)}"
            )
        for f in formats:
            check_choice("formats", f, FORMATS)
        if len(set(formats)) != len(formats):
            raise ValueError(
                f"Argument `formats` names a format twice. {received('formats', formats)}"
            )
        set_field(self, "formats", tuple(formats))
        if not isinstance(self.baseline, bool):
            raise TypeError(
                f"Argument `baseline` must be a bool. {received('baseline', self.baseline)}"
            )
        check_optional_bool("sparse", self.sparse)
        set_field(self, "latency_runs", check_int("latency_runs", self.latency_runs, 1))
        set_field(self, "num_threads", check_int("num_threads", self.num_threads, 1))


STAGES: dict[str, type] = {
    cls.kind: cls for cls in (DistillStage, PruneStage, QATStage, PTQStage, ExportStage)
}
Stage = DistillStage | PruneStage | QATStage | PTQStage | ExportStage
