"""A QAT model with 16-bit activations -> TFLite's 16x8 mode: flatbuffer edits and routes.

Two routes, both through TFLite's own converter and quantizer:

- "fake-quant" (the default): the converter turns the 16-bit fake-quant ops into
  int16 tensors with the trained scales, as it does for int8. It writes the bias of
  CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / TRANSPOSE_CONV as int32 codes,
  which LiteRT's int16 kernels read as int64: `int64_biases` widens them.
- "calibrator", for layers the converter refuses to make int16 from fake-quant ops
  (TF 2.21: CONCATENATION and TILE tensors are rejected, and LOGISTIC gets an output
  scale of 1/65536 that LiteRT's int16 kernel does not run). The model is
  converted to float with its fake-quant ops as QUANTIZE/DEQUANTIZE pairs; the pairs
  are taken out (weights keep their trained grid values, activations keep their
  trained range as calibration statistics) and TFLite's post-training 16x8
  quantizer quantizes the file with those statistics instead of calibrated ones.
"""

from __future__ import annotations

import numpy as np

from tfopt.quantization import grid

# Kernels whose bias the int16 kernels read as int64, with the bias's input index.
_BIASED_OPS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}


def _flatbuffers():
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    return schema, flatbuffer_utils


def needs_calibrator(info) -> list[str]:
    """Layers of a 16-bit QAT model the converter cannot make int16 from fake-quant ops.

    Args:
        info: the model's `tfopt.quantization.QATExportInfo`; a layer's
            `int16_calibrator` says it (TF 2.21's converter refuses int16
            CONCATENATION and TILE tensors, and gives LOGISTIC an output scale
            LiteRT's int16 kernel rejects); so do its `constant_multiplies` (a MUL
            by a constant fails the converter's type check).

    Returns:
        "'name' (Class)" descriptions, empty when the fake-quant route works.
    """
    found = []
    for item in info.layers:
        if item.int16_calibrator:
            kind = type(item.layer).__name__
            if item.spec is None or not item.spec.int16_calibrator:
                kind = "sigmoid"
            found.append(f"{item.layer.name!r} ({kind})")
    found += [f"{name!r} (ops.multiply by a constant)" for name in info.constant_multiplies]
    return found


def calibrator_dense_per_channel(info, reasons: list[str]) -> bool:
    """Checks the weights fit TFLite's 16x8 quantizer, which re-derives every weight scale.

    It quantizes conv kernels per channel and all Dense kernels one way (per
    channel or per tensor) from their values, which reproduces the trained int8
    grid only for 8-bit symmetric narrow-range weights laid out that way. Returns
    whether Dense kernels are per channel.

    Raises:
        ValueError: weights the quantizer would put on another grid.
    """
    dense_modes, wrong = set(), []
    for name, dense, num_bits, per_axis, symmetric, narrow in info.weight_quantizers():
        fits = num_bits == 8 and symmetric and narrow
        if dense:
            dense_modes.add(per_axis)
        elif not per_axis:
            fits = False
        if not fits:
            wrong.append(repr(name))
    if len(dense_modes) > 1:
        wrong.append("Dense kernels both per channel and per tensor")
    if wrong:
        raise ValueError(
            f"QAT model {info.model_name!r} needs TFLite's 16x8 quantizer for "
            f"{', '.join(reasons)}, which quantizes conv kernels per channel and all Dense "
            f"kernels one way, on 8 symmetric bits; these weights were trained otherwise: "
            f"{', '.join(wrong)}. Train with config='tflite16x8' (8-bit per-channel conv "
            "weights), leave those layers out of QAT, or use config='tflite' (int8) for this "
            "model."
        )
    return bool(dense_modes and dense_modes.pop())


def int64_biases(flatbuffer: bytes) -> bytes:
    """The 16x8 file with int64 biases, as TFLite's 16x8 spec and LiteRT's kernels take them.

    The codes (bias / (input scale x weight scale)) are kept; only their type widens.

    Raises:
        ValueError: a bias the converter clipped to the int32 range.
    """
    schema, flatbuffer_utils = _flatbuffers()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    int16, int32 = schema.TensorType.INT16, schema.TensorType.INT32
    users: dict[int, int] = {}
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            users[tensor.buffer] = users.get(tensor.buffer, 0) + 1
    widened = set()
    for graph in model.subgraphs:
        for op in graph.operators:
            index = _BIASED_OPS.get(flatbuffer_utils.opcode_to_name(model, op.opcodeIndex))
            if index is None or len(op.inputs) <= index or op.inputs[index] < 0:
                continue
            data, bias = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[index]]
            if data.type != int16 or bias.type != int32 or op.inputs[index] in widened:
                continue
            codes = np.frombuffer(bytes(bytearray(model.buffers[bias.buffer].data)), np.int32)
            if np.any(np.abs(codes.astype(np.int64)) >= 2**31 - 1):
                raise ValueError(
                    f"The converter clipped the int32 bias {_name(bias)!r} of a 16x8 kernel: "
                    "the bias is too large for the grid input scale x weight scale. Export "
                    "with activation_bits=8, or retrain with smaller biases."
                )
            if users[bias.buffer] > 1:  # a buffer shared with another tensor: copy it
                users[bias.buffer] -= 1
                model.buffers.append(schema.BufferT())
                bias.buffer = len(model.buffers) - 1
            model.buffers[bias.buffer].data = np.frombuffer(
                codes.astype(np.int64).tobytes(), np.uint8
            )
            bias.type = schema.TensorType.INT64
            widened.add(op.inputs[index])
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name(tensor) -> str:
    return tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)


def _constant(model, tensor):
    buffer = model.buffers[tensor.buffer] if tensor.buffer else None
    if buffer is None or buffer.data is None or len(buffer.data) == 0:
        return None
    return np.frombuffer(bytes(bytearray(buffer.data)), np.float32).reshape(tensor.shape)


def _grid_values(values, quantization, bits):
    """`values` put on the grid of a uint QUANTIZE's scale and zero point."""
    scale = np.asarray(quantization.scale, np.float64)
    zero = np.asarray(quantization.zeroPoint, np.float64)
    if scale.size > 1:
        shape = [1] * values.ndim
        shape[quantization.quantizedDimension] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    half = 2 ** (bits - 1)  # the uint codes 0..2^b-1 are the signed codes shifted by half
    codes = grid.codes(values, scale, zero - half, bits) + half
    return ((codes - zero) * scale).astype(np.float32)


def _strip_quantize_pairs(flatbuffer: bytes):
    """The float model without its QUANTIZE/DEQUANTIZE pairs, and {tensor: (min, max)}.

    A pair on a constant (a weight) leaves the constant on its trained grid; a pair
    on an activation leaves the trained range of that tensor, symmetric as the
    16x8 spec wants it: +-(largest code - zero point) x scale.
    """
    schema, flatbuffer_utils = _flatbuffers()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    if len(model.subgraphs) != 1:
        raise ValueError("A 16x8 export through TFLite's quantizer needs a one-graph model.")
    graph = model.subgraphs[0]
    opname = lambda op: flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)  # noqa: E731
    consumers: dict[int, list] = {}
    for op in graph.operators:
        for t in op.inputs:
            consumers.setdefault(t, []).append(op)
    bits_of = {schema.TensorType.UINT16: 16, schema.TensorType.UINT8: 8}
    ranges, dropped = {}, set()
    for op in graph.operators:
        if opname(op) != "QUANTIZE":
            continue
        source, coded = op.inputs[0], graph.tensors[op.outputs[0]]
        pairs = consumers.get(op.outputs[0], [])
        if not pairs or any(opname(p) != "DEQUANTIZE" for p in pairs):
            raise ValueError(
                f"Unexpected float graph: QUANTIZE {_name(coded)!r} does not feed DEQUANTIZE."
            )
        bits = bits_of.get(coded.type)
        if bits is None:
            raise ValueError(f"Unexpected quantized type {coded.type} of {_name(coded)!r}.")
        weight = _constant(model, graph.tensors[source])
        if weight is not None:
            on_grid = _grid_values(weight.astype(np.float64), coded.quantization, bits)
            model.buffers[graph.tensors[source].buffer].data = np.frombuffer(
                on_grid.tobytes(), np.uint8
            )
        else:
            top = (2**bits - 1 - coded.quantization.zeroPoint[0]) * coded.quantization.scale[0]
            ranges[source] = (-float(top), float(top))
        for pair in pairs:
            out = pair.outputs[0]
            for user in consumers.get(out, []):
                user.inputs = [source if t == out else t for t in user.inputs]
            graph.outputs = [source if t == out else t for t in graph.outputs]
            for signature in model.signatureDefs or []:
                for item in signature.outputs:
                    if item.tensorIndex == out:
                        item.tensorIndex = source
            dropped.add(id(pair))
        dropped.add(id(op))
    graph.operators = [op for op in graph.operators if id(op) not in dropped]
    used = sorted({op.opcodeIndex for op in graph.operators})
    model.operatorCodes = [model.operatorCodes[i] for i in used]
    renumber = {old: new for new, old in enumerate(used)}
    for op in graph.operators:
        op.opcodeIndex = renumber[op.opcodeIndex]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), ranges


# Ops whose int16 kernels keep their data input's scale (TFLite's quantizer ties the
# output to the input): a trained range on their output is their input's range too.
_SAME_SCALE = (
    "RESHAPE",
    "SQUEEZE",
    "EXPAND_DIMS",
    "MAX_POOL_2D",
    "AVERAGE_POOL_2D",
    "PAD",
    "PADV2",
    "TRANSPOSE",
    "TILE",
    "STRIDED_SLICE",
    "SLICE",
    "GATHER",
    "RESIZE_NEAREST_NEIGHBOR",
)


def _set_ranges(flatbuffer: bytes, ranges: dict) -> bytes:
    """The calibrated model with the trained ranges in place of the calibrated ones.

    A range also goes back through the ops that keep their input's scale (the
    QAT model quantized the tensor before them), and to every input of a
    CONCATENATION (the QAT model quantizes them once, on the concatenation's grid).
    """
    _, flatbuffer_utils = _flatbuffers()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    ranges = dict(ranges)
    for op in reversed(graph.operators):  # the graph is in topological order
        kind = flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
        if op.outputs[0] not in ranges:
            continue
        if kind == "CONCATENATION":
            for t in op.inputs:
                ranges.setdefault(t, ranges[op.outputs[0]])
        elif kind in _SAME_SCALE:
            ranges.setdefault(op.inputs[0], ranges[op.outputs[0]])
    for index, (low, high) in ranges.items():
        quantization = graph.tensors[index].quantization
        if quantization is None:
            raise ValueError(f"Tensor {_name(graph.tensors[index])!r} was not calibrated.")
        quantization.min, quantization.max = [low], [high]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def quantize_from_float(
    float_qdq: bytes, samples, dense_per_channel: bool, int16_io: bool, batch_size: int = 1
):
    """TFLite's 16x8 quantizer run on the float model with the QAT model's ranges.

    Args:
        float_qdq: the QAT model converted to float (fake-quant ops as pairs).
        samples: a list of input arrays, one per model input, to calibrate the
            tensors the QAT model does not range (pooling and reshape outputs; their
            kernels keep their input's scale).
        dense_per_channel: quantize Dense kernels per channel.
        int16_io: make the file's inputs and outputs int16.
        batch_size: the file's batch (samples are fed in whole batches of it).

    Returns:
        The 16x8 flatbuffer.
    """
    import tensorflow as tf
    from tensorflow.lite.python.optimize import calibrator
    from tensorflow.lite.python.util import modify_model_io_type

    stripped, ranges = _strip_quantize_pairs(float_qdq)

    def feed():
        for i in range(0, samples[0].shape[0] - batch_size + 1, batch_size):
            yield [x[i : i + batch_size] for x in samples]

    calibrated = calibrator.Calibrator(stripped).calibrate(feed)
    with_ranges = _set_ranges(calibrated, ranges)
    # Fed no samples, the quantizer keeps the statistics in the file: the trained ranges.
    quantized = calibrator.Calibrator(with_ranges).calibrate_and_quantize(
        lambda: iter(()),
        tf.float32,
        tf.float32,
        False,  # no float fallback
        activations_type=tf.int16,
        bias_type=tf.int64,
        disable_per_channel=False,
        disable_per_channel_quantization_for_dense_layers=not dense_per_channel,
    )
    if int16_io:
        quantized = modify_model_io_type(quantized, tf.int16, tf.int16)
    return bytes(quantized)
