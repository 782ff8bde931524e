"""What the exporters need to know about a QAT model (imported lazily by tfopt.export)."""

from __future__ import annotations

import numpy as np

from tfopt.quantization.quantize_wrapper import QuantizeLayer, QuantizeWrapper
from tfopt.quantization.quantizers import FixedRangeQuantizer, MovingAverageQuantizer


def activation_ranges(model):
    """[(layer, quantizer, {"min", "max", "count"} variables)] of every activation quantizer."""
    found = []
    for layer in model.layers:
        if isinstance(layer, QuantizeLayer):
            found.append((layer, layer.quantizer, layer._vars))
        elif isinstance(layer, QuantizeWrapper):
            for q, v in zip(layer._output_quantizers, layer._output_vars):
                if isinstance(q, MovingAverageQuantizer):
                    found.append((layer, q, v))
            if layer._pre_quantizer is not None:
                found.append((layer, layer._pre_quantizer, layer._pre_vars))
    return found


def check_ranges_observed(model) -> None:
    """Raises unless every activation range was observed in training at least once."""
    never = [
        layer.name
        for layer, _, v in activation_ranges(model)
        if float(np.asarray(v["count"])) <= 0 or float(np.asarray(v["max"] - v["min"])) <= 0
    ]
    if never:
        shown = ", ".join(repr(n) for n in never[:5]) + (" ..." if len(never) > 5 else "")
        raise ValueError(
            f"QAT model {model.name!r} has activation ranges that were never observed "
            f"({len(never)} quantizers: {shown}), so its int8 export would compute zeros. "
            "Train it first (even one epoch of `fit`), or run it on data with "
            "`model(x, training=True)` to calibrate the ranges."
        )


def activation_bits(model) -> int:
    """16 if the model's activation quantizers are 16-bit (TFLite's 16x8 mode), else 8."""
    bits = {q.num_bits for _, q, _ in activation_ranges(model)}
    for layer in model.layers:
        for q in getattr(layer, "_output_quantizers", ()):
            if isinstance(q, FixedRangeQuantizer):
                bits.add(q.num_bits)
    if 16 in bits and bits != {16}:
        raise ValueError(
            f"QAT model {model.name!r} mixes 16-bit and {min(bits)}-bit activation quantizers; "
            "TFLite runs one activation type per model. Quantize it with one config: "
            "config='tflite16x8' (16x8) or config='tflite' (int8)."
        )
    return 16 if 16 in bits else 8


def _int16x8_unsupported(model) -> list[str]:
    """Layers of a 16-bit QAT model the converter cannot turn into int16 kernels.

    Found with TF 2.21's converter on one-layer models: from 16-bit fake-quant ops it
    refuses int16 CONCATENATION and TILE (UpSampling) tensors, and gives LOGISTIC
    (sigmoid) an output scale of 1/65536 that LiteRT's int16 kernel rejects.
    """
    import keras

    from tfopt.quantization import registry

    found = []
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, QuantizeWrapper) else layer
        if isinstance(inner, keras.layers.Concatenate):
            found.append(f"{inner.name!r} (Concatenate)")
        elif isinstance(inner, (keras.layers.UpSampling1D, keras.layers.UpSampling2D)):
            found.append(f"{inner.name!r} ({type(inner).__name__})")
        elif registry.activation_name(getattr(inner, "activation", None)) == "sigmoid":
            found.append(f"{inner.name!r} (sigmoid)")
    return found


def tflite_quantization(model, quantization: str) -> str:
    """Checks a to_tflite request for a QAT model; returns the exporter's QAT mode name:
    "int8-qat" (8-bit activations) or "int16x8-qat" (16-bit activations, int8 weights)."""
    if activation_bits(model) == 16:
        mode, accepted = "int16x8-qat", ("float32", "int16x8")
        told = "Pass quantization=None or 'int16x8'"
        other = (
            " An int8 file would not compute what it was trained for: to get one, quantize "
            "the float model with config='tflite'."
        )
    else:
        mode, accepted = "int8-qat", ("float32", "int8")
        told = "Pass quantization=None or 'int8'"
        other = ""
    if quantization not in accepted:
        bits = mode.split("-")[0]
        raise ValueError(
            f"Model {model.name!r} is a QAT model: it exports to {bits} from its trained ranges. "
            f"{told}. Received: quantization={quantization!r}. For a float or float16 file, "
            f"export the float model the QAT model was made from.{other}"
        )
    if mode == "int16x8-qat":
        unsupported = _int16x8_unsupported(model)
        if unsupported:
            raise ValueError(
                f"QAT model {model.name!r} has layers TFLite's converter cannot run as int16 "
                f"kernels from 16-bit fake-quant ops: {', '.join(unsupported)}. Train with "
                "config='tflite' (int8 activations) and export quantization='int8', or export "
                "the float model with quantization='int16x8' (post-training 16x8 calibrated "
                "on representative_data)."
            )
    check_ranges_observed(model)
    return mode


# Kernels whose bias the 16x8 kernels read as int64, with the bias's input index.
_BIASED_OPS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}


def int64_biases(flatbuffer: bytes) -> bytes:
    """The 16x8 file with int64 biases, as TFLite's 16x8 spec and LiteRT's kernels take them.

    The converter turns 16-bit fake-quant ops into int16 tensors but writes the
    bias of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / TRANSPOSE_CONV as
    int32 codes, which LiteRT's int16 kernels read as int64 (computing garbage).
    The codes (bias / (input scale x weight scale)) are kept; only their type widens.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

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
                name = bias.name.decode() if isinstance(bias.name, bytes) else bias.name
                raise ValueError(
                    f"The converter clipped the int32 bias {name!r} of a 16x8 kernel: its "
                    "bias is too large for the grid input scale x weight scale. Export with "
                    "activation_bits=8, or retrain with smaller biases."
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
