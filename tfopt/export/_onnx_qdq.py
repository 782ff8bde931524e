"""QAT model -> real int8 QDQ ONNX: int8 weight initializers, trained activation scales.

tf2onnx alone constant-folds a QAT model's weight fake-quants to float and
cannot convert per-channel or narrow-range fake-quants. Here tf2onnx converts
the inference graph (weights folded to their dequantized float values,
activation fake-quants to uint8 QuantizeLinear/DequantizeLinear); then every
weight initializer of a Conv/ConvTranspose/MatMul/Gemm (or an Embedding table
read by Gather, a LayerScale's gamma by Mul) that equals a QAT weight is
replaced by its 8-bit codes feeding a DequantizeLinear (per channel with an
axis where the config says so: int8, or uint8 shifted by 128 for "u8u8"), and
for "s8s8" every activation Q/DQ pair is rewritten to int8 with
the same grid (zero-point - 128). Last, `_onnx_fusable` adds the exact Q/DQ
pairs that let onnxruntime fuse every quantized op into an int8 kernel.
"""

from __future__ import annotations

import numpy as np

from tfopt.export import _model, _onnx_common, _onnx_fusable, acceptance
from tfopt.quantization import export_info

QDQ_FORMATS = ("u8s8", "s8s8", "u8u8")  # activations, weights

QDQ_MIN_OPSET = 13  # per-axis DequantizeLinear
# Op type -> the inputs a weight can come in: a kernel (input 1), an Embedding's table
# (Gather's input 0), a LayerScale's gamma (either side of Mul).
_WEIGHT_CONSUMERS = {
    "Conv": (1,),
    "ConvTranspose": (1,),
    "MatMul": (1,),
    "Gemm": (1,),
    "Gather": (0,),
    "Mul": (0, 1),
}


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
    """Replaces float weight initializers by int8 codes + DequantizeLinear. Returns count.

    `table` lists the QAT model's `WeightGrid`s; each initializer is matched to the
    weight whose values it holds (in any layout tf2onnx chose) and whose grid it is on.
    """
    inits = {i.name: i for i in graph.initializer}
    users = {}
    for node in graph.node:
        for at in _WEIGHT_CONSUMERS.get(node.op_type, ()):
            if len(node.input) > at and node.input[at] in inits:
                users.setdefault(node.input[at], []).append((node, at))
    replaced, used = 0, set()
    new_nodes = []
    for name in list(users):
        array = numpy_helper.to_array(inits[name]).astype(np.float64)
        for index, weight in enumerate(table):
            if index in used:
                continue
            axis = _find_axis(array, weight.channels_last, weight.per_axis)
            if axis is None:
                continue
            scale, zero = weight.scale_zero_point()
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
                    name=f"{weight.layer}_weight_dq",
                    **attrs,
                )
            )
            for node, at in users[name]:
                node.input[at] = dq_out
            graph.initializer.remove(inits[name])
            used.add(index)
            replaced += 1
            # tf2onnx merges equal constants: weights with the same values on the same
            # grid (LayerScale gammas still at their initial value) share this one.
            for other, twin in enumerate(table):
                if (
                    other not in used
                    and twin.per_axis == weight.per_axis
                    and np.array_equal(twin.channels_last, weight.channels_last)
                    and all(map(np.array_equal, twin.scale_zero_point(), (scale, zero)))
                ):
                    used.add(other)
                    replaced += 1
            break
    for i, node in enumerate(new_nodes):
        graph.node.insert(i, node)
    return replaced


def export_qdq(
    model, path, opset, *, input_signature, verify_data, qdq_format, parity_bar, batch_size=None
):
    """Exports a tfopt QAT model to an 8-bit QDQ ONNX file, verified in onnxruntime.

    Called by `tfopt.export.to_onnx` for QAT models (see its docstring for the
    formats). `path` is already checked.

    Raises:
        ValueError: ranges never observed, 16-bit activations (TFLite-only 16x8
            mode), a bad opset or qdq_format, a weight quantizer with no range, or
            a weight tf2onnx laid out in a way that could not be matched to its codes.
        RuntimeError: tf2onnx failed.
    """
    opset = _onnx_common.check_opset(
        opset, QDQ_MIN_OPSET, " for an int8 QDQ file (per-channel DequantizeLinear needs 13)"
    )
    info = export_info(model)
    if info.activation_bits == 16:
        raise ValueError(
            f"QAT model {model.name!r} has 16-bit activations (TFLite's 16x8 mode), which export "
            "to TFLite only: tfopt.export.to_tflite(model, path). tf2onnx converts only 8-bit "
            "fake-quant ops (num_bits=8); for an ONNX file, quantize the float model with "
            "config='tensorrt' or 'tflite' (8-bit activations)."
        )
    info.check_ranges_observed()
    if qdq_format is None:
        qdq_format = "s8s8" if info.symmetric_activations else "u8s8"
    if not isinstance(qdq_format, str) or qdq_format not in QDQ_FORMATS:
        raise ValueError(
            "Argument `qdq_format` must be 'u8s8' (uint8 activations, int8 weights), 's8s8' "
            f"or 'u8u8'. Received: qdq_format={qdq_format!r}"
        )
    bar = acceptance.resolve_bar(parity_bar, f"qdq-{qdq_format}")
    specs = _model.input_specs(model, input_signature)
    check_inputs, verified_on = _onnx_common.parity_inputs(verify_data, specs)
    import onnx
    from onnx import helper, numpy_helper

    table = info.weights()
    no_range = sorted({w.layer for w in table if w.min is None})
    if no_range:
        raise ValueError(
            f"The weight quantizers of {', '.join(map(repr, no_range))} have no min/max range "
            "(Quantizer.get_range returned None), so their int8 codes are unknown. Implement "
            "get_range(weights) -> (min, max) on the quantizer, or export to TFLite, whose "
            "converter reads the fake-quant op itself."
        )
    model_proto = _onnx_common.convert(
        model, _model.with_batch(specs, batch_size), opset, what="QAT model"
    )
    graph = model_proto.graph
    if qdq_format == "s8s8":
        _int8_activations(graph, numpy_helper, onnx)
    replaced = _quantize_weights(graph, table, numpy_helper, helper, qdq_format == "u8u8")
    if replaced != len(table):
        raise ValueError(
            f"Only {replaced} of the {len(table)} quantized weights of {model.name!r} could be "
            "matched to the ONNX graph's initializers; the file would keep float weights."
        )
    _onnx_fusable.make_fusable(graph, numpy_helper, helper)
    onnx.checker.check_model(model_proto)
    return _onnx_common.publish(
        model_proto,
        model,
        path,
        check_inputs,
        verified_on,
        f"qdq-{qdq_format}",
        input_signature,
        bar,
    )
