"""What the exporters need to know about a QAT model (imported lazily by tfopt.export)."""

from __future__ import annotations

import numpy as np

from tfopt.quantization.quantize_wrapper import QuantizeLayer, QuantizeWrapper
from tfopt.quantization.quantizers import MovingAverageQuantizer


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


def tflite_quantization(model, quantization: str) -> str:
    """Checks a to_tflite request for a QAT model; returns the exporter's QAT mode name."""
    if quantization not in ("float32", "int8"):
        raise ValueError(
            f"Model {model.name!r} is a QAT model: it exports to int8 from its trained ranges. "
            f"Pass quantization=None or 'int8'. Received: quantization={quantization!r}. For a "
            "float or float16 file, export the float model the QAT model was made from."
        )
    check_ranges_observed(model)
    return "int8-qat"
