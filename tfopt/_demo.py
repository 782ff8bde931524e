"""`tfopt demo`: train a small CNN on the digits, export it five ways, verify, compare."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tfopt.report import render_table

HEADERS = (
    "format",
    "quantization",
    "bytes",
    "gzip bytes",
    "test accuracy",
    "max abs error vs Keras",
    "top-1 agreement",
    "latency ms",
)


def build_cnn(input_shape, num_classes: int = 10):
    """The demo's CNN: two conv blocks with BatchNormalization, then a small classifier."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(input_shape, name="image"),
            layers.Conv2D(16, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Conv2D(32, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(64, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="digits_cnn",
    )


def run_demo(
    out_dir, epochs: int = 30, seed: int = 0, threads: int = 1, log=print, save=None
) -> dict:
    """Runs the demo and writes report.json and report.md (plus the model files) to `out_dir`.

    With `save`, the trained model and its data also go to `save/model.keras` and
    `save/data.npz` (x_train, y_train, x_val, y_val: the held-out test split is the
    validation data), the input of `tfopt optimize`.

    Returns the report as a dict.
    """
    import keras

    from tfopt import datasets, export

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    data = datasets.load_digits(seed=seed)
    log(
        f"digits: {len(data.x_train)} train / {len(data.x_test)} test scans of "
        f"{data.input_shape}, 10 classes (scikit-learn's bundled data)"
    )
    model = build_cnn(data.input_shape, data.num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0)
    train_seconds = time.perf_counter() - start
    _, keras_acc = model.evaluate(data.x_test, data.y_test, verbose=0)
    log(
        f"trained {model.name} for {epochs} epochs in {train_seconds:.1f} s: "
        f"Keras test accuracy {keras_acc:.4f}"
    )
    model.save(out_dir / "digits_cnn.keras")
    if save is not None:
        _save_inputs(Path(save), model, data, log)

    calibration = data.x_train[:200]
    exports = [
        ("tflite", None, lambda p: export.to_tflite(model, p, verify_data=data.x_test)),
        (
            "tflite",
            "float16",
            lambda p: export.to_tflite(model, p, "float16", verify_data=data.x_test),
        ),
        (
            "tflite",
            "dynamic",
            lambda p: export.to_tflite(model, p, "dynamic", verify_data=data.x_test),
        ),
        (
            "tflite",
            "int8",
            lambda p: export.to_tflite(
                model, p, "int8", representative_data=calibration, verify_data=data.x_test
            ),
        ),
        ("onnx", None, lambda p: export.to_onnx(model, p, verify_data=data.x_test)),
    ]
    rows, records = [], []
    for fmt, quant, convert in exports:
        name = f"digits_cnn_{quant or 'float32'}.{fmt}"
        result = convert(out_dir / name)
        latency = export.benchmark_latency(result.path, num_threads=threads)
        predictions = np.argmax(result.parity.outputs[0], axis=1)
        accuracy = float(np.mean(predictions == data.y_test))
        record = {
            "file": name,
            "format": fmt,
            "quantization": result.quantization,
            "bytes": result.bytes,
            "gzip_bytes": result.gzip_bytes,
            "test_accuracy": accuracy,
            "max_abs_error": result.parity.max_abs_error,
            "mean_abs_error": result.parity.mean_abs_error,
            "top1_agreement": result.parity.top1_agreement,
            "latency_median_ms": latency.median_ms,
            "latency_runtime": latency.runtime,
        }
        records.append(record)
        rows.append(
            [
                fmt,
                result.quantization,
                result.bytes,
                result.gzip_bytes,
                round(accuracy, 4),
                result.parity.max_abs_error,
                round(result.parity.top1_agreement, 4),
                round(latency.median_ms, 4),
            ]
        )
        log(f"  {result}")
    report = {
        "model": model.name,
        "parameters": int(model.count_params()),
        "epochs": epochs,
        "train_seconds": train_seconds,
        "keras_test_accuracy": float(keras_acc),
        "test_samples": len(data.x_test),
        "latency": {"batch": 1, "threads": threads},
        "exports": records,
    }
    note = (
        f"Keras model: {model.count_params():,} parameters, test accuracy {keras_acc:.4f} on "
        f"{len(data.x_test)} held-out digits. Each file was run on the same test set (LiteRT "
        f"for .tflite, onnxruntime for .onnx); latency is the median of 100 batch-1 runs "
        f"on {threads} thread(s)."
    )
    table = render_table(HEADERS, rows)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(
        "# tfopt demo\n\n" + note + "\n\n" + render_table(HEADERS, rows, markdown=True) + "\n"
    )
    log("")
    log(table)
    log("")
    log(note)
    log(f"wrote {out_dir / 'report.json'} and {out_dir / 'report.md'}")
    return report


def _save_inputs(directory: Path, model, data, log) -> None:
    """Writes `model.keras` and `data.npz` (x_train, y_train, x_val, y_val) to `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.keras")
    staged = directory / ".data.tmp.npz"
    np.savez(
        staged, x_train=data.x_train, y_train=data.y_train, x_val=data.x_test, y_val=data.y_test
    )
    staged.replace(directory / "data.npz")
    log(
        f"saved {directory / 'model.keras'} and {directory / 'data.npz'}: try "
        f"`tfopt optimize {directory / 'model.keras'} --data {directory / 'data.npz'} "
        f"--prune 0.8 --quantize qat --export tflite,onnx --out tfopt-optimize`"
    )
