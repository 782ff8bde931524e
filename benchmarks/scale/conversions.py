"""The deployment files (tfopt side, with controls), one child process per conversion.

Each stage function runs in a child of its own (`isolation`), loads the model it needs
from a .keras file, converts, and records the conversion's wall time, the process's
peak RSS before it and the file's figures (`exported`). tfopt's exporters verify the
file they write, so their conversion time includes that check; the controls' times
are the converter's or quantizer's call alone, and their parity is measured after.
"""

from __future__ import annotations

from benchmarks.coverage.measure import set_batchnorm_statistics
from benchmarks.scale import data, exported, sides
from benchmarks.scale.budget import ModelSpec


def _load(model_path):
    import keras

    import tfopt  # noqa: F401  (registers tfopt's classes: a QAT model loads)

    return keras.saving.load_model(model_path)


def float_model(row: dict, alpha: float, size: int, model_path: str) -> None:
    """Builds the float model (BatchNormalization statistics from one batch) and saves it."""
    import keras

    model = sides.build(keras, ModelSpec("MobileNetV2", size, alpha))
    set_batchnorm_statistics(model, data.images(16, size, 99), keras.layers.BatchNormalization)
    row["params"] = int(model.count_params())
    model.save(model_path)


def qat_model(
    row: dict, model_path: str, out_model_path: str, size: int, steps: int, batch: int
) -> None:
    """`tfopt.quantization.quantize_model` of the float model, `steps` compiled steps, saved."""
    import keras

    import tfopt
    from benchmarks import common

    model = _load(model_path)
    qat, row["quantize_s"] = common.timed(tfopt.quantization.quantize_model, model)
    common.compile_cnn(qat, keras)
    train = data.training_set(steps * batch, size)
    history, row["train_s"] = common.timed(
        qat.fit, train.x_train, train.y_train, batch_size=batch, verbose=0
    )
    row["train_loss"] = float(history.history["loss"][-1])
    qat.save(out_model_path)


def tflite(
    row: dict,
    model_path: str,
    out_path: str,
    quantization: str | None,
    size: int,
    calibration: int,
    samples: int,
) -> None:
    """`tfopt.export.to_tflite` (`parity_bar=False`: the figures are reported instead);
    "int8" calibrates on `calibration` synthetic samples; a QAT model with None gives
    tfopt's int8 QAT file."""
    import tfopt

    model = _load(model_path)
    representative = data.calibration(calibration, size) if quantization == "int8" else None
    result = exported.timed_conversion(
        row,
        tfopt.export.to_tflite,
        model,
        out_path,
        quantization=quantization,
        representative_data=representative,
        verify_data=data.verification(samples, size),
        num_calibration_samples=calibration,
        parity_bar=False,
    )
    exported.record_export(row, result)


def converter_int8(
    row: dict, model_path: str, out_path: str, size: int, calibration: int, samples: int
) -> None:
    """The TFLite converter's own full-integer file (the control): `from_keras_model`,
    `Optimize.DEFAULT`, the same calibration samples, int8 builtins only, float input
    and output (as tfopt's int8 files)."""
    import tensorflow as tf

    import tfopt

    model = _load(model_path)
    x = data.calibration(calibration, size)

    def representative():
        for i in range(len(x)):
            yield [x[i : i + 1]]

    def convert():
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()

    flatbuffer = exported.timed_conversion(row, convert)
    with open(out_path, "wb") as f:
        f.write(flatbuffer)
    exported.record_file(row, out_path)
    row["quantization"] = "converter full-integer"
    parity = tfopt.export.verify(out_path, model, data.verification(samples, size))
    exported.record_parity(row, parity)


def onnx(row: dict, model_path: str, out_path: str, size: int, samples: int) -> None:
    """`tfopt.export.to_onnx` (float for a float model, QDQ for a QAT model), no bar."""
    import tfopt

    model = _load(model_path)
    result = exported.timed_conversion(
        row,
        tfopt.export.to_onnx,
        model,
        out_path,
        verify_data=data.verification(samples, size),
        parity_bar=False,
    )
    exported.record_export(row, result)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over synthetic samples, one at a time."""

    def __init__(self, name, x):
        self._feeds = iter([{name: x[i : i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self._feeds, None)


def ort_static(
    row: dict,
    onnx_path: str,
    model_path: str,
    out_path: str,
    size: int,
    calibration: int,
    samples: int,
    activation_type: str = "QInt8",
) -> None:
    """onnxruntime's own static quantization of tfopt's float ONNX file (the control):
    `quantize_static`, QDQ format, per-channel int8 weights, activations of
    `activation_type` ("QInt8", its default, or "QUInt8": the U8S8 its documentation
    names for x86) and MinMax calibration on the same samples."""
    import onnx as onnx_lib
    from onnxruntime import quantization as ortq

    import tfopt

    name = onnx_lib.load(onnx_path).graph.input[0].name
    reader = _Reader(name, data.calibration(calibration, size))
    exported.timed_conversion(
        row,
        ortq.quantize_static,
        onnx_path,
        out_path,
        reader,
        quant_format=ortq.QuantFormat.QDQ,
        per_channel=True,
        activation_type=ortq.QuantType[activation_type],
        weight_type=ortq.QuantType.QInt8,
    )
    exported.record_file(row, out_path)
    row["quantization"] = f"ORT quantize_static QDQ {activation_type}/QInt8"
    model = _load(model_path)
    parity = tfopt.export.verify(out_path, model, data.verification(samples, size))
    exported.record_parity(row, parity)


STAGES = {
    "deploy_float_model": float_model,
    "deploy_qat_model": qat_model,
    "deploy_tflite": tflite,
    "deploy_converter_int8": converter_int8,
    "deploy_onnx": onnx,
    "deploy_ort_static": ort_static,
}
