"""Fake-quantizers: weight (last-value min/max) and activation (moving-average min/max).

Both emit `tf.quantization.fake_quant_with_min_max_vars` (or its per-channel
form), the op the TFLite converter folds into int8 kernels, and keep their ranges
in non-trainable variables of the layer that owns them, so the ranges are saved
with the model and averaged across replicas under `tf.distribute`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfopt._keras import in_symbolic_call
from tfopt.quantization import _trace, grid


def _check_bits(num_bits, allow_16: bool = False) -> int:
    """num_bits, checked: 2 to 8 (int8 kernels), or also 16 for activations (TFLite 16x8)."""
    valid = isinstance(num_bits, int) and not isinstance(num_bits, bool)
    valid = valid and (2 <= num_bits <= 8 or (allow_16 and num_bits == 16))
    if not valid:
        allowed = "an int from 2 to 8, or 16" if allow_16 else "an int from 2 to 8"
        raise ValueError(f"Argument `num_bits` must be {allowed}. Received: num_bits={num_bits!r}")
    return num_bits


def fake_quant(x, min_value, max_value, num_bits: int, narrow_range: bool, per_axis: bool):
    """Fake-quantizes `x` to `num_bits` on [min_value, max_value] (per last axis if `per_axis`)."""
    if per_axis:
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(
            x, min_value, max_value, num_bits=num_bits, narrow_range=narrow_range
        )
    return tf.quantization.fake_quant_with_min_max_vars(
        x, min_value, max_value, num_bits=num_bits, narrow_range=narrow_range
    )


class Quantizer:
    """Base class of the fake-quantizers (tfmot's `Quantizer` interface, on Keras 3).

    A subclass implements `build(tensor_shape, name, layer) -> dict` (the
    variables it keeps, made with `layer.add_weight`), `__call__(inputs, training,
    weights, **kwargs) -> tensor` and `get_config()`, exactly as in
    `tfmot.quantization.keras.quantizers.Quantizer`: a tfmot quantizer ports by
    changing its import. tfopt's wrappers pass two keyword arguments a quantizer
    may honour (tfmot's quantizers ignore unknown ones):

    - `quantize_active`: 1.0 to fake-quantize, 0.0 to pass values through while
      training (`QATCallback`'s quantization delay).
    - `ranges_frozen`: 1.0 to stop updating ranges (`QATCallback`'s freeze).

    Each is a Python float when the training step was traced with a fixed
    value, else a 0/1 float variable.

    What the exporters read from a quantizer: `get_range(weights)` (the grid's
    min/max; without it a weight cannot go into a QDQ ONNX file, a TFLite file
    still can) and the attributes `num_bits` (default 8), `narrow_range`
    (default False), `per_axis` (default False) and `symmetric` (default False):
    set them to what `__call__` does. One Keras 3 difference from tfmot's guide:
    `layer.add_weight` takes the name as a keyword (`name=...`); its first
    positional argument is the shape.

    Example:

    ```python
    class ClipQuantizer(tfopt.quantization.quantizers.Quantizer):
        def build(self, tensor_shape, name, layer):
            return {"max": layer.add_weight(name=f"{name}_max", shape=(),
                                            initializer=keras.initializers.Constant(6.0),
                                            trainable=False)}

        def __call__(self, inputs, training, weights, **kwargs):
            return tf.quantization.fake_quant_with_min_max_vars(
                inputs, -weights["max"], weights["max"], num_bits=8, narrow_range=True)

        def get_config(self):
            return {}
    ```
    """

    def build(self, tensor_shape, name: str, layer: keras.layers.Layer) -> dict:
        """Makes the quantizer's variables on `layer`; returns them by name."""
        raise NotImplementedError

    def __call__(self, inputs, training, weights, **kwargs):
        """Fake-quantizes `inputs` with the variables `weights` made by `build`."""
        raise NotImplementedError

    def get_range(self, weights):
        """The (min, max) of the quantizer's grid, or None when it has no min/max range.

        The exporters and the wrapper read a quantizer's grid from here: by
        default the `"min"` and `"max"` variables, when `build` made them.

        Args:
            weights: the dict `build` returned.

        Returns:
            (min, max) (variables, tensors or floats), or None.
        """
        if "min" in weights and "max" in weights:
            return weights["min"], weights["max"]
        return None

    def get_config(self) -> dict:
        """The quantizer's constructor arguments (a flat dict)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict):
        """The quantizer of a `get_config` dict."""
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))


def _flags(kwargs) -> tuple:
    """(quantize_active, ranges_frozen) of a quantizer call: on and not frozen by default."""
    return kwargs.get("quantize_active", 1.0), kwargs.get("ranges_frozen", 0.0)


def _is_const(flag, value: float) -> bool:
    """True when `flag` is the Python float `value` (a flag read when the step was traced)."""
    return isinstance(flag, float) and flag == value


def _select(flag, when_one, when_zero):
    """Returns `flag * when_one + (1 - flag) * when_zero`, for a 0/1 float flag.

    The flag is a variable, or a Python 0.0/1.0 read when the step was traced:
    then only that branch is built.
    """
    if _is_const(flag, 1.0) or _is_const(flag, 0.0):
        return when_one if flag == 1.0 else when_zero
    return when_zero + flag * (when_one - when_zero)


def _assign_add(variable, delta):
    """Adds `delta` to `variable` as one AssignAddVariableOp.

    Keras' assign_add reads, adds and assigns: three ops. Under tf.distribute the
    variable's own aggregation applies.
    """
    target = variable.value  # the backend variable (a tensor inside a StatelessScope)
    if isinstance(target, tf.Variable):
        target.assign_add(tf.cast(delta, target.dtype))
    else:
        variable.assign_add(delta)


@keras.saving.register_keras_serializable(package="tfopt")
class LastValueQuantizer(Quantizer):
    """Weight fake-quantizer: the range is the min/max of the weight's current value.

    Example:

    ```python
    q = tfopt.quantization.LastValueQuantizer(num_bits=8, per_axis=True, symmetric=True,
                                              narrow_range=True)
    ```

    Args:
        num_bits: bits, 2 to 8. Defaults to `8`.
        per_axis: one range per slice of the last axis (output channel).
            Defaults to `False`.
        symmetric: range [-max|w|, max|w|] (zero-point 0). Defaults to `True`.
        narrow_range: drop the lowest code (-127..127 for 8 bits). Defaults to `True`.
    """

    def __init__(
        self,
        num_bits: int = 8,
        per_axis: bool = False,
        symmetric: bool = True,
        narrow_range: bool = True,
    ):
        self.num_bits = _check_bits(num_bits)
        self.per_axis = bool(per_axis)
        self.symmetric = bool(symmetric)
        self.narrow_range = bool(narrow_range)

    def build(self, shape, name, layer):
        """Makes the `min` and `max` variables on `layer` (per last-axis slice if `per_axis`)."""
        range_shape = (int(shape[-1]),) if self.per_axis else ()
        kwargs = dict(shape=range_shape, trainable=False, aggregation="mean")
        return {
            "min": layer.add_weight(name=f"{name}_min", initializer="zeros", **kwargs),
            "max": layer.add_weight(name=f"{name}_max", initializer="zeros", **kwargs),
        }

    def ranges(self, inputs):
        """The (min, max) this quantizer reads off a weight value."""
        axes = list(range(len(inputs.shape) - 1)) if self.per_axis else None
        if self.symmetric:
            top = tf.reduce_max(tf.abs(inputs), axis=axes)
            return -top, top
        low = tf.minimum(tf.reduce_min(inputs, axis=axes), 0.0)
        high = tf.maximum(tf.reduce_max(inputs, axis=axes), 0.0)
        return low, high

    def __call__(self, inputs, training, weights, **kwargs):
        """Fake-quantizes the weight `inputs` on its min/max range.

        While training, unless `ranges_frozen`, the stored range is first set to
        the weight's current min/max (no gradient flows through it); with
        `quantize_active` 0, training passes the weight through unchanged.
        """
        active, frozen = _flags(kwargs)
        if training and not _is_const(frozen, 1.0):
            # A statistic, not a trainable function of the weights (as in tfmot, which
            # reads it back from its variables): no gradient through max|w|.
            low, high = self.ranges(tf.stop_gradient(inputs))
            low = _select(frozen, weights["min"], low)
            high = _select(frozen, weights["max"], high)
            weights["min"].assign(low)
            weights["max"].assign(high)
        else:
            low, high = weights["min"], weights["max"]
        quantized = fake_quant(inputs, low, high, self.num_bits, self.narrow_range, self.per_axis)
        if training:
            return _select(active, quantized, inputs)
        return quantized

    def get_config(self):
        """Returns `num_bits`, `per_axis`, `symmetric` and `narrow_range` as a dict."""
        return {
            "num_bits": self.num_bits,
            "per_axis": self.per_axis,
            "symmetric": self.symmetric,
            "narrow_range": self.narrow_range,
        }


def _check_observed(weights) -> None:
    """Raises when an activation range was never observed (inference would be all zeros)."""
    with tf.init_scope():  # the values now, also while a predict function is traced
        low, high, count = (float(keras.ops.convert_to_numpy(weights[k])) for k in weights)
    if count == 0.0 and low == high == 0.0:
        name = getattr(weights["count"], "path", weights["count"].name).rsplit("_count", 1)[0]
        raise ValueError(
            f"The QAT model's activation range {name!r} was never observed: it is empty "
            "(min = max = 0, no training batch seen), so inference would output zeros. "
            "Train the QAT model (model.fit, at least one step) before predicting or "
            "evaluating it; to quantize a trained float model without training, use "
            "tfopt.export.to_tflite(float_model, path, quantization='int8', "
            "representative_data=...)."
        )


@keras.saving.register_keras_serializable(package="tfopt")
class MovingAverageQuantizer(Quantizer):
    """Activation fake-quantizer: the range is an EMA of the batch min/max seen in training.

    The first observed batch with a nonzero range sets the range; the n-th later
    batch moves it with decay `min(ema_decay, (1 + n) / (10 + n))`, the warm-up of
    `tf.train.ExponentialMovingAverage` with `num_updates`, so ranges keep up with
    activations that grow while a model trains from scratch (a fixed 0.999 pinned
    them to the first batches and the model collapsed to a constant). A `count`
    variable records how many batches were observed: inference and export of a
    range never observed are refused (ValueError) rather than computing zeros.

    Example:

    ```python
    q = tfopt.quantization.MovingAverageQuantizer(num_bits=8, symmetric=False)
    ```

    Args:
        num_bits: bits, 2 to 8, or 16 (TFLite's 16x8 mode, with `symmetric=True`:
            codes -32767..32767, zero-point 0). Defaults to `8`.
        per_axis: must be False (activation ranges are per tensor). Defaults to `False`.
        symmetric: range [-m, m] with zero-point 0 (then narrow range is used).
            Defaults to `False`.
        narrow_range: drop the lowest code. Defaults to `False`.
        ema_decay: decay of the moving average, in [0, 1). Defaults to `0.999`.
    """

    def __init__(
        self,
        num_bits: int = 8,
        per_axis: bool = False,
        symmetric: bool = False,
        narrow_range: bool = False,
        ema_decay: float = 0.999,
    ):
        self.num_bits = _check_bits(num_bits, allow_16=True)
        if per_axis:
            raise ValueError(
                "Argument `per_axis` must be False: activation ranges are per tensor. "
                f"Received: per_axis={per_axis!r}"
            )
        self.per_axis = False
        self.symmetric = bool(symmetric)
        self.narrow_range = bool(narrow_range) or self.symmetric
        if not isinstance(ema_decay, (int, float)) or not 0.0 <= ema_decay < 1.0:
            raise ValueError(
                f"Argument `ema_decay` must be in [0, 1). Received: ema_decay={ema_decay!r}"
            )
        self.ema_decay = float(ema_decay)

    # Set by QuantizeWrapper.build for the output of a ReLU/ReLU6 (not serialized): the
    # batch minimum is then >= 0, so the range's low end is 0 (-high when symmetric)
    # and the train step skips computing and averaging it.
    _nonnegative = False

    def build(self, shape, name, layer):
        """Makes the scalar `min`, `max` and `count` (batches observed) variables on `layer`."""
        kwargs = dict(shape=(), trainable=False, aggregation="mean")
        return {
            "min": layer.add_weight(name=f"{name}_min", initializer="zeros", **kwargs),
            "max": layer.add_weight(name=f"{name}_max", initializer="zeros", **kwargs),
            "count": layer.add_weight(name=f"{name}_count", initializer="zeros", **kwargs),
        }

    def _observe(self, inputs, weights, frozen):
        """The training-time range update: the batch range, averaged into the stored one.

        The first batch that shows a range sets it (decay 0), later ones move it with
        `ema_decay`. The low end is computed and averaged only when it is free: it is
        0 for a ReLU output (`_nonnegative`) and -high when symmetric. Each variable
        is read once and the count takes one AssignAdd op: on a small CNN the train
        step's op count, not its arithmetic, sets its time.
        """
        x = inputs if inputs.dtype == tf.float32 else tf.cast(inputs, tf.float32)
        x = tf.stop_gradient(x)
        high, low = tf.reduce_max(x), None  # low None: it follows from high
        if not self._nonnegative:
            low = tf.minimum(tf.reduce_min(x), 0.0)
            high = tf.maximum(high, 0.0)
            if self.symmetric:
                high, low = tf.maximum(-low, high), None
        old_high = tf.convert_to_tensor(weights["max"])
        old_low = 0.0 if low is None else tf.convert_to_tensor(weights["min"])
        # TF's ExponentialMovingAverage with num_updates: min(decay, (1 + n) / (10 + n)).
        count = tf.convert_to_tensor(weights["count"])
        warmup = tf.minimum(self.ema_decay, (1.0 + count) / (10.0 + count))
        decay = tf.where(old_high > old_low, warmup, 0.0)
        high = _select(frozen, old_high, high + decay * (old_high - high))
        weights["max"].assign(high)
        if low is None:
            low = -high if self.symmetric else tf.zeros_like(high)
        else:
            low = _select(frozen, old_low, low + decay * (old_low - low))
        if self.symmetric or not self._nonnegative:  # else the stored min stays 0
            weights["min"].assign(low)
        _assign_add(weights["count"], 1.0 - frozen)
        return low, high

    def __call__(self, inputs, training, weights, **kwargs):
        """Fake-quantizes the activation `inputs` on its moving-average range.

        While training, unless `ranges_frozen`, the batch's min/max first moves the
        stored range; with `quantize_active` 0, training passes values through
        unchanged. While an ONNX export traces a narrow-range quantizer, the same
        grid is written as a full-range one.
        """
        active, frozen = _flags(kwargs)
        if training and _is_const(frozen, 1.0):  # frozen when traced: read the ranges
            low, high = weights["min"], weights["max"]
        elif training:
            low, high = self._observe(inputs, weights, frozen)
        else:
            low, high = weights["min"], weights["max"]
            if not _trace.tracing() and not in_symbolic_call():
                _check_observed(weights)
            if self.narrow_range and _trace.target() == "onnx":
                # Narrow range [low, high] on codes 1..255 is the grid of codes 0..255
                # from low - step: the same scale and zero-point for tf2onnx.
                step = grid.step(low, high, self.num_bits, narrow_range=True)
                quantized = fake_quant(inputs, low - step, high, self.num_bits, False, False)
                return quantized
        quantized = fake_quant(inputs, low, high, self.num_bits, self.narrow_range, False)
        if training:
            return _select(active, quantized, inputs)
        return quantized

    def get_config(self):
        """Returns the five constructor arguments as a dict."""
        return {
            "num_bits": self.num_bits,
            "per_axis": self.per_axis,
            "symmetric": self.symmetric,
            "narrow_range": self.narrow_range,
            "ema_decay": self.ema_decay,
        }


@keras.saving.register_keras_serializable(package="tfopt")
class FixedRangeQuantizer(Quantizer):
    """Fake-quantizer with a constant range: outputs of softmax, sigmoid, tanh.

    The int8 TFLite kernels of these activations write a fixed output scale
    (1/256 with zero-point -128 for softmax and sigmoid), so training with the
    same range makes the Keras model compute what the kernel computes.

    Example:

    ```python
    q = tfopt.quantization.FixedRangeQuantizer(0.0, 255 / 256)
    ```

    Args:
        min_value: the lower end of the range (<= 0). Defaults to `0.0`.
        max_value: the upper end of the range (> min_value, >= 0). Defaults to `1.0`.
        num_bits: bits, 2 to 8, or 16. Defaults to `8`.
    """

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, num_bits: int = 8):
        if not min_value <= 0.0 <= max_value or min_value == max_value:
            raise ValueError(
                "Arguments `min_value` <= 0 <= `max_value` (and not equal) are required. "
                f"Received: min_value={min_value!r}, max_value={max_value!r}"
            )
        self.min_value = float(min_value)
        self.max_value = float(max_value)
        self.num_bits = _check_bits(num_bits, allow_16=True)
        self.per_axis = False
        self.narrow_range = False

    def build(self, shape, name, layer):
        """Makes no variables (the range is constant): returns `{}`."""
        return {}

    def get_range(self, weights):
        """Returns the constant `(min_value, max_value)`."""
        return self.min_value, self.max_value

    def __call__(self, inputs, training, weights, **kwargs):
        """Fake-quantizes `inputs` on the constant range.

        With `quantize_active` 0, training passes them through unchanged.
        """
        active, _ = _flags(kwargs)
        quantized = fake_quant(inputs, self.min_value, self.max_value, self.num_bits, False, False)
        if training:
            return _select(active, quantized, inputs)
        return quantized

    def get_config(self):
        """Returns `min_value`, `max_value` and `num_bits` as a dict."""
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "num_bits": self.num_bits,
        }
