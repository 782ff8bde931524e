"""The quantization grid of a fake-quant range: nudged scale and zero point, codes, steps.

One place for the arithmetic every part of tfopt shares: the quantizers and the
wrapper (tensors), the ONNX and TFLite exporters and the parity checks (numpy).
It is the arithmetic of TensorFlow's `tf.quantization.fake_quant_with_min_max_vars`
(tensorflow/core/kernels/fake_quant_ops_functor.h, `Nudge`): a range
[min, max] on `num_bits` bits is moved ("nudged") so that 0.0 is exactly
representable, then a value v is stored as the code round(v / scale) + zero_point.

Codes here are *signed*: for 8 bits they lie in [-128, 127] ([-127, 127] with
`narrow_range`), the convention of TFLite's int8 tensors and ONNX's int8 QDQ.

Example:

```python
from tfopt.quantization import grid

scale, zero_point = grid.nudged(-1.0, 1.0, num_bits=8, narrow_range=True)
codes = grid.codes(np.array([0.5, -1.0]), scale, zero_point, num_bits=8, narrow_range=True)
```
"""

from __future__ import annotations

import numpy as np


def code_limits(num_bits: int, narrow_range: bool) -> tuple[int, int]:
    """The smallest and largest signed code of a grid.

    Args:
        num_bits: bits of the grid, e.g. 8 or 16.
        narrow_range: drop the lowest code (-127..127 for 8 bits).

    Returns:
        (lowest, highest) signed codes, ints.
    """
    return -(2 ** (num_bits - 1)) + int(bool(narrow_range)), 2 ** (num_bits - 1) - 1


def nudged(min_value, max_value, num_bits: int, narrow_range: bool):
    """TF's fake-quant grid of a range: the scale and the zero point as a signed code.

    Same arithmetic as `tf.quantization.fake_quant_with_min_max_vars`, in float64
    (per channel when `min_value`/`max_value` are vectors). A range with no width
    gets scale 1.

    Args:
        min_value: the range's low end (float or float array).
        max_value: the range's high end, same shape.
        num_bits: bits of the grid (2 to 16).
        narrow_range: drop the lowest code.

    Returns:
        (scale, zero_point): float32 and int64 arrays of the shape of `min_value`;
        a value v is stored as round(v / scale) + zero_point.
    """
    low, high = np.asarray(min_value, np.float64), np.asarray(max_value, np.float64)
    quant_min = 1.0 if narrow_range else 0.0
    quant_max = float(2**num_bits - 1)
    scale = (high - low) / (quant_max - quant_min)
    scale = np.where(scale > 0, scale, 1.0)
    zero_from_min = quant_min - low / scale
    zero = np.clip(np.floor(zero_from_min + 0.5), quant_min, quant_max)  # std::round, >= 0 here
    return scale.astype(np.float32), (zero - 2 ** (num_bits - 1)).astype(np.int64)


def codes(values, scale, zero_point, num_bits: int = 8, narrow_range: bool = False):
    """Signed integer codes of `values` on a grid (numpy, rounded half to even, clipped).

    Args:
        values: float array.
        scale: the grid's scale, broadcastable to `values`.
        zero_point: the grid's signed zero point, broadcastable to `values`.
        num_bits: bits of the grid. Defaults to `8`.
        narrow_range: drop the lowest code. Defaults to `False`.

    Returns:
        An int64 array of the shape of `values`.
    """
    low, high = code_limits(num_bits, narrow_range)
    q = np.round(np.asarray(values, np.float64) / np.asarray(scale, np.float64)) + zero_point
    return np.clip(q, low, high).astype(np.int64)


def step(min_value, max_value, num_bits: int, narrow_range: bool):
    """The step (scale) of a range's grid before nudging, as the tensor or array given.

    (max - min) / (number of codes - 1): works on floats, numpy arrays and tensors.
    """
    return (max_value - min_value) / float(2**num_bits - 1 - int(bool(narrow_range)))


def nudged_tensor(min_value, max_value, num_bits: int, narrow_range: bool):
    """`nudged` on float32 tensors: (scale, nudged minimum, unsigned zero point).

    Args:
        min_value: the range's low end (tensor, per channel or scalar).
        max_value: the range's high end.
        num_bits: bits of the grid.
        narrow_range: drop the lowest code.

    Returns:
        (scale, nudged_min, zero) float32 tensors; zero is the *unsigned* code of 0.0
        (subtract 2^(num_bits-1) for the signed one).
    """
    import tensorflow as tf

    low = tf.convert_to_tensor(min_value, tf.float32)
    high = tf.convert_to_tensor(max_value, tf.float32)
    narrow = float(bool(narrow_range))
    quant_max = float(2**num_bits - 1)
    scale = (high - low) / (quant_max - narrow)
    scale = tf.where(scale > 0, scale, 1.0)
    zero = tf.clip_by_value(tf.floor(narrow - low / scale + 0.5), narrow, quant_max)
    return scale, (narrow - zero) * scale, zero


def signed_code_tensor(values, min_value, max_value, num_bits: int, narrow_range: bool):
    """The signed (unrounded) code of `values` on a range's nudged grid, with the scale.

    Args:
        values: float32 tensor.
        min_value: the range's low end (a tensor or float).
        max_value: the range's high end (a tensor or float).
        num_bits: bits of the grid.
        narrow_range: drop the lowest code.

    Returns:
        (code, scale, nudged_min) tensors: values = (code + 2^(b-1)) * scale + nudged_min.
    """
    scale, nudged_min, _ = nudged_tensor(min_value, max_value, num_bits, narrow_range)
    return (values - nudged_min) / scale - 2.0 ** (num_bits - 1), scale, nudged_min


def one_step_slack(peak: float, output_step: float, floor: float = 1e-4) -> float:
    """Float32 rounding, in steps, of an output exactly one grid step off.

    Both a Keras fake-quant output and a runtime's dequantized integer output hold
    code * step in float32 (relative error 2^-24 each), so an element one step off
    can read as 1 + 2^-23 * |value| / step steps: up to 3e-5 for 255 int8 codes,
    up to 0.008 for 65535 int16 codes. `floor` (1e-4 of a step) covers the int8 case.

    Args:
        peak: the largest |value| of the output.
        output_step: the output grid's step (> 0), else `floor` is returned.
        floor: the smallest slack. Defaults to `1e-4`.

    Returns:
        The slack in steps, a float.
    """
    if not output_step:
        return floor
    return max(floor, 2.0**-22 * float(peak) / float(output_step))
