"""What the integer kernels compute that a plain fake-quant does not: emulated in Keras.

- Bias: TFLite and ONNX Runtime store a conv/dense bias as int32 codes of step
  s_input * s_weight (per output channel); inference rounds the float bias to
  that grid so the Keras model adds exactly the bias the int8 kernel adds.
- Average pooling: TFLite's int8/int16 AVERAGE_POOL_2D keeps its input's scale and
  zero point and divides the sum of the signed codes by the window count,
  rounding half away from zero; fake-quant would round half up.
"""

from __future__ import annotations

import tensorflow as tf

from tfopt.quantization import _trace, grid

# Average-pooling ties, in codes: averages are multiples of 1/count, so anything within
# TIE of a half code is a tie (float error is ~1e-5 code).
TIE = 1e-3


def quantizer_range(quantizer, qvars):
    """(min, max) float32 tensors of a quantizer's grid, or None when it has no range."""
    found = quantizer.get_range(qvars)
    if found is None:
        return None
    low, high = found
    return tf.convert_to_tensor(low, tf.float32), tf.convert_to_tensor(high, tf.float32)


def _bits(quantizer) -> tuple[int, bool]:
    return int(getattr(quantizer, "num_bits", 8)), bool(getattr(quantizer, "narrow_range", False))


def quantizer_step(quantizer, qvars):
    """The scale of a quantizer's grid as a tensor (per channel for weights), or None."""
    found = quantizer_range(quantizer, qvars)
    if found is None:
        return None
    return grid.step(*found, *_bits(quantizer))


def bias_grid(input_source, weight_quantizer, weight_vars):
    """The int32 bias grid (input step x weight step), or None when either is unknown.

    Args:
        input_source: (quantizer, variables) of the layer's input grid, or None.
        weight_quantizer, weight_vars: the kernel's quantizer and its variables.
    """
    if input_source is None:
        return None
    input_step = quantizer_step(*input_source)
    weight_step = quantizer_step(weight_quantizer, weight_vars)
    if input_step is None or weight_step is None:
        return None
    step = input_step * weight_step
    return tf.where(step > 0, step, 1.0)


def round_bias(bias, bias_grid_step):
    """`bias` rounded onto its int32 grid (unchanged when the grid is None)."""
    if bias_grid_step is None:
        return bias
    return tf.round(bias / bias_grid_step) * bias_grid_step


def _signed_code(values, quantizer, qvars):
    low, high = quantizer_range(quantizer, qvars)
    return grid.signed_code_tensor(values, low, high, *_bits(quantizer))


def round_like_pooling(values, quantizer, qvars):
    """Averages of on-grid values, rounded back onto that grid as the integer kernels do.

    Computed on the signed code of the average (a multiple of 1/count, so a 1e-3
    code tolerance tells ties from float error).
    """
    code, scale, nudged_min = _signed_code(values, quantizer, qvars)
    rounded = tf.sign(code) * tf.floor(tf.abs(code) + 0.5 + TIE)
    return (rounded + 2.0 ** (quantizer.num_bits - 1)) * scale + nudged_min


def onto_input_grid(outputs, training, source, quantize_active):
    """Average pooling's output on its input's grid, rounded as the int8 kernel does.

    While an exporter traces the model, the converters read a fake-quant with the
    input's range instead (for ONNX, whose QuantizeLinear rounds ties to even,
    ties are first nudged away from zero).

    Args:
        outputs: the pooled float tensor.
        training: whether the layer is called in training.
        source: (quantizer, variables) of the input's grid.
        quantize_active: the wrapper's quantize_active flag (0/1).
    """
    quantizer, qvars = source
    if _trace.tracing():
        if _trace.target() == "onnx":
            code, scale, _ = _signed_code(outputs, quantizer, qvars)
            outputs = outputs + TIE * scale * tf.sign(code)
        return quantizer(outputs, False, qvars, quantize_active=quantize_active, ranges_frozen=1.0)
    rounded = round_like_pooling(outputs, quantizer, qvars)
    if training:  # straight-through, and identity until quantization starts
        rounded = outputs + tf.stop_gradient(rounded - outputs) * quantize_active
    return rounded
