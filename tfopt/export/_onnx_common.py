"""What the float and QDQ ONNX exporters share: tf2onnx, output names, opsets, publishing."""

from __future__ import annotations

import numpy as np

from tfopt.export import _data, _model, _quiet, _staging
from tfopt.export.verify import verify

DEFAULT_OPSET = 17
MAX_OPSET = 18  # tf2onnx 1.17's newest


def import_tf2onnx():
    """tf2onnx, imported on first use (never at `import tfopt`)."""
    try:
        import tf2onnx
    except ImportError as err:  # pragma: no cover - a dependency of tfopt
        raise ImportError(
            "tfopt.export.to_onnx needs tf2onnx and onnx: `pip install tf2onnx onnx onnxruntime`"
        ) from err
    return tf2onnx


def check_opset(opset, low: int, why: str) -> int:
    """`opset`, or DEFAULT_OPSET for None, checked against [low, MAX_OPSET]."""
    if opset is None:
        return DEFAULT_OPSET
    if not isinstance(opset, int) or isinstance(opset, bool) or not low <= opset <= MAX_OPSET:
        raise ValueError(
            f"Argument `opset` must be an int from {low} to {MAX_OPSET}{why}. Received: "
            f"opset={opset!r}. Try opset={DEFAULT_OPSET}."
        )
    return opset


def rename_outputs(model_proto, names):
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


def output_names(model, count):
    """The keys of a dict of outputs (as the TFLite file names them), else the Keras
    output names when they are `count` distinct names, else output_i."""
    names = _model.output_keys(model) or list(getattr(model, "output_names", None) or [])
    if len(names) == count and len(set(names)) == count and all(names):
        return [str(n) for n in names]
    return [f"output_{i}" for i in range(count)]


def parity_inputs(verify_data, specs):
    """(inputs, "data") from the caller's `verify_data`, else 32 random samples."""
    if verify_data is not None:
        return _data.collect(verify_data, specs, "verify_data"), "data"
    return _model.random_inputs(specs, 32), "random"


def _without_constant_captures(function, specs):
    """`function`, with the constant tensors it captures folded into its graph.

    tf2onnx makes every non-variable tensor a traced function captures a graph
    input of the file (a Keras Normalization's mean and variance became two extra
    inputs, and the file could not be run on the model's data).
    """
    import tensorflow as tf

    concrete = function.get_concrete_function()
    if all(t.dtype == tf.resource for t in concrete.captured_inputs):
        return function
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    frozen = convert_variables_to_constants_v2(concrete)

    @tf.function(input_signature=specs, autograph=False)
    def serve(*args):
        return frozen(*args)

    return serve


def convert(model, specs, opset, what="model"):
    """tf2onnx's from_function on the model's inference function (traced for ONNX), quietly."""
    tf2onnx = import_tf2onnx()
    try:
        with _quiet.quiet() as log:
            serve = _without_constant_captures(
                _model.serving_function(model, specs, "onnx"), specs
            )
            model_proto, _ = tf2onnx.convert.from_function(
                serve, input_signature=specs, opset=opset
            )
    except Exception as err:
        raise RuntimeError(
            f"ONNX conversion of {what} {model.name!r} (opset {opset}) failed: "
            f"{type(err).__name__}: {err}\n{log.tail()}"
        ) from err
    _replace_erfc(model_proto)
    return model_proto


def _replace_erfc(model_proto) -> int:
    """Rewrites tf2onnx's `Erfc(x)` nodes, an op ONNX does not have, as `1 - Erf(x)`.

    TensorFlow's exact GELU (`keras.activations.gelu`, approximate=False) is
    `0.5 * x * erfc(-x / sqrt(2))`; tf2onnx 1.17 converts its Erfc to an "Erfc" node that
    no opset defines, so onnxruntime refuses the file. Returns the number rewritten.
    """
    from onnx import helper, numpy_helper

    graph = model_proto.graph
    nodes, count = [], 0
    for node in graph.node:
        if node.op_type != "Erfc" or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        count += 1
        one, erf = f"{node.name}_one", f"{node.name}_erf"
        graph.initializer.append(numpy_helper.from_array(np.ones((), np.float32), one))
        nodes.append(helper.make_node("Erf", [node.input[0]], [erf], name=erf))
        nodes.append(helper.make_node("Sub", [one, erf], list(node.output), name=node.name))
    if count:
        graph.ClearField("node")
        graph.node.extend(nodes)
    return count


def publish(
    model_proto, model, path, check_inputs, verified_on, quantization, input_signature, bar
):
    """Names the outputs, writes the file staged, verifies it, renames it into place."""
    model_proto = rename_outputs(model_proto, output_names(model, len(model_proto.graph.output)))
    return _staging.publish(
        path,
        model_proto.SerializeToString(),
        lambda staged: verify(
            staged,
            model,
            _data.by_name(check_inputs, _model.input_specs(model, input_signature)),
            input_signature=input_signature,
            file_format="onnx",
        ),
        format="onnx",
        quantization=quantization,
        verified_on=verified_on,
        parity_bar=bar,
    )
