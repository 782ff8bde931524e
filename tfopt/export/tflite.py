"""to_tflite(): Keras 3 model -> verified .tflite (float, float16, dynamic, int8, 16x8)."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from tfopt import compat
from tfopt.export import (
    _data,
    _files,
    _loops,
    _model,
    _quiet,
    _staging,
    _tflite16x8,
    acceptance,
)
from tfopt.export.census import op_census
from tfopt.export.result import ExportResult
from tfopt.export.verify import verify
from tfopt.quantization import export_info, is_qat_model

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8", "int16x8")
_NEEDS_DATA = ("int8", "int16x8")
_VERIFY_SAMPLES = 64


def _check_quantization(quantization) -> str:
    if quantization is None:
        return "float32"
    if isinstance(quantization, str) and quantization.lower() in QUANTIZATIONS:
        return quantization.lower()
    raise ValueError(
        "Argument `quantization` must be None (float32), 'float16', 'dynamic', 'int8' or "
        f"'int16x8'. Received: quantization={quantization!r}"
    )


# --- QAT models (tfopt.quantization): their fake-quant ops carry trained int8 (or
# int16) ranges, so the converter needs no calibration data and makes integer kernels
# from them: "int8-qat", or "int16x8-qat" (TFLite's 16x8 mode) for 16-bit activations.
_QAT = "int8-qat"
_QAT16 = "int16x8-qat"


def _qat_quantization(model, quantization: str) -> str:
    """'int8-qat' / 'int16x8-qat' for a tfopt.quantization QAT model, else `quantization`.

    Checks the request against what the model was trained for, and (16x8) that the
    weights fit the route the export will take, before anything is converted.
    """
    if compat.is_tfmot_qat_model(model):  # tf_keras, quantized by tfmot: its fake-quant ops
        if quantization not in ("float32", "int8"):
            raise ValueError(
                f"Model {model.name!r} is a tfmot QAT model: it exports to int8 from its trained "
                "ranges. Pass quantization=None or 'int8'. "
                f"Received: quantization={quantization!r}"
            )
        return _QAT
    if not is_qat_model(model):
        return quantization
    info = export_info(model)
    per_channel_dense = sorted({w[0] for w in info.weight_quantizers() if w[1] and w[3]})
    if per_channel_dense:
        shown = ", ".join(map(repr, per_channel_dense[:4]))
        raise ValueError(
            f"QAT model {model.name!r} has per-channel Dense kernels ({shown}: the "
            "'tensorrt' preset, or dense_per_channel=True), which "
            "the TFLite converter cannot convert (its FULLY_CONNECTED takes one weight scale). "
            "Export it to ONNX (tfopt.export.to_onnx) for TensorRT or ONNX Runtime, or quantize "
            "the float model with config='tflite' for a TFLite file."
        )
    if info.activation_bits == 16:
        mode, accepted = _QAT16, ("float32", "int16x8")
        told = "Pass quantization=None or 'int16x8'"
        other = (
            " An int8 file would not compute what it was trained for: to get one, quantize "
            "the float model with config='tflite'."
        )
    else:
        mode, accepted = _QAT, ("float32", "int8")
        told = "Pass quantization=None or 'int8'"
        other = ""
    if quantization not in accepted:
        bits = mode.split("-")[0]
        raise ValueError(
            f"Model {model.name!r} is a QAT model: it exports to {bits} from its trained ranges. "
            f"{told}. Received: quantization={quantization!r}. For a float or float16 file, "
            f"export the float model the QAT model was made from.{other}"
        )
    if mode == _QAT16:
        reasons = _tflite16x8.needs_calibrator(info)
        if reasons:
            _tflite16x8.calibrator_dense_per_channel(info, reasons)
    info.check_ranges_observed()
    return mode


def _qat_finish(converter, model, quantization, calibration, specs, int8_io, sparse, batch):
    """What the converter's output still needs; may reconfigure `converter` (16x8 QAT).

    16x8 QAT (see _tflite16x8.py): the converter writes int32 biases the int16
    kernels read as int64, so they are widened; a model with layers the converter
    cannot make int16 from fake-quant ops is converted to float and quantized by
    TFLite's 16x8 quantizer with the trained ranges.
    """
    if quantization != _QAT16:
        return lambda flatbuffer: flatbuffer
    info = export_info(model)
    reasons = _tflite16x8.needs_calibrator(info)
    if not reasons:
        return _tflite16x8.int64_biases
    if sparse:
        raise ValueError(
            f"Argument `sparse=True` is not available for this 16x8 QAT model: its "
            f"{', '.join(reasons)} go through TFLite's 16x8 quantizer, which does not encode "
            "sparse weights. Export with sparse=False."
        )
    dense_per_channel = _tflite16x8.calibrator_dense_per_channel(info, reasons)
    converter.optimizations = []  # float, the fake-quant ops as QUANTIZE/DEQUANTIZE pairs
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.inference_input_type = converter.inference_output_type = tf.float32
    samples = calibration if calibration is not None else _model.random_inputs(specs, 16 * batch)
    return lambda flatbuffer: _tflite16x8.quantize_from_float(
        flatbuffer, samples, dense_per_channel, int8_io, batch_size=batch
    )


# --- end QAT


def _configure(converter, quantization, calibration, names, int8_io, sparse, batch=1):
    optimizations = []
    if quantization != "float32":
        optimizations.append(tf.lite.Optimize.DEFAULT)
    if sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    converter.optimizations = optimizations
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == _QAT and int8_io:  # QAT: the fake-quant ops carry the int8 ranges
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    if quantization == _QAT16:  # 16-bit fake-quant ops: int16 activations, int8 weights
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        if int8_io:
            converter.inference_input_type = tf.int16
            converter.inference_output_type = tf.int16
    if quantization in _NEEDS_DATA:

        def representative_dataset():
            n = calibration[0].shape[0]
            for i in range(0, n - batch + 1, batch):  # whole batches of the file's size
                # Keyed by signature input name: the converter's own tensor order
                # need not be the model's.
                yield {name: x[i : i + batch] for name, x in zip(names, calibration)}

        converter.representative_dataset = representative_dataset
        if quantization == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            io_type = tf.int8
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            io_type = tf.int16
        if int8_io:
            converter.inference_input_type = io_type
            converter.inference_output_type = io_type


def to_tflite(
    model: keras.Model,
    path,
    quantization: str | None = None,
    representative_data=None,
    int8_io: bool = False,
    *,
    input_signature=None,
    verify_data=None,
    num_calibration_samples: int = 200,
    sparse: bool = False,
    parity_bar=None,
    batch_size: int | None = None,
) -> ExportResult:
    """Converts a Keras 3 model to a TFLite (LiteRT) file and verifies it.

    The file is written to a temporary name beside `path`, run in LiteRT against
    the Keras model, and only then renamed to `path`: a failure leaves `path`
    untouched (absent, or the previous complete file).

    Example:

    ```python
    result = tfopt.export.to_tflite(model, "digits_int8.tflite", quantization="int8",
                                    representative_data=x_train[:200])
    print(result.bytes, result.parity.max_abs_error)
    ```

    Args:
        model: a built Keras 3 model: Sequential, functional, or subclassed (then
            with `input_signature` unless it was built with a single input shape).
        path: the output file; must end in `.tflite`, in an existing directory.
        quantization: None (float32), "float16" (float16 weights), "dynamic"
            (int8 weights, float activations), "int8" (full integer: int8 weights
            and activations, calibrated on `representative_data`) or "int16x8"
            (int16 activations, int8 weights). Defaults to `None`.
            A QAT model from `tfopt.quantization.quantize_model` carries its
            trained int8 ranges: with None or "int8" it exports fully int8
            ("int8-qat") and needs no `representative_data`. One trained with
            16-bit activations (config "tflite16x8") exports with None or
            "int16x8" to TFLite's 16x8 mode ("int16x8-qat": int16 activations,
            int8 weights, int64 biases).
        representative_data: calibration samples for "int8"/"int16x8": a numpy
            array, a dict of arrays keyed by input name (any order), a list of arrays
            in `model.inputs` order, a tf.data.Dataset (of x or (x, y)), or a
            generator. Defaults to `None`.
        int8_io: with "int8" or a QAT model, make the model's inputs and outputs
            int8 too (int16 with "int16x8" or a 16x8 QAT model); `verify`
            quantizes for you. Defaults to `False`.
        input_signature: for subclassed models: a tf.TensorSpec, a shape tuple, or
            a list of those. Defaults to `None`.
        verify_data: inputs for the parity check. Defaults to `None`: up to 64
            samples of `representative_data`, else 32 random normal samples.
        num_calibration_samples: calibration samples used at most. Defaults to `200`.
        sparse: also apply TFLite's sparse weight encoding
            (`Optimize.EXPERIMENTAL_SPARSITY`), which pays off on pruned models;
            not with quantization="int16x8" (ValueError: the converter's sparse
            16x8 file computes wrong values). Defaults to `False`.
        parity_bar: the parity the file must reach to be published: None (the
            mode's default bar, see `tfopt.export.acceptance`), a
            `tfopt.export.ParityBar`, or False (publish whatever the figures).
            Defaults to `None`.
        batch_size: fix the batch dimension of the file's inputs (as
            `keras.Input(batch_size=...)` does), so every shape in the file is
            static: the shape arithmetic of Flatten and Reshape (SHAPE,
            STRIDED_SLICE, PACK ops on int32) folds into constants, as compilers
            for accelerators (Edge TPU, Arm Ethos-U's Vela...) need. The file then
            takes batches of exactly that size; it is calibrated and verified so.
            Defaults to `None` (a free batch dimension).

    Returns:
        An `ExportResult` (path, bytes, gzip bytes, parity figures).

    Raises:
        TypeError: `model` is not a Keras 3 model, or data of an unknown kind.
        ValueError: an unbuilt model, a wrong suffix, a missing directory, an
            unknown `quantization`, or missing, empty or misshapen data.
        PermissionError: the directory cannot be written to.
        RuntimeError: the converter failed.
        ParityError: the file misses its parity bar (nothing is published).
    """
    _model.check_keras_model(model, input_signature=input_signature)
    path = _files.check_output_path(path, (".tflite",))
    for flag, value in (("int8_io", int8_io), ("sparse", sparse)):
        if not isinstance(value, bool):
            raise TypeError(f"Argument `{flag}` must be a bool. Received: {flag}={value!r}")
    quantization = _check_quantization(quantization)
    if sparse and quantization == "int16x8":
        raise ValueError(
            "Argument `sparse=True` is not available with quantization='int16x8': the "
            "converter's sparse encoding of a 16x8 file computes wrong values (top-1 "
            "agreement 9% on a pruned digits CNN, TF 2.21). Export with sparse=False; the "
            "zeros still shrink the gzipped file."
        )
    if not isinstance(num_calibration_samples, int) or num_calibration_samples < 1:
        raise ValueError(
            "Argument `num_calibration_samples` must be an int >= 1. "
            f"Received: num_calibration_samples={num_calibration_samples!r}"
        )
    batch_size = _model.check_batch_size(batch_size)
    if batch_size is not None and compat.is_tf_keras(model):
        raise ValueError(
            f"Argument `batch_size` is not available for tf_keras (Keras 2) model "
            f"{model.name!r}. Received: batch_size={batch_size}. Build the model on "
            f"tf_keras.Input(shape, batch_size={batch_size}) instead."
        )
    quantization = _qat_quantization(model, quantization)  # QAT models: see below
    if int8_io and quantization not in (*_NEEDS_DATA, _QAT, _QAT16):
        raise ValueError(
            "Argument `int8_io=True` needs a full-integer model: quantization='int8' or "
            "'int16x8', or a QAT model (tfopt.quantization.quantize_model). "
            f"Received: quantization={quantization!r}"
        )
    bar = acceptance.resolve_bar(parity_bar, quantization)
    _model.check_finite_weights(model)
    specs = _model.input_specs(model, input_signature)
    if quantization in _NEEDS_DATA and representative_data is None:
        raise ValueError(
            f"quantization={quantization!r} calibrates activation ranges on sample inputs: "
            "pass `representative_data`, e.g. representative_data=x_train[:200] (a numpy "
            "array, a tf.data.Dataset, or a generator of input batches)."
        )
    calibration = None
    if representative_data is not None:
        calibration = _data.collect(
            representative_data, specs, "representative_data", num_calibration_samples
        )
        if batch_size is not None and calibration[0].shape[0] < batch_size:
            raise ValueError(
                f"Argument `representative_data` holds {calibration[0].shape[0]} samples, "
                f"fewer than one batch of batch_size={batch_size}: the file is calibrated on "
                f"whole batches. Pass at least {batch_size} samples (and "
                f"num_calibration_samples >= {batch_size}), or a smaller batch_size."
            )
    if verify_data is not None:
        check_inputs, verified_on = _data.collect(verify_data, specs, "verify_data"), "data"
        if calibration is not None and quantization in _NEEDS_DATA:
            _data.check_same_scale(calibration, check_inputs, specs)
    elif calibration is not None:
        check_inputs = [x[:_VERIFY_SAMPLES] for x in calibration]
        verified_on = "data"
    else:
        check_inputs, verified_on = _model.random_inputs(specs, 32), "random"

    reference = _model.as_functional(model, specs)
    notes = ()
    source = model
    if quantization in _NEEDS_DATA:  # TFLite's calibrator: no loops (see _loops.py)
        source, note = _loops.unrolled(model, quantization)
        notes += (note,) if note else ()
        _loops.check_no_loops(source, specs, quantization)
    if batch_size is not None:  # static shapes: the shape ops fold into constants
        export_model = _model.as_functional(source, specs, batch_size=batch_size)
    elif source is model:
        export_model = reference
    else:
        export_model = _model.as_functional(source, specs)
    try:
        flatbuffer = _convert(
            export_model, model, quantization, calibration, specs, int8_io, sparse
        )
    except _StaticBatchNeeded:
        # Recurrent layers (LSTM, GRU, ...) loop over TensorLists whose element
        # shape must be static to lower to TFLite builtins: fix the batch at 1,
        # the batch a device runs them at.
        export_model = _model.as_functional(source, specs, batch_size=1)
        flatbuffer = _convert(
            export_model, model, quantization, calibration, specs, int8_io, sparse
        )
        notes += ("batch fixed at 1: the model's recurrent loops need a static batch size",)

    float_ops = []

    def check(staged):
        parity = verify(
            staged, reference, _data.by_name(check_inputs, specs), file_format="tflite"
        )
        if quantization not in ("float32", "float16", "dynamic"):
            float_ops.extend(op.op for op in op_census(staged, file_format="tflite").float_ops())
        return parity

    result = _staging.publish(
        path,
        flatbuffer,
        check,
        format="tflite",
        quantization=quantization,
        verified_on=verified_on,
        notes=notes,
        parity_bar=bar,
    )
    if result.parity.runtime_notes:
        result = dataclasses.replace(result, notes=(*result.notes, *result.parity.runtime_notes))
    if float_ops:  # an integer file with float ops in it says which
        counts = {op: float_ops.count(op) for op in dict.fromkeys(float_ops)}
        shown = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in counts.items())
        result = dataclasses.replace(result, notes=(*result.notes, f"ops left in float: {shown}"))
    return result


class _StaticBatchNeeded(Exception):
    """The converter cannot lower the graph with a free batch dimension."""


def _convert(export_model, model, quantization, calibration, specs, int8_io, sparse) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(export_model)
    batch = export_model.inputs[0].shape[0] or 1  # the file's batch where it is fixed
    names = [s.name for s in specs]
    _configure(converter, quantization, calibration, names, int8_io, sparse, batch)
    finish = _qat_finish(
        converter, model, quantization, calibration, specs, int8_io, sparse, batch
    )
    try:
        with _quiet.quiet() as log, _model.export_trace(model, "tflite"):
            return finish(converter.convert())
    except Exception as err:
        message = f"{err}\n{log.text}"
        free_batch = any(d is None for d in export_model.inputs[0].shape[:1])
        if free_batch and "TensorList" in message and "static" in message:
            raise _StaticBatchNeeded() from err
        raise RuntimeError(
            f"TFLite conversion of model {model.name!r} with quantization={quantization!r} "
            f"failed: {type(err).__name__}: {err}\n{log.tail()}"
        ) from err
