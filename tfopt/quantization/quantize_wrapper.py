"""QuantizeWrapper (fake-quantized weights, folded BatchNorm, output) and QuantizeLayer."""

from __future__ import annotations

import copy

import keras
import numpy as np
import tensorflow as tf

from tfopt.quantization import registry
from tfopt.quantization.quantize_config import QuantizeConfig
from tfopt.quantization.quantizers import (
    MovingAverageQuantizer,
    Quantizer,
    _exporting,
    _onnx_mode,
)

_FLAG = dict(shape=(), trainable=False, aggregation="only_first_replica")
# Average-pooling ties, in codes: averages are multiples of 1/count, so anything within
# _TIE of a half code is a tie (float error is ~1e-5 code).
_TIE = 1e-3


def _safe(name: str) -> str:
    return name.split("/")[-1].split(":")[0]


def _add_flags(layer):
    """0/1 control variables set by QATCallback: quantization on, ranges frozen."""
    layer.quantize_active = layer.add_weight(name="quantize_active", initializer="ones", **_FLAG)
    layer.ranges_frozen = layer.add_weight(name="ranges_frozen", initializer="zeros", **_FLAG)


def _flags(layer, training):
    """(quantize_active, ranges_frozen) for a call: the variables, or, while training,
    their values when the step is traced, as Python floats.

    A training graph then holds only the branch the flags select: no per-element
    select between the quantized and float values (with the weight ranges' stopped
    gradient, QAT's extra step time on the digits CNN fell from +49% to +27%).
    QATCallback retraces the train function when it changes a flag.
    """
    active, frozen = layer.quantize_active, layer.ranges_frozen
    if not training:
        return active, frozen
    with tf.init_scope():  # read outside the graph being traced
        values = [float(np.asarray(keras.ops.convert_to_numpy(v))) for v in (active, frozen)]
    return tuple(v if v in (0.0, 1.0) else var for v, var in zip(values, (active, frozen)))


def _to_channels_last(value, layout):
    if layout == "depthwise":  # (..., in, multiplier) -> (..., in * multiplier)
        shape = tf.shape(value)
        return tf.reshape(value, tf.concat([shape[:-2], [shape[-2] * shape[-1]]], 0))
    if layout == "transpose":  # (..., out, in) -> (..., in, out)
        perm = list(range(len(value.shape)))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        return tf.transpose(value, perm)
    return value


def _from_channels_last(value, layout, shape):
    if layout == "depthwise":
        return tf.reshape(value, shape)
    if layout == "transpose":
        return _to_channels_last(value, "transpose")
    return value


def _conv1d_as_conv2d(layer, inputs, kernel, bias):
    """A channels-last Conv1D computed as TF lowers it: ExpandDims -> Conv2D -> Squeeze.

    `kernel` is the fake-quantized 4-D kernel (1, width, in, out): the TFLite
    converter folds a per-channel fake-quant into CONV_2D only when it feeds the
    Conv2D directly (on the 3-D kernel it fails to convert).
    """
    x = tf.convert_to_tensor(inputs)
    padding = layer.padding.upper()
    if padding == "CAUSAL":
        left = layer.dilation_rate[0] * (layer.kernel_size[0] - 1)
        x = tf.pad(x, [[0, 0], [left, 0], [0, 0]])
        padding = "VALID"
    # Training and Keras inference run dilations as Keras does (space-to-batch: the CPU
    # Conv2D has no dilated gradient); the export trace writes one dilated Conv2D, which
    # the converter maps to CONV_2D's dilation factor (it does not fuse the
    # space-to-batch form around a quantized kernel).
    conv = tf.nn.conv2d if _exporting() else tf.nn.convolution
    y = conv(
        tf.expand_dims(x, 1),
        tf.cast(kernel, x.dtype),
        strides=(1, layer.strides[0]),
        padding=padding,
        dilations=(1, layer.dilation_rate[0]),
    )
    y = tf.squeeze(y, 1)
    if bias is not None:
        y = tf.nn.bias_add(y, tf.cast(bias, y.dtype))
    return layer.activation(y)


def _scale_channels(kernel, scale, layout):
    """kernel * scale, scale indexed by the kernel's output channel."""
    if layout == "depthwise":
        return kernel * tf.reshape(scale, kernel.shape[-2:])
    if layout == "transpose":
        return kernel * scale[:, None]
    return kernel * scale


def _grid_range(quantizer, qvars):
    """(min, max) tensors of a fake-quantizer's range (per channel for weights)."""
    if "min" in qvars:
        low, high = qvars["min"], qvars["max"]
    else:  # FixedRangeQuantizer
        low, high = quantizer.min_value, quantizer.max_value
    return tf.convert_to_tensor(low, tf.float32), tf.convert_to_tensor(high, tf.float32)


def _grid_step(quantizer, qvars):
    """The scale of a fake-quantizer's grid, as a tensor (per channel for weights)."""
    low, high = _grid_range(quantizer, qvars)
    codes = float(2**quantizer.num_bits - 1 - int(getattr(quantizer, "narrow_range", False)))
    return (high - low) / codes


def _signed_code(values, quantizer, qvars):
    """(signed code of `values` on a quantizer's nudged grid, scale, nudged min)."""
    low, high = _grid_range(quantizer, qvars)
    narrow = float(getattr(quantizer, "narrow_range", False))
    quant_max = float(2**quantizer.num_bits - 1)
    scale = (high - low) / (quant_max - narrow)
    scale = tf.where(scale > 0, scale, 1.0)
    zero = tf.clip_by_value(tf.floor(narrow - low / scale + 0.5), narrow, quant_max)
    nudged_min = (narrow - zero) * scale
    code = (values - nudged_min) / scale - 2.0 ** (quantizer.num_bits - 1)
    return code, scale, nudged_min


def _round_to_grid_like_pooling(values, quantizer, qvars):
    """Rounds averages of on-grid values back onto that grid as the integer kernels do.

    TFLite's int8/int16 AVERAGE_POOL_2D keeps its input's scale and zero point and
    divides the sum of the signed codes by the window count rounding half away from
    zero; fake-quant would round half up. Computed on the signed code of the average
    (a multiple of 1/count, so a 1e-3 code tolerance tells ties from float error).
    """
    code, scale, nudged_min = _signed_code(values, quantizer, qvars)
    rounded = tf.sign(code) * tf.floor(tf.abs(code) + 0.5 + _TIE)
    return (rounded + 2.0 ** (quantizer.num_bits - 1)) * scale + nudged_min


def _activation_source(tensor):
    """(quantizer, variables) whose grid a symbolic input lies on, or None.

    Walks back from `tensor` through layers that keep their input's quantization
    (pooling, padding, reshape...) to the QuantizeLayer or QuantizeWrapper that
    quantized it.
    """
    for _ in range(64):
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return None
        op = history.operation
        if isinstance(op, QuantizeLayer):
            return op.quantizer, op._vars
        if isinstance(op, QuantizeWrapper) and not op._same_scale:
            if len(op._output_quantizers) != 1:
                return None
            return op._output_quantizers[0], op._output_vars[0]
        spec = registry.spec_for(op.layer if isinstance(op, QuantizeWrapper) else op)
        if spec is None or spec.kind not in ("passthrough", "same_scale"):
            return None
        inputs = op._inbound_nodes[history.node_index].input_tensors
        if len(inputs) != 1:
            return None
        tensor = inputs[0]
    return None


@keras.saving.register_keras_serializable(package="tfopt")
class QuantizeWrapper(keras.layers.Wrapper):
    """Runs a layer with fake-quantized weights and a fake-quantized output.

    With `batchnorm`, the BatchNormalization that followed the layer is folded
    into its kernel and bias using the moving statistics; while training (and
    until `QATCallback` freezes them) the batch statistics of the float output
    still update the moving statistics.

    Example:

    ```python
    qc = tfopt.quantization.LayerQuantizeConfig(weights={"kernel": "last"})
    layer = tfopt.quantization.QuantizeWrapper(keras.layers.Dense(4), qc)
    ```

    Args:
        layer: the Keras layer to quantize.
        quantize_config: a `QuantizeConfig` saying which weights and outputs are
            quantized.
        batchnorm: a BatchNormalization layer to fold in. Defaults to `None`.
        **kwargs: Layer arguments (`name`...).

    Raises:
        TypeError: `layer` is not a Keras layer or `quantize_config` not a QuantizeConfig.
    """

    def __init__(self, layer, quantize_config, batchnorm=None, **kwargs):
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                "Argument `layer` must be a Keras 3 layer. "
                f"Received: layer of type {type(layer).__name__}"
            )
        if isinstance(quantize_config, dict):
            quantize_config = keras.saving.deserialize_keras_object(quantize_config)
        if not isinstance(quantize_config, QuantizeConfig):
            raise TypeError(
                "Argument `quantize_config` must be a tfopt.quantization.QuantizeConfig. "
                f"Received: quantize_config of type {type(quantize_config).__name__}"
            )
        if isinstance(batchnorm, dict):
            batchnorm = keras.saving.deserialize_keras_object(batchnorm)
        kwargs.setdefault("name", f"quant_{layer.name}")
        super().__init__(layer, **kwargs)
        self.quantize_config = quantize_config
        self.batchnorm = batchnorm
        object.__setattr__(self, "_input_source", None)
        spec = registry.spec_for(layer)
        self._as_conv2d = registry.conv1d_as_conv2d(layer)
        # Average pooling: the int8 kernel's output keeps the input's grid.
        self._same_scale = spec is not None and spec.kind == "same_scale"

    def __call__(self, *args, **kwargs):
        inputs = args[0] if args else kwargs.get("inputs")
        if isinstance(inputs, keras.KerasTensor):  # building a functional graph
            object.__setattr__(self, "_input_source", _activation_source(inputs))
        return super().__call__(*args, **kwargs)

    def _bias_grid(self):
        """The int32 bias grid the int8 kernels use (input scale x weight scale), or None.

        TFLite and ONNX Runtime store the bias as int32 codes of step
        s_input * s_weight (per output channel); inference rounds the float bias to
        that grid so the Keras model adds exactly the bias the int8 kernel adds.
        """
        if self._input_source is None or not self._weight_quantizers:
            return None
        quantizer, qvars = self._input_source
        step = _grid_step(quantizer, qvars) * _grid_step(
            self._weight_quantizers[0][1], self._weight_vars[0]
        )
        return tf.where(step > 0, step, 1.0)

    def _round_bias(self, bias, grid):
        if grid is None:
            return bias
        return tf.round(bias / grid) * grid

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        if self.batchnorm is not None and not self.batchnorm.built:
            self.batchnorm.build(self.layer.compute_output_shape(input_shape))
        _add_flags(self)
        if self.batchnorm is not None:
            self.bn_frozen = self.add_weight(name="bn_frozen", initializer="zeros", **_FLAG)
        qc = self.quantize_config
        self._weight_quantizers = qc.get_weights_and_quantizers(self.layer)
        self._layouts = qc.get_weight_layouts(self.layer)
        self._weight_vars = []
        for (variable, quantizer), layout in zip(self._weight_quantizers, self._layouts):
            shape = self._channels_last_shape(variable, layout)
            self._weight_vars.append(quantizer.build(shape, _safe(variable.name), self))
        self._masks = []
        if getattr(qc, "preserve_sparsity", False):
            self._masks = [
                self.add_weight(
                    name=f"{_safe(variable.name)}_mask",
                    shape=variable.shape,
                    initializer="ones",
                    trainable=False,
                )
                for variable, _ in self._weight_quantizers
            ]
        self._output_quantizers = list(qc.get_output_quantizers(self.layer))
        if registry.relu_output(self.layer):  # a copy: a custom config may share quantizers
            for i, quantizer in enumerate(self._output_quantizers):
                if isinstance(quantizer, MovingAverageQuantizer):
                    self._output_quantizers[i] = copy.copy(quantizer)
                    self._output_quantizers[i]._nonnegative = True
        self._output_vars = [
            q.build((), f"output_{i}", self) for i, q in enumerate(self._output_quantizers)
        ]
        self._pre_quantizer = None
        if getattr(qc, "quantize_pre_activation", False):
            self._pre_quantizer = qc.activation_quantizer()
            self._pre_vars = self._pre_quantizer.build((), "pre_activation", self)
        self.built = True

    @staticmethod
    def _channels_last_shape(variable, layout):
        shape = tuple(variable.shape)
        if layout == "depthwise":
            return (*shape[:-2], shape[-2] * shape[-1])
        if layout == "transpose":
            return (*shape[:-2], shape[-1], shape[-2])
        return shape

    def _weight_values(self):
        """The float weights, with pruned zeros kept at zero when preserving sparsity."""
        values = [tf.convert_to_tensor(v) for v, _ in self._weight_quantizers]
        if self._masks:
            values = [v * tf.convert_to_tensor(m) for v, m in zip(values, self._masks)]
        return values

    def reset_sparsity_masks(self) -> None:
        """Sets each mask from the weight's current zeros (called once by quantize_model)."""
        for (variable, _), mask in zip(self._weight_quantizers, self._masks):
            mask.assign(tf.cast(tf.not_equal(tf.convert_to_tensor(variable), 0.0), mask.dtype))

    def _folded(self, inputs, training):
        """(kernel, bias, correction) with the BatchNorm folded in.

        The kernel is always folded with the moving statistics (what inference
        and the exporters use). While training with BN statistics not frozen,
        the output is corrected to the batch statistics, as BatchNormalization
        does in training: y = conv_q(x) * sigma_moving / sigma_batch + bias_batch
        (`correction` and the batch bias); the batch statistics also update the
        moving ones. Otherwise `correction` is None.
        """
        bn, layer = self.batchnorm, self.layer
        gamma = bn.gamma if bn.scale else 1.0
        beta = bn.beta if bn.center else 0.0
        correction = None
        if training:
            y = tf.stop_gradient(tf.cast(layer(inputs), tf.float32))
            axes = list(range(len(y.shape) - 1))
            mean, variance = tf.nn.moments(y, axes=axes)
            keep = bn.momentum + (1.0 - bn.momentum) * self.bn_frozen
            bn.moving_mean.assign(keep * bn.moving_mean + (1.0 - keep) * mean)
            bn.moving_variance.assign(keep * bn.moving_variance + (1.0 - keep) * variance)
        bias = layer.bias if layer.use_bias else 0.0
        scale = gamma * tf.math.rsqrt(bn.moving_variance + bn.epsilon)
        kernel = _scale_channels(self._weight_values()[0], scale, self._layouts[0])
        folded_bias = (bias - bn.moving_mean) * scale + beta
        if training:
            batch_scale = gamma * tf.math.rsqrt(variance + bn.epsilon)
            frozen = self.bn_frozen
            ratio = tf.sqrt(bn.moving_variance + bn.epsilon) * tf.math.rsqrt(variance + bn.epsilon)
            correction = frozen + (1.0 - frozen) * ratio
            batch_bias = (bias - mean) * batch_scale + beta
            folded_bias = frozen * folded_bias + (1.0 - frozen) * batch_bias
        return kernel, folded_bias, correction

    def quantized_weights(self) -> list[dict]:
        """The weights as inference computes them (BN folded, fake-quantized), for exporters.

        Returns one dict per quantized weight: "value" (numpy, the layer's layout),
        "channels_last" (numpy, output channels on the last axis), "min"/"max"
        (the stored range), "quantizer", "layout" and "variable".
        """
        values = self._weight_values()
        folded_bias = None
        if self.batchnorm is not None:
            values[0], folded_bias, _ = self._folded(None, False)
            folded_bias = self._round_bias(folded_bias, self._bias_grid())
        out = []
        for (variable, quantizer), value, layout, qvars in zip(
            self._weight_quantizers, values, self._layouts, self._weight_vars
        ):
            q = quantizer(_to_channels_last(value, layout), False, qvars, 1.0, 1.0)
            out.append(
                {
                    "value": _from_channels_last(q, layout, variable.shape).numpy(),
                    "channels_last": q.numpy(),
                    "min": qvars["min"].numpy(),
                    "max": qvars["max"].numpy(),
                    "quantizer": quantizer,
                    "layout": layout,
                    "variable": variable,
                    "folded_bias": None if folded_bias is None else np.asarray(folded_bias),
                }
            )
        return out

    def call(self, inputs, training=None):
        training = bool(training)
        layer = self.layer
        active, frozen = _flags(self, training)
        mapping = []
        folded_bias = correction = None
        values = self._weight_values()
        if self.batchnorm is not None:
            values[0], folded_bias, correction = self._folded(inputs, training)
        conv_kernel = None
        for (variable, quantizer), value, layout, qvars in zip(
            self._weight_quantizers, values, self._layouts, self._weight_vars
        ):
            if self._as_conv2d and variable is layer.kernel:
                kernel = tf.expand_dims(value, 0)  # (1, width, in, out): see _conv1d_as_conv2d
                conv_kernel = quantizer(kernel, training, qvars, active, frozen)
                continue
            q = quantizer(_to_channels_last(value, layout), training, qvars, active, frozen)
            mapping.append((variable, _from_channels_last(q, layout, variable.shape)))
        grid = None if training else self._bias_grid()
        if grid is not None:
            if folded_bias is not None:
                folded_bias = self._round_bias(folded_bias, grid)
            elif getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None:
                mapping.append((layer.bias, self._round_bias(layer.bias, grid)))
        if folded_bias is not None and layer.use_bias:
            if correction is None:
                mapping.append((layer.bias, folded_bias))
                folded_bias = None
            else:  # the bias is added after the correction
                mapping.append((layer.bias, tf.zeros_like(layer.bias)))
        activation = getattr(layer, "activation", None)
        split = self._pre_quantizer is not None and activation is not None
        if split:
            layer.activation = keras.activations.linear
        try:
            if conv_kernel is not None:
                bias = None
                if layer.use_bias:
                    bias = next((v for var, v in mapping if var is layer.bias), layer.bias)
                outputs = _conv1d_as_conv2d(layer, inputs, conv_kernel, bias)
            else:
                with keras.StatelessScope(state_mapping=mapping):
                    outputs = layer(inputs, training=training)
        finally:
            if split:
                layer.activation = activation
        if correction is not None:
            outputs = outputs * correction
        if folded_bias is not None:
            outputs = outputs + folded_bias
        if split:
            outputs = self._pre_quantizer(outputs, training, self._pre_vars, active, frozen)
            outputs = activation(outputs)
        if self._same_scale and self._input_source is not None:
            outputs = self._onto_input_grid(outputs, training)
        for quantizer, qvars in zip(self._output_quantizers, self._output_vars):
            outputs = quantizer(outputs, training, qvars, active, frozen)
        return outputs

    def _onto_input_grid(self, outputs, training):
        """Average pooling's output on its input's grid, rounded as the int8 kernel does."""
        quantizer, qvars = self._input_source
        if _exporting():  # the converters read a fake-quant with the input's range
            if _onnx_mode():
                # QuantizeLinear rounds ties to even: nudge them away from zero first.
                code, scale, _ = _signed_code(outputs, quantizer, qvars)
                outputs = outputs + _TIE * scale * tf.sign(code)
            return quantizer(outputs, False, qvars, self.quantize_active, 1.0)
        rounded = _round_to_grid_like_pooling(outputs, quantizer, qvars)
        if training:  # straight-through, and identity until quantization starts
            rounded = outputs + tf.stop_gradient(rounded - outputs) * self.quantize_active
        return rounded

    def get_config(self):
        config = super().get_config()
        config["quantize_config"] = keras.saving.serialize_keras_object(self.quantize_config)
        config["batchnorm"] = (
            None if self.batchnorm is None else keras.saving.serialize_keras_object(self.batchnorm)
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfopt")
class QuantizeLayer(keras.layers.Layer):
    """Fake-quantizes a float tensor (a model input) with a moving-average range.

    Example:

    ```python
    x = tfopt.quantization.QuantizeLayer()(keras.Input((8, 8, 1)))
    ```

    Args:
        quantizer: a `Quantizer`. Defaults to `None` (8-bit asymmetric moving average).
        **kwargs: Layer arguments (`name`...).
    """

    def __init__(self, quantizer: Quantizer | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(quantizer, dict):
            quantizer = keras.saving.deserialize_keras_object(quantizer)
        if quantizer is not None and not isinstance(quantizer, Quantizer):
            raise TypeError(
                "Argument `quantizer` must be a tfopt.quantization Quantizer. "
                f"Received: quantizer of type {type(quantizer).__name__}"
            )
        self.quantizer = quantizer or MovingAverageQuantizer()

    def build(self, input_shape=None):
        _add_flags(self)
        self._vars = self.quantizer.build((), "input", self)
        self.built = True

    def call(self, inputs, training=None):
        training = bool(training)
        return self.quantizer(inputs, training, self._vars, *_flags(self, training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["quantizer"] = keras.saving.serialize_keras_object(self.quantizer)
        return config
