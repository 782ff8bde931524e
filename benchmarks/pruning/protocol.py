"""Pruning: tfopt.pruning (Keras 3) vs tfmot.sparsity.keras (tf_keras), same code shape.

Both sides train the digits CNN of benchmarks/common.py with the same seeds and
budget, then, for each target sparsity, prune a copy of the trained model with
the same `PolynomialDecay` schedule (0 -> target over the first half of the
fine-tune, every `steps_per_epoch // 4` steps), fine-tune it for the same number
of epochs with `UpdatePruningStep`, strip the wrappers and export the result to
TFLite twice: plain, and with TFLite's sparse weight encoding
(`Optimize.EXPERIMENTAL_SPARSITY`; tfopt: `to_tflite(..., sparse=True)`).

The epoch-time ratio pruned/float is measured within each side's process, in
interleaved rounds (one epoch of the float model, one of the 80%-pruning model,
repeated), so load from other processes hits both alike; the fastest round of each
and the median ratio are reported.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks import common

TITLE = "Pruning: tfopt vs tfmot"
SPARSITIES = (0.5, 0.8, 0.9)
FINE_TUNE_EPOCHS = 10
QUICK_FINE_TUNE_EPOCHS = 2
SPEED_ROUNDS = 8
QUICK_SPEED_ROUNDS = 3


def _fine_tune_epochs(quick: bool) -> int:
    return QUICK_FINE_TUNE_EPOCHS if quick else FINE_TUNE_EPOCHS


def _schedule_kwargs(steps_per_epoch: int, epochs: int, target: float) -> dict:
    """The same PolynomialDecay arguments on both sides."""
    end = max(1, (steps_per_epoch * epochs) // 2)
    return {
        "initial_sparsity": 0.0,
        "final_sparsity": target,
        "begin_step": 0,
        "end_step": end,
        "frequency": max(1, steps_per_epoch // 4),
    }


def _copy(keras_module, model):
    clone = keras_module.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _kernel_sparsity(model) -> float:
    sizes = zeros = 0
    for weight in model.weights:
        if "kernel" in weight.name:
            values = np.asarray(weight.numpy())
            sizes += values.size
            zeros += int(np.count_nonzero(values == 0))
    return zeros / sizes if sizes else 0.0


def _speed(keras_module, api, float_model, pruned_model, data, rounds: int) -> dict:
    """Interleaved one-epoch rounds of the float and the pruning model."""
    runs = [("float", float_model, []), ("pruned", pruned_model, [api.UpdatePruningStep()])]
    times = common.interleaved_fits(runs, data, rounds)
    wall = {name: t["wall"] for name, t in times.items()}
    cpu = {name: t["cpu"] for name, t in times.items()}
    return {
        "kind": "speed",
        "rounds": rounds,
        "float_epoch_s": float(min(wall["float"])),
        "pruned_epoch_s": float(min(wall["pruned"])),
        "ratio_fastest": float(min(wall["pruned"]) / min(wall["float"])),
        "ratio_median": float(np.median(np.array(wall["pruned"]) / np.array(wall["float"]))),
        "cpu_ratio": float(np.median(cpu["pruned"]) / np.median(cpu["float"])),
    }


def _run_side(keras_module, api, export, quick: bool) -> list[dict]:
    """One side: `api` is tfopt.pruning or tfmot.sparsity.keras; `export(model, path, sparse)`."""
    data = common.load_data()
    epochs = _fine_tune_epochs(quick)
    steps = int(np.ceil(len(data.x_train) / common.BATCH_SIZE))
    acc = {s: [] for s in SPARSITIES}
    achieved = {s: [] for s in SPARSITIES}
    float_acc, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, seed in enumerate(common.seeds(quick)):
            common.set_seed(keras_module, seed)
            trained = common.build_cnn(keras_module)
            common.compile_cnn(trained, keras_module)
            trained.fit(
                data.x_train,
                data.y_train,
                epochs=common.epochs(quick),
                batch_size=common.BATCH_SIZE,
                verbose=0,
            )
            float_acc.append(common.keras_accuracy(trained, data.x_test, data.y_test))
            if i == 0:
                path = Path(tmp) / "float.tflite"
                export(trained, path, False)
                raw, zipped = common.file_sizes(path)
                file_acc = common.tflite_accuracy(path, data.x_test, data.y_test)
                rows.append(
                    {
                        "kind": "tflite",
                        "sparsity": 0.0,
                        "encoding": "dense",
                        "bytes": raw,
                        "gzip_bytes": zipped,
                        "tflite_acc": file_acc,
                    }
                )
            for target in SPARSITIES:
                common.set_seed(keras_module, seed)
                schedule = api.PolynomialDecay(**_schedule_kwargs(steps, epochs, target))
                pruned = api.prune_low_magnitude(_copy(keras_module, trained), schedule)
                common.compile_cnn(pruned, keras_module)
                pruned.fit(
                    data.x_train,
                    data.y_train,
                    epochs=epochs,
                    batch_size=common.BATCH_SIZE,
                    verbose=0,
                    callbacks=[api.UpdatePruningStep()],
                )
                acc[target].append(common.keras_accuracy(pruned, data.x_test, data.y_test))
                stripped = api.strip_pruning(pruned)
                achieved[target].append(_kernel_sparsity(stripped))
                if i == 0:
                    for sparse in (False, True):
                        path = Path(tmp) / f"pruned_{target}_{sparse}.tflite"
                        export(stripped, path, sparse)
                        raw, zipped = common.file_sizes(path)
                        rows.append(
                            {
                                "kind": "tflite",
                                "sparsity": target,
                                "encoding": "sparse" if sparse else "dense",
                                "bytes": raw,
                                "gzip_bytes": zipped,
                                "tflite_acc": common.tflite_accuracy(
                                    path, data.x_test, data.y_test
                                ),
                            }
                        )
            if i == 0:
                common.set_seed(keras_module, seed)
                schedule = api.PolynomialDecay(**_schedule_kwargs(steps, epochs, 0.8))
                pruned = api.prune_low_magnitude(_copy(keras_module, trained), schedule)
                common.compile_cnn(pruned, keras_module)
                float_copy = _copy(keras_module, trained)
                common.compile_cnn(float_copy, keras_module)
                rounds = QUICK_SPEED_ROUNDS if quick else SPEED_ROUNDS
                speed = _speed(keras_module, api, float_copy, pruned, data, rounds)
    rows.append(
        {
            "kind": "float",
            "seeds": len(float_acc),
            "epochs": common.epochs(quick),
            "keras_acc": float(np.mean(float_acc)),
            "keras_acc_min": float(np.min(float_acc)),
            "keras_acc_max": float(np.max(float_acc)),
        }
    )
    for target in SPARSITIES:
        rows.append(
            {
                "kind": "accuracy",
                "sparsity": target,
                "fine_tune_epochs": epochs,
                "keras_acc": float(np.mean(acc[target])),
                "keras_acc_min": float(np.min(acc[target])),
                "keras_acc_max": float(np.max(acc[target])),
                "achieved_sparsity": float(np.mean(achieved[target])),
            }
        )
    rows.append({**speed, "peak_rss_mb": common.peak_rss_mb()})
    return rows


def run_tfopt(quick: bool) -> list[dict]:
    import keras

    from tfopt import pruning
    from tfopt.export import to_tflite

    def export(model, path, sparse):
        to_tflite(model, path, sparse=sparse)

    return _run_side(keras, pruning, export, quick)


def run_tfmot(quick: bool) -> list[dict]:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    def export(model, path, sparse):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if sparse:
            converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
        Path(path).write_bytes(converter.convert())

    return _run_side(tf_keras, tfmot.sparsity.keras, export, quick)
