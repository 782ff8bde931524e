"""Post-training quantization: tfopt.export.to_tflite (Keras 3) vs the TFLite converter (tf_keras).

Both sides train the same digits CNN (benchmarks/common.py) with the same seed and
budget, then export float32, dynamic-range and full-integer int8 .tflite files
(int8 calibrated on the same 200 training samples, float inputs and outputs). The
tfopt side calls `tfopt.export.to_tflite`, which also verifies each file against
the model; the tfmot side does what a tfmot user does for PTQ on tf_keras:
`tf.lite.TFLiteConverter.from_keras_model`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks import common

TITLE = "Post-training quantization: tfopt vs tfmot (TFLite converter on tf_keras)"
VARIANTS = ("float32", "dynamic", "int8")


def _train(keras_module, quick: bool):
    data = common.load_data()
    common.set_seed(keras_module)
    model = common.build_cnn(keras_module)
    common.compile_cnn(model, keras_module)
    timer = common.epoch_times(keras_module)
    _, train_s = common.timed(
        model.fit,
        data.x_train,
        data.y_train,
        epochs=common.epochs(quick),
        batch_size=common.BATCH_SIZE,
        callbacks=[timer],
        verbose=0,
    )
    row = {
        "variant": "training",
        "epochs": common.epochs(quick),
        "epoch_s": timer.steady_s(),
        "first_epoch_s": timer.first_s(),
        "train_s": train_s,
        "keras_test_acc": common.keras_accuracy(model, data.x_test, data.y_test),
    }
    return data, model, row


def _figures(rows: list[dict], paths: dict, data, quick: bool) -> list[dict]:
    """Adds LiteRT accuracy, sizes and latency (and the int8/float ratio) to each row."""
    latency = common.interleaved_latency(paths, quick=quick)
    for row in rows:
        path = paths[row["variant"]]
        row["bytes"], row["gzip_bytes"] = common.file_sizes(path)
        row["latency_ms"] = latency[row["variant"]]
        row["test_acc"] = common.tflite_accuracy(path, data.x_test, data.y_test)
    float_ms = next(r["latency_ms"] for r in rows if r["variant"] == "float32")
    for row in rows:
        row["latency_vs_float"] = common.ratio(row["latency_ms"], float_ms)
    return rows


def run_tfopt(quick: bool) -> list[dict]:
    import keras

    from tfopt.export import to_tflite

    data, model, training = _train(keras, quick)
    calibration = data.x_train[: common.CALIBRATION_SAMPLES]
    rows, paths = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in VARIANTS:
            path = Path(tmp) / f"ptq_{variant}.tflite"
            result, seconds = common.timed(
                to_tflite,
                model,
                path,
                quantization=None if variant == "float32" else variant,
                representative_data=calibration if variant == "int8" else None,
                verify_data=data.x_test[:64],
            )
            paths[variant] = path
            rows.append(
                {
                    "variant": variant,
                    "convert_s": seconds,
                    "parity_max_abs_error": result.parity.max_abs_error,
                    "parity_top1_agreement": result.parity.top1_agreement,
                }
            )
        training["peak_rss_mb"] = common.peak_rss_mb()
        rows = _figures(rows, paths, data, quick)
    return [training, *rows]


def run_tfmot(quick: bool) -> list[dict]:
    import tensorflow as tf
    import tf_keras

    data, model, training = _train(tf_keras, quick)
    calibration = data.x_train[: common.CALIBRATION_SAMPLES]

    def representative_dataset():
        for i in range(len(calibration)):
            yield [calibration[i : i + 1]]

    rows, paths = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in VARIANTS:
            path = Path(tmp) / f"ptq_{variant}.tflite"

            def convert(variant=variant, path=path):
                converter = tf.lite.TFLiteConverter.from_keras_model(model)
                if variant != "float32":
                    converter.optimizations = [tf.lite.Optimize.DEFAULT]
                if variant == "int8":
                    converter.representative_dataset = representative_dataset
                    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                path.write_bytes(converter.convert())

            _, seconds = common.timed(convert)
            paths[variant] = path
            rows.append({"variant": variant, "convert_s": seconds})
        # Before the LiteRT figures: they import tfopt.export, hence Keras 3, into this process.
        training["peak_rss_mb"] = common.peak_rss_mb()
        rows = _figures(rows, paths, data, quick)
    return [training, *rows]


def _by_variant(rows: list[dict]) -> dict[str, dict]:
    return {r.get("variant"): r for r in rows}


def render(tfopt_rows: list[dict], tfmot_rows: list[dict]) -> str:
    sides = {"tfopt": _by_variant(tfopt_rows), "tfmot": _by_variant(tfmot_rows)}
    exports = []
    for variant in VARIANTS:
        for side, rows in sides.items():
            if variant in rows:
                exports.append({"side": side, **rows[variant]})
    training = [{"side": side, **rows["training"]} for side, rows in sides.items() if rows]
    parts = [
        "Exported models (test accuracy of the .tflite file in LiteRT on the 359 test digits; "
        "latency at batch 1, 1 thread, median of 3 interleaved rounds):",
        "",
        common.markdown_table(
            exports,
            [
                ("variant", "Variant", ""),
                ("side", "Side", ""),
                ("test_acc", "Test acc", "pct"),
                ("bytes", "Size", "kb"),
                ("gzip_bytes", "gzip", "kb"),
                ("latency_ms", "Latency ms", ".4f"),
                ("latency_vs_float", "Latency / float32", "x"),
                ("convert_s", "Convert s", ".2f"),
            ],
        ),
        "",
        "Training (same CNN, data, seed and budget on both sides):",
        "",
        common.markdown_table(
            training,
            [
                ("side", "Side", ""),
                ("epochs", "Epochs", ""),
                ("keras_test_acc", "Keras test acc", "pct"),
                ("first_epoch_s", "First epoch s", ".2f"),
                ("epoch_s", "Epoch s (median after 1st)", ".3f"),
                ("peak_rss_mb", "Peak RSS MiB", ".0f"),
            ],
        ),
        "",
    ]
    t, m = sides["tfopt"].get("training", {}), sides["tfmot"].get("training", {})
    epoch_ratio = common.ratio(t.get("epoch_s"), m.get("epoch_s"))
    rss_ratio = common.ratio(t.get("peak_rss_mb"), m.get("peak_rss_mb"))
    parity = [
        f"{v} {common.fmt(sides['tfopt'][v].get('parity_max_abs_error'), '.2e')}"
        for v in VARIANTS
        if v in sides["tfopt"]
    ]
    parts += [
        f"- Epoch time tfopt/tfmot: {common.fmt(epoch_ratio, 'x')}; "
        f"peak RSS tfopt/tfmot: {common.fmt(rss_ratio, 'x')}.",
        "- Both sides run the same TFLite converter; tfopt's convert time includes running "
        "each file in LiteRT against the model (max abs error of the logits on 64 test "
        "samples: " + (", ".join(parity) or "—") + ").",
        "- Peak RSS covers training and conversion (taken before the LiteRT evaluation, "
        "which loads Keras 3 on the tfmot side too).",
        "- Latency figures of the two sides come from two processes: compare the "
        "`Latency / float32` ratios, measured within one process, rather than the "
        "absolute times.",
    ]
    return "\n".join(parts)
