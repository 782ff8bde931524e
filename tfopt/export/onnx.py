"""to_onnx(): Keras 3 model -> verified .onnx (float, or int8 QDQ for a QAT model)."""

from __future__ import annotations

import keras

from tfopt import compat
from tfopt.export import _files, _model, _onnx_common, _onnx_qdq, acceptance
from tfopt.export.result import ExportResult
from tfopt.quantization import is_qat_model

DEFAULT_OPSET = _onnx_common.DEFAULT_OPSET


def to_onnx(
    model: keras.Model,
    path,
    opset: int | None = None,
    *,
    input_signature=None,
    verify_data=None,
    qdq_format: str | None = None,
    parity_bar=None,
    batch_size: int | None = None,
) -> ExportResult:
    """Converts a Keras 3 model to an ONNX file through tf2onnx and verifies it.

    Keras 3 models take tf2onnx's `from_function` route (its `from_keras` fails
    on them). Inputs keep the Keras input names; outputs take the Keras output
    names. The file is run in onnxruntime against the model before it is renamed
    to `path`.

    A float model gives a float file. A QAT model from
    `tfopt.quantization.quantize_model` gives a real 8-bit QDQ file: 8-bit weight
    initializers feeding DequantizeLinear (per channel where the model was
    trained so), activations through QuantizeLinear/DequantizeLinear with the
    trained scales (opset 13 or higher). Three encodings of the same trained
    grids, named activations then weights: "u8s8" (uint8 activations, int8
    weights), "s8s8" (both int8; symmetric activations get zero point 0, what
    TensorRT takes) and "u8u8" (both uint8, the int8 weight codes shifted by
    128). On x86 CPUs onnxruntime fuses u8s8 and u8u8 into QLinearConv/
    QLinearAdd and runs u8s8 fastest (BENCHMARKS.md's "Scale" section times the
    three on MobileNetV2-224 against the float file and onnxruntime's own
    `quantize_static`). Its x86 U8S8 kernels on CPUs with
    AVX2/AVX512 but without VNNI sum pairs of u8 x s8 products in int16 with
    saturation (VPMADDUBSW); its documentation (docs/performance/
    model-optimizations/quantization.md, "When and why do I need to try U8U8?")
    recommends U8U8 where that costs accuracy. The parity check runs the file
    in onnxruntime on the exporting machine.

    Example:

    ```python
    result = tfopt.export.to_onnx(model, "model.onnx")
    print(result.parity.max_abs_error)
    ```

    Args:
        model: a built Keras 3 model (subclassed ones with `input_signature`).
        path: the output file; must end in `.onnx`, in an existing directory.
        opset: the ONNX opset. Defaults to `None` (opset 17).
        input_signature: for subclassed models, as in `to_tflite`. Defaults to `None`.
        verify_data: inputs for the parity check. Defaults to `None` (32 random
            normal samples).
        qdq_format: for a QAT model, "u8s8", "s8s8" or "u8u8". Defaults to
            `None`: "s8s8" when the activations were trained symmetric
            ("tensorrt" preset), else "u8s8".
        parity_bar: the parity the file must reach to be published: None (the
            mode's default bar, see `tfopt.export.acceptance`), a
            `tfopt.export.ParityBar`, or False. Defaults to `None`.
        batch_size: fix the batch dimension of the file's inputs, so every shape
            in the file is static (the Shape/Gather/Concat arithmetic of Flatten and
            Reshape folds into constants), as runtimes and compilers that need static
            shapes want (NNAPI, CoreML, TensorRT engines built for one shape...). The
            file then takes batches of exactly that size. Defaults to `None` (a free
            batch dimension).

    Returns:
        An `ExportResult` (path, bytes, gzip bytes, parity figures); its
        `quantization` is "float32", "qdq-u8s8", "qdq-s8s8" or "qdq-u8u8".

    Raises:
        TypeError: `model` is not a Keras 3 model.
        ValueError: an unbuilt model, a wrong suffix, a missing directory, a bad
            opset, `qdq_format` for a float model or an unknown one, a QAT model
            with ranges never observed or with 16-bit activations (TFLite only).
        PermissionError: the directory cannot be written to.
        RuntimeError: tf2onnx failed.
        ParityError: the file misses its parity bar (nothing is published).
    """
    _model.check_keras_model(model, input_signature=input_signature)
    path = _files.check_output_path(path, (".onnx",))
    _model.check_finite_weights(model)
    batch_size = _model.check_batch_size(batch_size)
    if compat.is_tfmot_qat_model(model):
        raise ValueError(
            f"Model {model.name!r} is a tfmot (tf_keras) QAT model: tf2onnx folds its weight "
            "fake-quant ops into float weights, so no real int8 QDQ file comes out of it. Export "
            "it with to_tflite, or quantize a Keras 3 model with tfopt.quantization for QDQ ONNX."
        )
    if is_qat_model(model):
        return _onnx_qdq.export_qdq(
            model,
            path,
            opset,
            input_signature=input_signature,
            verify_data=verify_data,
            qdq_format=qdq_format,
            parity_bar=parity_bar,
            batch_size=batch_size,
        )
    if qdq_format is not None:
        raise ValueError(
            f"Argument `qdq_format` applies to QAT models; model {model.name!r} is a float "
            f"model. Received: qdq_format={qdq_format!r}. Train it with "
            "tfopt.quantization.quantize_model for an int8 QDQ file, or drop qdq_format "
            "for a float file."
        )
    bar = acceptance.resolve_bar(parity_bar, "float32")
    opset = _onnx_common.check_opset(opset, 9, " (tf2onnx's range)")
    specs = _model.input_specs(model, input_signature)
    check_inputs, verified_on = _onnx_common.parity_inputs(verify_data, specs)
    model_proto = _onnx_common.convert(model, _model.with_batch(specs, batch_size), opset)
    return _onnx_common.publish(
        model_proto, model, path, check_inputs, verified_on, "float32", input_signature, bar
    )
