"""ResNet50 at scale (tfopt side): QAT and pruning, a few training steps and an export.

Four stages, each in a child process of its own (`isolation`), so that each has its own
peak RSS; the trained model passes from one to the next as a .keras file:

- QAT train: build (seeded, `weights=None`; BatchNormalization statistics from one
  batch, as the coverage suite does), `tfopt.quantization.quantize_model`, compiled
  `fit` for `budget.resnet_steps` steps, save.
- QAT export: load, `tfopt.export.to_tflite` to an int8 file (`parity_bar=False`: a
  few steps from random weights need not reach the default bar; the parity figures
  are reported as the exporter measured them).
- pruning train: build, `prune_low_magnitude` (PolynomialDecay 0 -> 80% over the
  steps, a mask update every step), compiled `fit` with `UpdatePruningStep`,
  `strip_pruning`, save.
- pruning export: load, `to_tflite` to a float32 file (its default parity bar).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks import common
from benchmarks.coverage.measure import set_batchnorm_statistics
from benchmarks.scale import data, exported, isolation, sides
from benchmarks.scale.budget import ModelSpec

FINAL_SPARSITY = 0.8


def _built(keras, size: int, batch: int):
    model = sides.build(keras, ModelSpec("ResNet50", size))
    set_batchnorm_statistics(model, data.images(batch, size, 99), keras.layers.BatchNormalization)
    return model


def _fit(row, model, keras, size, batch, steps, callbacks=()):
    common.compile_cnn(model, keras)
    train = data.training_set(steps * batch, size)
    history, row["train_s"] = common.timed(
        model.fit,
        train.x_train,
        train.y_train,
        batch_size=batch,
        callbacks=list(callbacks),
        verbose=0,
    )
    row["train_loss"] = float(history.history["loss"][-1])
    row["train_steps"] = steps


def qat_train(row: dict, size: int, batch: int, steps: int, model_path: str) -> None:
    import keras

    import tfopt

    model = _built(keras, size, batch)
    row["params"] = int(model.count_params())
    qat, row["quantize_s"] = common.timed(tfopt.quantization.quantize_model, model)
    _fit(row, qat, keras, size, batch, steps)
    qat.save(model_path)


def prune_train(row: dict, size: int, batch: int, steps: int, model_path: str) -> None:
    import keras

    import tfopt

    pruning = tfopt.pruning
    model = _built(keras, size, batch)
    row["params"] = int(model.count_params())
    schedule = pruning.PolynomialDecay(0.0, FINAL_SPARSITY, 0, steps, frequency=1)
    pruned = pruning.prune_low_magnitude(model, pruning_schedule=schedule)
    _fit(row, pruned, keras, size, batch, steps, [pruning.UpdatePruningStep()])
    stripped, row["strip_s"] = common.timed(pruning.strip_pruning, pruned)
    row["sparsity"] = pruning.sparsity_report(stripped).total_sparsity
    stripped.save(model_path)


def export(row: dict, model_path: str, out_path: str, size: int, samples: int) -> None:
    """Loads the .keras file and writes `out_path` with `to_tflite` (int8 for a QAT
    model with no parity bar, float32 otherwise with its default bar)."""
    import keras

    import tfopt

    model = keras.saving.load_model(model_path)
    qat = "qat" in Path(model_path).stem
    result = exported.timed_conversion(
        row,
        tfopt.export.to_tflite,
        model,
        out_path,
        verify_data=data.verification(samples, size),
        parity_bar=False if qat else None,
    )
    exported.record_export(row, result)


STAGES = {
    "resnet_qat_train": qat_train,
    "resnet_prune_train": prune_train,
    "resnet_export": export,
}


def run_resnet(plan) -> list[dict]:
    """The four stage rows (tfopt side); [] when `plan.resnet` is None (--quick)."""
    if plan.resnet is None:
        return []
    size = plan.resnet.size
    base = {"part": "resnet", "side": "tfopt", "model": plan.resnet.label}
    rows = []
    with tempfile.TemporaryDirectory(prefix="tfopt-scale-resnet-") as tmp:
        for kind, label in (("qat", "QAT"), ("prune", "pruning")):
            model_path = str(Path(tmp) / f"resnet50_{kind}.keras")
            train = {"size": size, "batch": plan.resnet_batch, "steps": plan.resnet_steps}
            row = isolation.run_stage(
                f"resnet_{kind}_train", {**train, "model_path": model_path}, plan.stage_timeout_s
            )
            rows.append({**base, "stage": f"{label} train", **row})
            if Path(model_path).is_file():
                args = {"model_path": model_path, "size": size, "samples": plan.verify_samples}
                args["out_path"] = str(Path(tmp) / f"resnet50_{kind}.tflite")
                row = isolation.run_stage("resnet_export", args, plan.stage_timeout_s)
            else:
                row = {"error": "not run: the training stage saved no model"}
            rows.append({**base, "stage": f"{label} export", **row})
    return rows
