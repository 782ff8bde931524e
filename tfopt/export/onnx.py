"""to_onnx(): Keras 3 model -> verified float .onnx through tf2onnx."""

from __future__ import annotations

import contextlib

import keras

from tfopt.export import _data, _files, _model, _quiet, _staging
from tfopt.export.result import ExportResult
from tfopt.export.verify import verify

DEFAULT_OPSET = 17


def _import_tf2onnx():
    try:
        import tf2onnx
    except ImportError as err:  # pragma: no cover - a dependency of tfopt
        raise ImportError(
            "tfopt.export.to_onnx needs tf2onnx and onnx: `pip install tf2onnx onnx onnxruntime`"
        ) from err
    return tf2onnx


def _rename_outputs(model_proto, names):
    """Gives the graph outputs stable names (the Keras output names, else output_i)."""
    graph = model_proto.graph
    mapping = {}
    for out, new in zip(graph.output, names):
        if out.name != new:
            mapping[out.name] = new
    taken = {n for node in graph.node for n in (*node.input, *node.output)}
    if any(new in taken for new in mapping.values()):
        return model_proto  # would clash with an existing tensor; keep tf2onnx's names
    for node in graph.node:
        node.output[:] = [mapping.get(n, n) for n in node.output]
        node.input[:] = [mapping.get(n, n) for n in node.input]
    for out in graph.output:
        out.name = mapping.get(out.name, out.name)
    return model_proto


def _output_names(model, count):
    names = list(getattr(model, "output_names", None) or [])
    if len(names) == count and len(set(names)) == count and all(names):
        return [str(n) for n in names]
    return [f"output_{i}" for i in range(count)]


def _parity_inputs(verify_data, specs):
    """(inputs, "data") from the caller's `verify_data`, else 32 random samples."""
    if verify_data is not None:
        return _data.collect(verify_data, specs, "verify_data"), "data"
    return _model.random_inputs(specs, 32), "random"


def _convert(model, specs, opset, what="model", mode=None):
    """tf2onnx's from_function on the model's inference function, quietly.

    `mode` is an optional context manager the model must be traced under
    (QAT models trace an export-only graph).
    """
    tf2onnx = _import_tf2onnx()
    try:
        with mode or contextlib.nullcontext(), _quiet.quiet() as log:
            serve = _model.serving_function(model, specs)
            model_proto, _ = tf2onnx.convert.from_function(
                serve, input_signature=specs, opset=opset
            )
    except Exception as err:
        raise RuntimeError(
            f"ONNX conversion of {what} {model.name!r} (opset {opset}) failed: "
            f"{type(err).__name__}: {err}\n{log.tail()}"
        ) from err
    return model_proto


def _publish(model_proto, model, path, check_inputs, verified_on, quantization, input_signature):
    """Names the outputs, writes the file staged, verifies it, renames it into place."""
    model_proto = _rename_outputs(model_proto, _output_names(model, len(model_proto.graph.output)))
    return _staging.publish(
        path,
        model_proto.SerializeToString(),
        lambda staged: verify(staged, model, check_inputs, input_signature=input_signature),
        format="onnx",
        quantization=quantization,
        verified_on=verified_on,
    )


def to_onnx(
    model: keras.Model,
    path,
    opset: int | None = None,
    *,
    input_signature=None,
    verify_data=None,
) -> ExportResult:
    """Converts a Keras 3 model to a float ONNX file through tf2onnx and verifies it.

    Keras 3 models take tf2onnx's `from_function` route (its `from_keras` fails
    on them). Inputs keep the Keras input names; outputs take the Keras output
    names. The file is run in onnxruntime against the model before it is renamed
    to `path`. A QAT model from `tfopt.quantization.quantize_model` exports as
    real 8-bit QDQ ONNX instead (8-bit weight initializers feeding
    DequantizeLinear, activations through QuantizeLinear/DequantizeLinear with the
    trained scales; opset 13 or higher), see `tfopt/export/onnx_qdq.py`.

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

    Returns:
        An `ExportResult` (path, bytes, gzip bytes, parity figures).

    Raises:
        TypeError: `model` is not a Keras 3 model.
        ValueError: an unbuilt model, a wrong suffix, a missing directory, a bad opset.
        PermissionError: the directory cannot be written to.
        RuntimeError: tf2onnx failed.
    """
    _model.check_keras_model(model)
    if _model.is_qat(model):  # tfopt.quantization QAT model: int8 QDQ file (onnx_qdq.py)
        from tfopt.export.onnx_qdq import to_onnx_qdq

        return to_onnx_qdq(
            model, path, opset, input_signature=input_signature, verify_data=verify_data
        )
    path = _files.check_output_path(path, (".onnx",))
    if opset is None:
        opset = DEFAULT_OPSET
    if not isinstance(opset, int) or isinstance(opset, bool) or not 9 <= opset <= 18:
        raise ValueError(
            f"Argument `opset` must be an int from 9 to 18 (tf2onnx's range). Received: "
            f"opset={opset!r}. Try opset={DEFAULT_OPSET}."
        )
    specs = _model.input_specs(model, input_signature)
    check_inputs, verified_on = _parity_inputs(verify_data, specs)
    model_proto = _convert(model, specs, opset)
    return _publish(
        model_proto, model, path, check_inputs, verified_on, "float32", input_signature
    )
