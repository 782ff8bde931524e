"""Coverage: the models users bring, through QAT to int8 TFLite and QDQ ONNX files.

For each model of `models.models(quick)`, on each side (tfopt on Keras 3, tfmot on a
tf_keras twin), `measure.measure` runs: build (seeded, keras.applications with
`weights=None`), a short float training (applications: eager steps, then their
BatchNormalization statistics from one batch; small models: epochs), `quantize_model`,
QAT steps or epochs, an int8 .tflite and a QDQ .onnx file, each with its op census and
its parity against the QAT model, and the runtime's agreement with itself on that file.
Budgets: `budget.FULL` / `budget.QUICK`. Every failure is recorded in the row as the
exception type and first line of its message, and the later stages are not reached.
The models run in a child process per side (`isolation`), so a converter that aborts
the process costs one model, not the side.
"""

from __future__ import annotations

from benchmarks.coverage import budget, isolation, models

TITLE = "Coverage: keras.applications, transformers and sequence models to int8 files"


def _run(side: str, quick: bool) -> list[dict]:
    names = [spec.name for spec in models.models(quick)]
    timeout = budget.budget(quick).model_timeout_s
    return isolation.run_models(side, names, quick, timeout)


def run_tfopt(quick: bool) -> list[dict]:
    return _run("tfopt", quick)


def run_tfmot(quick: bool) -> list[dict]:
    return _run("tfmot", quick)
