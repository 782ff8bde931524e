"""What `tfopt.optimize` hands back: each stage's model and metrics, each file, a table."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tfopt.pipeline.recipe import Recipe
from tfopt.report.table import render_table

TABLE_HEADERS = (
    "artifact",
    "kind",
    "quantization",
    "val accuracy",
    "val loss",
    "bytes",
    "gzip bytes",
    "sparsity",
    "latency ms",
    "max abs error",
    "top-1 agreement",
)


@dataclasses.dataclass
class StageResult:
    """One model along the run: the baseline, the teacher, or a stage's output.

    Attributes:
        name: "baseline" (the model as it came in), "teacher", or the stage's
            kind ("distill", "prune", "qat", "ptq").
        model: the Keras model (for "prune", stripped of its wrappers; for
            "ptq", the float model the TFLite file was quantized from).
        metrics: `{"val_accuracy", "val_loss"}` on the validation data (for
            "ptq", of its TFLite file), plus the last epoch's training figures
            (`"loss"`, `"accuracy"`) for a training stage.
        sparsity: share of exact zeros among the prunable weights, in [0, 1].
        seconds: wall time of the stage (0 for baseline and teacher).
        path: the saved `.keras` file in the output directory (None for "ptq").
        bytes: its size.
        gzip_bytes: its size after gzip -9.
        history: Keras's `History.history` of the stage's fit (empty if none).
        stage: the recipe's stage object (None for baseline and teacher).
    """

    name: str
    model: Any
    metrics: dict
    sparsity: float
    seconds: float = 0.0
    path: str | None = None
    bytes: int | None = None
    gzip_bytes: int | None = None
    history: dict = dataclasses.field(default_factory=dict)
    stage: Any = None

    def to_dict(self) -> dict:
        """The figures as JSON-able data (the model is named, not included)."""
        return {
            "name": self.name,
            "model": getattr(self.model, "name", None),
            "metrics": dict(self.metrics),
            "sparsity": self.sparsity,
            "seconds": self.seconds,
            "path": self.path,
            "bytes": self.bytes,
            "gzip_bytes": self.gzip_bytes,
            "history": {k: [float(v) for v in vs] for k, vs in self.history.items()},
        }


@dataclasses.dataclass
class ExportedFile:
    """A verified file written by the export stage, with its accuracy and latency.

    Attributes:
        name: the file's name in the output directory (e.g. "optimized.tflite").
        source: the model it was exported from: "baseline" or the last stage's
            name.
        result: the exporter's `tfopt.export.ExportResult` (path, format,
            quantization, bytes, gzip bytes, parity against its Keras model).
        latency: the `tfopt.export.LatencyResult` (median ms per batch-1 run).
        accuracy: the file's accuracy on the validation data, run in its runtime.
        loss: the training loss of the file's outputs on the validation data.
        sparsity: the sparsity of the model it was exported from.
    """

    name: str
    source: str
    result: Any
    latency: Any
    accuracy: float
    loss: float
    sparsity: float

    def to_dict(self) -> dict:
        """The figures as JSON-able data."""
        return {
            "name": self.name,
            "source": self.source,
            "accuracy": self.accuracy,
            "loss": self.loss,
            "sparsity": self.sparsity,
            "export": self.result.as_dict(),
            "latency": self.latency.as_dict(),
        }


@dataclasses.dataclass
class OptimizeResult:
    """The outcome of `tfopt.optimize`: every model and file of the run, with figures.

    Attributes:
        recipe: the `Recipe` that ran.
        out_dir: the output directory (models, files, reports, plots).
        baseline: the model as it came in, evaluated.
        teacher: the distillation teacher, evaluated (None without "distill").
        stages: one `StageResult` per stage of the recipe except "export", in order.
        exports: one `ExportedFile` per file written.
        figures: plot name -> PNG path.
        notes: what the run decided on the caller's behalf (e.g. the loss).
    """

    recipe: Recipe
    out_dir: str
    baseline: StageResult
    teacher: StageResult | None
    stages: list[StageResult]
    exports: list[ExportedFile]
    figures: dict = dataclasses.field(default_factory=dict)
    notes: list = dataclasses.field(default_factory=list)

    @property
    def model(self):
        """The final Keras model: the last stage's, else the baseline."""
        return self.stages[-1].model if self.stages else self.baseline.model

    def __getitem__(self, name: str) -> StageResult:
        """The `StageResult` of a stage kind, or "baseline" / "teacher"."""
        for r in [self.baseline, self.teacher, *self.stages]:
            if r is not None and r.name == name:
                return r
        known = [r.name for r in [self.baseline, self.teacher, *self.stages] if r is not None]
        raise KeyError(f"No stage {name!r} in this result; it has {known}.")

    def artifacts(self) -> list[dict]:
        """One flat row per artifact: baseline, teacher, each stage's model, each file.

        Keys: name, kind ("keras", "tflite", "onnx"), quantization, accuracy,
        loss, size_bytes, gzip_bytes, sparsity, latency_ms (None for Keras
        models: latency is measured on exported files), max_abs_error and
        top1_agreement (parity of a file against its Keras model; None for
        Keras models).
        """
        rows = []
        for r in [self.baseline, self.teacher, *self.stages]:
            if r is None or r.path is None:
                continue
            rows.append(
                {
                    "name": Path(r.path).name,
                    "kind": "keras",
                    "quantization": "fake-quant" if r.name == "qat" else "float32",
                    "accuracy": r.metrics.get("val_accuracy"),
                    "loss": r.metrics.get("val_loss"),
                    "size_bytes": r.bytes,
                    "gzip_bytes": r.gzip_bytes,
                    "sparsity": r.sparsity,
                    "latency_ms": None,
                    "max_abs_error": None,
                    "top1_agreement": None,
                }
            )
        for f in self.exports:
            rows.append(
                {
                    "name": f.name,
                    "kind": f.result.format,
                    "quantization": f.result.quantization,
                    "accuracy": f.accuracy,
                    "loss": f.loss,
                    "size_bytes": f.result.bytes,
                    "gzip_bytes": f.result.gzip_bytes,
                    "sparsity": f.sparsity,
                    "latency_ms": f.latency.median_ms,
                    "max_abs_error": f.result.parity.max_abs_error,
                    "top1_agreement": f.result.parity.top1_agreement,
                }
            )
        return rows

    def to_dict(self) -> dict:
        """The whole run as JSON-able data: recipe, artifacts, stages, exports, figures."""
        return {
            "recipe": self.recipe.to_dict(),
            "out_dir": self.out_dir,
            "artifacts": self.artifacts(),
            "baseline": self.baseline.to_dict(),
            "teacher": None if self.teacher is None else self.teacher.to_dict(),
            "stages": [s.to_dict() for s in self.stages],
            "exports": [f.to_dict() for f in self.exports],
            "figures": dict(self.figures),
            "notes": list(self.notes),
        }

    def table(self, markdown: bool = False) -> str:
        """The artifacts as an aligned text table (or a Markdown table).

        Args:
            markdown: a GitHub-flavoured Markdown table. Defaults to `False`.

        Returns:
            The table, one row per artifact (no trailing newline).
        """
        rows = []
        for a in self.artifacts():
            rows.append(
                [
                    a["name"],
                    a["kind"],
                    a["quantization"],
                    _round(a["accuracy"]),
                    _round(a["loss"]),
                    a["size_bytes"],
                    a["gzip_bytes"],
                    _round(a["sparsity"]),
                    _round(a["latency_ms"]),
                    a["max_abs_error"],
                    _round(a["top1_agreement"]),
                ]
            )
        return render_table(TABLE_HEADERS, rows, markdown=markdown)

    def __str__(self) -> str:
        return self.table()


def _round(value, digits: int = 4):
    return None if value is None else round(float(value), digits)
