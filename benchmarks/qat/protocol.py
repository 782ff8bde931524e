"""Quantization-aware training: tfopt.quantization (Keras 3) vs tfmot (tf_keras twin).

Both sides train the same digits CNN (benchmarks/common.py) in float for the
common budget, then run QAT from it for `qat_epochs(quick)` epochs with the same
optimizer and batch size, and convert the QAT model to an int8 .tflite (the tfopt
side with `tfopt.export.to_tflite`, the tfmot side with the TFLite converter and
`Optimize.DEFAULT`, as the tfmot guide does). Figures: test accuracy of the float
model and of the int8 file in LiteRT, file sizes, the epoch-time ratio QAT/float
(steady epochs, same process), LiteRT latency int8/float (batch 1, one thread,
interleaved rounds). The tfopt side also exports QDQ ONNX and times onnxruntime
int8/float, and reports 4-bit-weight QAT accuracy.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import common

TITLE = "Quantization-aware training: tfopt vs tfmot (tf_keras twin)"


def qat_epochs(quick: bool) -> int:
    """QAT fine-tuning budget after the float training: a third of it, at least 2
    (the first epoch includes graph tracing; the epoch-time figure needs a second)."""
    return max(2, common.epochs(quick) // 3)


def _fit(model, data, epochs, keras_module):
    timer = common.epoch_times(keras_module)
    model.fit(
        data.x_train,
        data.y_train,
        epochs=epochs,
        batch_size=common.BATCH_SIZE,
        callbacks=[timer],
        verbose=0,
    )
    return timer


def _interleaved_epoch_times(float_model, qat_model, data, quick) -> dict:
    """Epoch times of float and QAT training measured alternately (common.interleaved_fits),
    after every other figure is taken (the extra epochs change the models). Wall: the
    fastest round; CPU: the median round."""
    times = common.interleaved_fits(
        [("float", float_model, []), ("qat", qat_model, [])], data, 2 if quick else 10, epochs=3
    )
    fastest = {name: min(t["wall"]) for name, t in times.items()}
    median_cpu = {name: float(np.median(t["cpu"])) for name, t in times.items()}
    return {
        "float_epoch_s": fastest["float"],
        "qat_epoch_s": fastest["qat"],
        "epoch_ratio_qat_float": fastest["qat"] / fastest["float"],
        "epoch_cpu_ratio_qat_float": median_cpu["qat"] / median_cpu["float"],
    }


def _float_phase(keras_module, data, quick):
    common.set_seed(keras_module, common.SEED)
    model = common.build_cnn(keras_module)
    common.compile_cnn(model, keras_module)
    _fit(model, data, common.epochs(quick), keras_module)
    return model


def _row(side, data, float_model, qat_model, paths, quick):
    latency = common.interleaved_latency(paths, quick=quick)
    sizes = {name: common.file_sizes(path) for name, path in paths.items()}
    return {
        "side": side,
        "float_accuracy": common.keras_accuracy(float_model, data.x_test, data.y_test),
        "qat_keras_accuracy": common.keras_accuracy(qat_model, data.x_test, data.y_test),
        "int8_tflite_accuracy": common.tflite_accuracy(paths["int8"], data.x_test, data.y_test),
        "float_tflite_bytes": sizes["float"][0],
        "int8_tflite_bytes": sizes["int8"][0],
        "int8_tflite_gzip_bytes": sizes["int8"][1],
        "litert_float_ms": latency["float"],
        "litert_int8_ms": latency["int8"],
        "litert_ratio_int8_float": latency["int8"] / latency["float"],
    }


def run_tfopt(quick: bool) -> list[dict]:
    import keras

    import tfopt
    from tfopt import quantization as tq

    data = common.load_data()
    float_model = _float_phase(keras, data, quick)
    common.set_seed(keras, common.SEED)
    qat = tq.quantize_model(float_model)
    common.compile_cnn(qat, keras)
    _fit(qat, data, qat_epochs(quick), keras)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"float": Path(tmp) / "float.tflite", "int8": Path(tmp) / "int8.tflite"}
        tfopt.export.to_tflite(float_model, paths["float"], verify_data=data.x_test)
        start = time.perf_counter()
        result = tfopt.export.to_tflite(qat, paths["int8"], verify_data=data.x_test)
        convert_s = time.perf_counter() - start
        row = _row("tfopt", data, float_model, qat, paths, quick)
        row["convert_s"] = convert_s
        row["tflite_within_one_step"] = result.parity.within_one_step
        row["tflite_top1_agreement"] = result.parity.top1_agreement
        onnx_paths = {"float": Path(tmp) / "float.onnx", "int8": Path(tmp) / "int8.onnx"}
        tfopt.export.to_onnx(float_model, onnx_paths["float"], verify_data=data.x_test)
        qdq = tfopt.export.to_onnx(qat, onnx_paths["int8"], verify_data=data.x_test)
        onnx_latency = {
            name: tfopt.export.benchmark_latency(
                path, warmup=common.LATENCY_WARMUP, runs=common.latency_runs(quick)
            ).median_ms
            for name, path in onnx_paths.items()
        }
        row["onnx_int8_top1_agreement"] = qdq.parity.top1_agreement
        row["onnx_int8_accuracy"] = float((qdq.parity.outputs[0].argmax(-1) == data.y_test).mean())
        row["onnx_format"] = qdq.quantization
        row["ort_float_ms"] = onnx_latency["float"]
        row["ort_int8_ms"] = onnx_latency["int8"]
        row["ort_ratio_int8_float"] = onnx_latency["int8"] / onnx_latency["float"]
    # 4-bit weights (8-bit activations), same budget.
    common.set_seed(keras, common.SEED)
    config = dataclasses.replace(tq.QuantizationConfig.from_preset("tflite"), weight_bits=4)
    qat4 = tq.quantize_model(float_model, config=config)
    common.compile_cnn(qat4, keras)
    _fit(qat4, data, qat_epochs(quick), keras)
    row["w4_qat_keras_accuracy"] = common.keras_accuracy(qat4, data.x_test, data.y_test)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            w4 = tfopt.export.to_tflite(qat4, Path(tmp) / "w4.tflite", verify_data=data.x_test)
            row["w4_tflite_accuracy"] = common.tflite_accuracy(w4.path, data.x_test, data.y_test)
        except RuntimeError as err:
            row["w4_tflite_error"] = str(err).splitlines()[0][:200]
    row["peak_rss_mb"] = common.peak_rss_mb()
    row.update(_interleaved_epoch_times(float_model, qat, data, quick))
    return [row]


def run_tfmot(quick: bool) -> list[dict]:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    data = common.load_data()
    float_model = _float_phase(tf_keras, data, quick)
    common.set_seed(tf_keras, common.SEED)
    qat = tfmot.quantization.keras.quantize_model(float_model)
    common.compile_cnn(qat, tf_keras)
    _fit(qat, data, qat_epochs(quick), tf_keras)
    peak = common.peak_rss_mb()  # before tfopt.export adds Keras 3 to the process
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"float": Path(tmp) / "float.tflite", "int8": Path(tmp) / "int8.tflite"}
        paths["float"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(float_model).convert())
        converter = tf.lite.TFLiteConverter.from_keras_model(qat)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        start = time.perf_counter()
        paths["int8"].write_bytes(converter.convert())
        convert_s = time.perf_counter() - start
        row = _row("tfmot", data, float_model, qat, paths, quick)
    row["convert_s"] = convert_s
    row["peak_rss_mb"] = peak
    row.update(_interleaved_epoch_times(float_model, qat, data, quick))
    return [row]
