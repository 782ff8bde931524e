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
        from tfopt.quantization import _tflite16x8

        reasons = _tflite16x8.needs_calibrator(model)
        if reasons:  # checked here, before anything is converted
            _tflite16x8.calibrator_dense_per_channel(model, reasons)
    check_ranges_observed(model)
    return mode
