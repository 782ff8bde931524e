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


def _rows(rows: list[dict], kind: str) -> list[dict]:
    return [r for r in rows if r.get("kind") == kind]


def _range(row: dict) -> str:
    low, high = row.get("keras_acc_min"), row.get("keras_acc_max")
    if low is None or high is None:
        return "—"
    return f"{100 * low:.1f}–{100 * high:.1f}%"


def render(tfopt_rows: list[dict], tfmot_rows: list[dict]) -> str:
    sides = {"tfopt": tfopt_rows, "tfmot": tfmot_rows}
    accuracy = []
    for side, rows in sides.items():
        for r in _rows(rows, "float"):
            accuracy.append({"side": side, "target": "float", **r, "range": _range(r)})
    for target in SPARSITIES:
        for side, rows in sides.items():
            for r in _rows(rows, "accuracy"):
                if r.get("sparsity") == target:
                    accuracy.append(
                        {"side": side, "target": f"{target:.0%}", **r, "range": _range(r)}
                    )
    sizes = []
    for side, rows in sides.items():
        for r in _rows(rows, "tflite"):
            label = "float" if not r.get("sparsity") else f"{r['sparsity']:.0%}"
            sizes.append({"side": side, "target": label, **r})
    sizes.sort(key=lambda r: (r.get("sparsity", 0), r.get("encoding", ""), r["side"]))
    speed = [{"side": side, **r} for side, rows in sides.items() for r in _rows(rows, "speed")]
    first = next(iter(_rows(tfopt_rows, "accuracy") or _rows(tfmot_rows, "accuracy")), {})
    seeds = next(iter(_rows(tfopt_rows, "float") or _rows(tfmot_rows, "float")), {})
    parts = [
        f"Same CNN, data, seeds ({common.fmt(seeds.get('seeds'))}), float training "
        f"({common.fmt(seeds.get('epochs'))} epochs) and fine-tune budget "
        f"({common.fmt(first.get('fine_tune_epochs'))} epochs, PolynomialDecay 0 -> target over "
        "the first half, pruning 4 times per epoch) on both sides. Keras test accuracy of the "
        "pruning model, mean (and range) over seeds; sparsity is of all kernels after "
        "strip_pruning.",
        "",
        common.markdown_table(
            accuracy,
            [
                ("target", "Target", ""),
                ("side", "Side", ""),
                ("keras_acc", "Test acc", "pct"),
                ("range", "Range", ""),
                ("achieved_sparsity", "Kernel sparsity", "pct"),
            ],
        ),
        "",
        "TFLite files of the stripped models (first seed), without and with TFLite's sparse "
        "weight encoding (Optimize.EXPERIMENTAL_SPARSITY); accuracy of the file in LiteRT:",
        "",
        common.markdown_table(
            sizes,
            [
                ("target", "Sparsity", ""),
                ("encoding", "Encoding", ""),
                ("side", "Side", ""),
                ("bytes", "Size", "kb"),
                ("gzip_bytes", "gzip", "kb"),
                ("tflite_acc", "TFLite acc", "pct"),
            ],
        ),
        "",
        "Training time of the pruning model (80% target) relative to the float model, "
        "interleaved one-epoch rounds in one process (goal: <= 1.10). Wall-clock ratios "
        "of the fastest rounds and the median round, and the ratio of median CPU seconds "
        "(process time, the figure least disturbed by other load on a shared machine):",
        "",
        common.markdown_table(
            speed,
            [
                ("side", "Side", ""),
                ("rounds", "Rounds", ""),
                ("float_epoch_s", "Float epoch s (fastest)", ".3f"),
                ("pruned_epoch_s", "Pruning epoch s (fastest)", ".3f"),
                ("ratio_fastest", "Ratio (fastest)", "x"),
                ("ratio_median", "Ratio (median round)", "x"),
                ("cpu_ratio", "CPU-time ratio (median)", "x"),
                ("peak_rss_mb", "Peak RSS MiB", ".0f"),
            ],
        ),
        "",
        "- Both sides count steps the tfmot way (the first batch is step 1) and rank weights "
        "the same way; on the same weights tfopt's masks select the same positions as "
        "tfmot's (tests/pruning/test_digits.py).",
        "- tfopt keeps pruned weights at exactly zero after every optimizer update (a "
        "variable constraint); tfmot re-applies the mask before each forward pass and at "
        "epoch end.",
        "- Accuracy gaps between the sides also include Keras 3 and tf_keras drawing "
        "different initial weights from the same seed; compare within a row's range.",
    ]
    return "\n".join(parts)
