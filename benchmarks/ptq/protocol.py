"""Post-training quantization: tfopt.export.to_tflite (Keras 3) vs the TFLite converter (tf_keras).

Both sides train the same digits CNN (benchmarks/common.py) with the same seeds and
budget, then export float32, dynamic-range and full-integer int8 .tflite files
(int8 calibrated on the same 200 training samples, float inputs and outputs). The
tfopt side calls `tfopt.export.to_tflite`, which also verifies each file against
the model; the tfmot side does what a tfmot user does for PTQ on tf_keras:
`tf.lite.TFLiteConverter.from_keras_model`.

Accuracy is averaged over `common.seeds(quick)` trainings; sizes, latency and
conversion times come from the first seed's files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks import common

TITLE = "Post-training quantization: tfopt vs tfmot (TFLite converter on tf_keras)"
VARIANTS = ("float32", "dynamic", "int8")


def _train(keras_module, data, seed: int, quick: bool):
    common.set_seed(keras_module, seed)
    model = common.build_cnn(keras_module)
    common.compile_cnn(model, keras_module)
    timer = common.epoch_times(keras_module)
    model.fit(
        data.x_train,
        data.y_train,
        epochs=common.epochs(quick),
        batch_size=common.BATCH_SIZE,
        callbacks=[timer],
        verbose=0,
    )
    return model, timer


def _run_side(keras_module, export, quick: bool) -> list[dict]:
    """Trains per seed, exports each variant with `export(model, variant, path)`.

    `export` returns a dict of extra figures for the row (conversion time, parity).
    """
    data = common.load_data()
    timers, keras_acc = [], []
    acc = {v: [] for v in VARIANTS}
    first: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for i, seed in enumerate(common.seeds(quick)):
            model, timer = _train(keras_module, data, seed, quick)
            timers.append(timer)
            keras_acc.append(common.keras_accuracy(model, data.x_test, data.y_test))
            for variant in VARIANTS:
                path = Path(tmp) / f"ptq_{variant}_{i}.tflite"
                extra = export(model, variant, path, data)
                if i == 0:
                    paths[variant], first[variant] = path, extra
                acc[variant].append(common.tflite_accuracy(path, data.x_test, data.y_test))
        # Before the LiteRT latency: on the tfmot side it imports tfopt.export, hence
        # Keras 3, into the process.
        peak_rss = common.peak_rss_mb()
        latency = common.interleaved_latency(paths, quick=quick)
        sizes = {v: common.file_sizes(p) for v, p in paths.items()}

    training = {
        "variant": "training",
        "epochs": common.epochs(quick),
        "seeds": len(common.seeds(quick)),
        "keras_test_acc": float(np.mean(keras_acc)),
        "first_epoch_s": timers[0].first_s(),
        "epoch_s": float(np.median([t.steady_s() for t in timers])),
        "fastest_epoch_s": float(min(t.fastest_s() for t in timers)),
        "peak_rss_mb": peak_rss,
    }
    rows = [training]
    for variant in VARIANTS:
        drops = np.array(acc[variant]) - np.array(acc["float32"])
        rows.append(
            {
                "variant": variant,
                "test_acc": float(np.mean(acc[variant])),
                "test_acc_min": float(np.min(acc[variant])),
                "test_acc_max": float(np.max(acc[variant])),
                "acc_change_vs_float": float(np.mean(drops)),
                "bytes": sizes[variant][0],
                "gzip_bytes": sizes[variant][1],
                "latency_ms": latency[variant],
                "latency_vs_float": common.ratio(latency[variant], latency["float32"]),
                **first[variant],
            }
        )
    return rows


def run_tfopt(quick: bool) -> list[dict]:
    import keras

    from tfopt.export import to_tflite

    def export(model, variant, path, data):
        result, seconds = common.timed(
            to_tflite,
            model,
            path,
            quantization=None if variant == "float32" else variant,
            representative_data=(
                data.x_train[: common.CALIBRATION_SAMPLES] if variant == "int8" else None
            ),
            verify_data=data.x_test[:64],
        )
        return {"convert_s": seconds, "parity_max_abs_error": result.parity.max_abs_error}

    return _run_side(keras, export, quick)


def run_tfmot(quick: bool) -> list[dict]:
    import tensorflow as tf
    import tf_keras

    def export(model, variant, path, data):
        calibration = data.x_train[: common.CALIBRATION_SAMPLES]

        def representative_dataset():
            for i in range(len(calibration)):
                yield [calibration[i : i + 1]]

        def convert():
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
            if variant != "float32":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if variant == "int8":
                converter.representative_dataset = representative_dataset
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            path.write_bytes(converter.convert())

        _, seconds = common.timed(convert)
        return {"convert_s": seconds}

    return _run_side(tf_keras, export, quick)
