"""QAT model -> real int8 QDQ ONNX: int8 weight initializers, trained activation scales.

tf2onnx alone constant-folds a QAT model's weight fake-quants to float and
cannot convert per-channel or narrow-range fake-quants. Here tf2onnx converts
the inference graph (weights folded to their dequantized float values,
activation fake-quants to uint8 QuantizeLinear/DequantizeLinear); then every
weight initializer of a Conv/ConvTranspose/MatMul/Gemm that equals a QAT
weight is replaced by its int8 codes feeding a DequantizeLinear (per channel
with an axis where the config says so), and every activation Q/DQ pair is
rewritten to int8 with the same grid (zero-point - 128).
"""

from __future__ import annotations

import numpy as np

from tfopt.export import _files, _model

QDQ_MIN_OPSET = 13  # per-axis DequantizeLinear
_WEIGHT_CONSUMERS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def _weight_table(model):
    """[(wrapper name, quantized_weights() entry)] of every fake-quantized weight."""
    from tfopt.quantization.quantize_wrapper import QuantizeWrapper

    table = []
    for layer in model.layers:
        if isinstance(layer, QuantizeWrapper):
            for entry in layer.quantized_weights():
                table.append((layer.name, entry))
    return table


def _grid(entry):
    """(codes in channels-last layout, per-channel scale, per-channel zero point)."""
    from tfopt.quantization.quantizers import nudged

    q = entry["quantizer"]
    scale, zero = nudged(entry["min"], entry["max"], q.num_bits, q.narrow_range)
    cl = entry["channels_last"].astype(np.float64)
    codes = np.round(cl / scale) + zero
    return codes, scale, zero


def _find_axis(array, channels_last, per_axis):
    """The axis of `array` holding the output channels (or -1 for a per-tensor match)."""
    if array.size != channels_last.size:
        return None
    want = np.sort(channels_last.ravel())
    if not np.allclose(np.sort(array.ravel()), want, rtol=1e-5, atol=1e-7):
        return None
    if not per_axis:
        return -1
    n = channels_last.shape[-1]
    flat = channels_last.reshape(-1, n)
    for axis, dim in enumerate(array.shape):
        if dim != n:
            continue
        moved = np.moveaxis(array, axis, -1).reshape(-1, n)
        if all(
            np.allclose(np.sort(moved[:, c]), np.sort(flat[:, c]), rtol=1e-5, atol=1e-7)
            for c in range(n)
        ):
            return axis
    return None


def _int8_activations(graph, numpy_helper, onnx):
    """Rewrites uint8 Q/DQ zero points to int8 (same grid) so the file is int8 QDQ."""
    inits = {i.name: i for i in graph.initializer}
    consts = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    done = set()
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 3:
            continue
        name = node.input[2]
        if name in done:
            continue
        if name in inits:
            value = numpy_helper.to_array(inits[name])
            if value.dtype == np.uint8:
                new = numpy_helper.from_array((value.astype(np.int16) - 128).astype(np.int8), name)
                inits[name].CopyFrom(new)
        elif name in consts:
            attr = next(a for a in consts[name].attribute if a.name == "value")
            value = numpy_helper.to_array(attr.t)
            if value.dtype == np.uint8:
                attr.t.CopyFrom(
                    numpy_helper.from_array((value.astype(np.int16) - 128).astype(np.int8), name)
                )
        done.add(name)
    del onnx


def _quantize_weights(graph, table, numpy_helper, helper, unsigned=False):
    """Replaces float weight initializers by int8 codes + DequantizeLinear. Returns count."""
    inits = {i.name: i for i in graph.initializer}
    users = {}
    for node in graph.node:
        if node.op_type in _WEIGHT_CONSUMERS and len(node.input) > 1 and node.input[1] in inits:
            users.setdefault(node.input[1], []).append(node)
    replaced, used = 0, set()
    new_nodes = []
    for name in list(users):
        array = numpy_helper.to_array(inits[name]).astype(np.float64)
        for index, (layer_name, entry) in enumerate(table):
            if index in used:
                continue
            per_axis = entry["quantizer"].per_axis
            axis = _find_axis(array, entry["channels_last"], per_axis)
            if axis is None:
                continue
            _, scale, zero = _grid(entry)
            shape = [1] * array.ndim
            if axis >= 0:
                shape[axis] = -1
            s = scale.reshape(shape) if axis >= 0 else scale.reshape(())
            z = zero.reshape(shape) if axis >= 0 else zero.reshape(())
            codes = np.round(array / s) + z
            if np.abs((codes - z) * s - array).max() > 1e-5 * max(1.0, np.abs(array).max()):
                continue  # not on this weight's grid
            q_name, s_name, z_name = f"{name}_int8", f"{name}_scale", f"{name}_zero_point"
            shift, dtype = (128, np.uint8) if unsigned else (0, np.int8)
            graph.initializer.append(
                numpy_helper.from_array((np.clip(codes, -128, 127) + shift).astype(dtype), q_name)
            )
            graph.initializer.append(numpy_helper.from_array(scale.astype(np.float32), s_name))
            graph.initializer.append(
                numpy_helper.from_array((np.clip(zero, -128, 127) + shift).astype(dtype), z_name)
            )
            attrs = {"axis": axis} if axis >= 0 else {}
            dq_out = f"{name}_dequantized"
            new_nodes.append(
                helper.make_node(
                    "DequantizeLinear",
                    [q_name, s_name, z_name],
                    [dq_out],
                    name=f"{layer_name}_weight_dq",
                    **attrs,
                )
            )
            for node in users[name]:
                node.input[1] = dq_out
            graph.initializer.remove(inits[name])
            used.add(index)
            replaced += 1
            break
    for i, node in enumerate(new_nodes):
        graph.node.insert(i, node)
    return replaced


def _default_format(model) -> str:
    from tfopt.quantization import _export

    symmetric = any(q.symmetric for _, q, _ in _export.activation_ranges(model))
    return "s8s8" if symmetric else "u8u8"


def to_onnx_qdq(
    model,
    path,
    opset=None,
    *,
    input_signature=None,
    verify_data=None,
    qdq_format: str | None = None,
):
    """Exports a tfopt QAT model to an 8-bit QDQ ONNX file and verifies it in onnxruntime.

    Called by `tfopt.export.to_onnx` for QAT models. Two encodings of the same
    trained grids: "s8s8" (int8 weights and activations; symmetric ones get
    zero-point 0, what TensorRT takes) and "u8u8" (the same codes shifted by 128
    into uint8). onnxruntime's int8 kernels on x86 CPUs without VNNI saturate
    int16 sums of u8 x s8 products, so its own documentation recommends U8U8
    there; it is the default for asymmetric ("tflite" preset) models, "s8s8" for
    symmetric ("tensorrt" preset) ones.

    Example:

    ```python
    result = tfopt.export.to_onnx(qat_model, "model_int8.onnx")
    ```

    Args:
        model: a QAT model from tfopt.quantization with observed ranges.
        path: the output `.onnx` file.
        opset: ONNX opset, 13 to 18. Defaults to `None` (17).
        input_signature: for subclassed models. Defaults to `None`.
        verify_data: inputs for the parity check. Defaults to `None` (random).
        qdq_format: "s8s8" or "u8u8". Defaults to `None` (by the activations'
            symmetry, see above).

    Returns:
        An `ExportResult` with quantization "qdq-s8s8" or "qdq-u8u8".

    Raises:
        ValueError: ranges never observed, 16-bit activations (TFLite-only 16x8
            mode), a bad opset, or a weight tf2onnx laid out in a way that could not
            be matched to its int8 codes.
        RuntimeError: tf2onnx failed.
    """
    from tfopt.export.onnx import DEFAULT_OPSET, _convert, _parity_inputs, _publish
    from tfopt.quantization import _export
    from tfopt.quantization.quantizers import onnx_export_mode

    _model.check_keras_model(model)
    path = _files.check_output_path(path, (".onnx",))
    opset = DEFAULT_OPSET if opset is None else opset
    if not isinstance(opset, int) or isinstance(opset, bool) or not 13 <= opset <= 18:
        raise ValueError(
            "Argument `opset` must be an int from 13 to 18 for an int8 QDQ file (per-channel "
            f"DequantizeLinear needs 13). Received: opset={opset!r}. Try opset={DEFAULT_OPSET}."
        )
    if _export.activation_bits(model) == 16:
        raise ValueError(
            f"QAT model {model.name!r} has 16-bit activations (TFLite's 16x8 mode), which export "
            "to TFLite only: tfopt.export.to_tflite(model, path). tf2onnx converts only 8-bit "
            "fake-quant ops (num_bits=8); for an ONNX file, quantize the float model with "
            "config='tensorrt' or 'tflite' (8-bit activations)."
        )
    _export.check_ranges_observed(model)
    if qdq_format is None:
        qdq_format = _default_format(model)
    if qdq_format not in ("s8s8", "u8u8"):
        raise ValueError(
            f"Argument `qdq_format` must be 's8s8' or 'u8u8'. Received: qdq_format={qdq_format!r}"
        )
    specs = _model.input_specs(model, input_signature)
    check_inputs, verified_on = _parity_inputs(verify_data, specs)
    import onnx
    from onnx import helper, numpy_helper

    table = _weight_table(model)
    model_proto = _convert(model, specs, opset, what="QAT model", mode=onnx_export_mode())
    graph = model_proto.graph
    unsigned = qdq_format == "u8u8"
    if not unsigned:
        _int8_activations(graph, numpy_helper, onnx)
    replaced = _quantize_weights(graph, table, numpy_helper, helper, unsigned)
    if replaced != len(table):
        raise ValueError(
            f"Only {replaced} of the {len(table)} quantized weights of {model.name!r} could be "
            "matched to the ONNX graph's initializers; the file would keep float weights."
        )
    onnx.checker.check_model(model_proto)
    return _publish(
        model_proto, model, path, check_inputs, verified_on, f"qdq-{qdq_format}", input_signature
    )
