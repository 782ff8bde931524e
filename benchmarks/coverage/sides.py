"""What quantizes and exports on each side: tfopt on Keras 3, tfmot on tf_keras.

Both give the measuring code (`measure`) the same three calls: `quantize(model)`,
`to_tflite(qat, path, x, expected)` and `to_onnx(...)`, each export returning a
`FileResult`. Built in the child process that measures; the modules are imported in
`__init__`.
"""

from __future__ import annotations

import dataclasses

from benchmarks.coverage import files


@dataclasses.dataclass(frozen=True)
class FileResult:
    """An exported file as the coverage table sees it.

    Attributes:
        quantization: what the exporter calls the file (tfopt's `ExportResult.quantization`).
        bar: the tfopt mode whose default parity bar applies ("int8-qat", "qdq-u8s8"...).
        parity: a `tfopt.export.VerifyResult` against the QAT model.
        notes: what the exporter decided on the caller's behalf.
    """

    quantization: str
    bar: str
    parity: object
    notes: tuple = ()

    @classmethod
    def of(cls, result):
        """From a tfopt `ExportResult`."""
        return cls(result.quantization, result.quantization, result.parity, result.notes)


class TfoptSide:
    """tfopt.quantization.quantize_model; tfopt.export.to_tflite / to_onnx, no parity bar."""

    name = "tfopt"

    def __init__(self):
        import keras

        import tfopt

        self.keras = keras
        self._tfopt = tfopt

    def quantize(self, model):
        return self._tfopt.quantization.quantize_model(model)

    def to_tflite(self, qat, path, x, expected):
        result = self._tfopt.export.to_tflite(qat, path, verify_data=x, parity_bar=False)
        return FileResult.of(result)

    def to_onnx(self, qat, path, x, expected):
        result = self._tfopt.export.to_onnx(qat, path, verify_data=x, parity_bar=False)
        return FileResult.of(result)


class TfmotSide:
    """tfmot's quantize_model on tf_keras; the TFLite converter as tfmot's guide uses it
    (`optimizations=[Optimize.DEFAULT]`); tf2onnx's `from_keras` for ONNX. Files are run
    in LiteRT / onnxruntime and compared with the tf_keras QAT model (`files.parity`)."""

    name = "tfmot"

    def __init__(self):
        import tensorflow as tf
        import tensorflow_model_optimization as tfmot
        import tf_keras

        self.keras = tf_keras
        self._tf = tf
        self._tfmot = tfmot

    def quantize(self, model):
        return self._tfmot.quantization.keras.quantize_model(model)

    def to_tflite(self, qat, path, x, expected):
        converter = self._tf.lite.TFLiteConverter.from_keras_model(qat)
        converter.optimizations = [self._tf.lite.Optimize.DEFAULT]
        path.write_bytes(converter.convert())
        return self._measured(
            path, "litert", "converter Optimize.DEFAULT", "int8-qat", x, expected
        )

    def to_onnx(self, qat, path, x, expected):
        import tf2onnx

        spec = qat.inputs[0]
        signature = (self._tf.TensorSpec(spec.shape, spec.dtype, name=spec.name.split(":")[0]),)
        tf2onnx.convert.from_keras(qat, input_signature=signature, opset=17, output_path=str(path))
        return self._measured(path, "onnxruntime", "tf2onnx from_keras", "qdq-u8s8", x, expected)

    @staticmethod
    def _measured(path, runtime, quantization, bar, x, expected):
        got, step = files.run_file(path, x)
        return FileResult(quantization, bar, files.parity(path, runtime, got, expected, step))


SIDES = {"tfopt": TfoptSide, "tfmot": TfmotSide}
