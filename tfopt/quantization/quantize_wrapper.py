"""QuantizeWrapper (fake-quantized weights, folded BatchNorm, output) and QuantizeLayer."""

from __future__ import annotations

import copy
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfopt.quantization import (
    _batchnorm,
    _conv1d,
    _graph,
    _kernels,
    _layouts,
    registry,
    tflite_scheme,
)
from tfopt.quantization.quantize_config import QuantizeConfig
from tfopt.quantization.quantizers import MovingAverageQuantizer, Quantizer

_FLAG = dict(shape=(), trainable=False, aggregation="only_first_replica")


def _mask_kwargs(layer, mask) -> dict:
    """The `mask=` keyword for a layer whose call takes one.

    Keras 3 records `mask=None` in the call arguments of BatchNormalization,
    GlobalAveragePooling1D and other layers that support masking.
    """
    return (
        {"mask": mask} if mask is not None and getattr(layer, "_call_has_mask_arg", False) else {}
    )


def _flatten_leading(inputs):
    """(..., features) -> (N, features), the 2-D input TFLite's FULLY_CONNECTED takes.

    A Dense on rank >= 3 input runs as RESHAPE -> FULLY_CONNECTED -> RESHAPE; the
    converter quantizes only this form (a batched MatMul keeps a float kernel).
    """
    return tf.reshape(inputs, [-1, inputs.shape[-1]])


def _unflatten_leading(outputs, inputs):
    """(N, units) -> (..., units) with the leading dimensions of `inputs`."""
    lead = list(inputs.shape[1:-1])
    if any(d is None for d in lead):
        shape = tf.concat([tf.shape(inputs)[:-1], tf.shape(outputs)[-1:]], 0)
    else:
        shape = [-1, *lead, outputs.shape[-1]]
    return tf.reshape(outputs, shape)


def _safe(name: str) -> str:
    return name.split("/")[-1].split(":")[0]


def _add_flags(layer):
    """0/1 control variables set by QATCallback: quantization on, ranges frozen."""
    layer.quantize_active = layer.add_weight(name="quantize_active", initializer="ones", **_FLAG)
    layer.ranges_frozen = layer.add_weight(name="ranges_frozen", initializer="zeros", **_FLAG)


def _flags(layer, training) -> dict:
    """The keyword flags of a quantizer call: the flag variables or their values.

    While training, a flag that is exactly 0 or 1 when the step is traced is
    passed as that Python float (otherwise as the variable). A training graph
    then holds only the branch the flags select: no per-element select between
    the quantized and float values. QATCallback retraces the train function
    when it changes a flag.
    """
    active, frozen = layer.quantize_active, layer.ranges_frozen
    if training:
        with tf.init_scope():  # read outside the graph being traced
            values = [float(np.asarray(keras.ops.convert_to_numpy(v))) for v in (active, frozen)]
        active, frozen = (
            v if v in (0.0, 1.0) else var for v, var in zip(values, (active, frozen))
        )
    return {"quantize_active": active, "ranges_frozen": frozen}


@keras.saving.register_keras_serializable(package="tfopt")
class QuantizeWrapper(keras.layers.Wrapper):
    """Runs a layer with fake-quantized weights, activations and output.

    What is quantized comes from the `QuantizeConfig` (tfmot's interface):
    `get_weights_and_quantizers` (the wrapper substitutes the fake-quantized
    value for each variable while the layer runs), `get_activations_and_quantizers`
    (each activation is replaced, through the config's `set_quantize_activations`,
    by one that fake-quantizes its result, and restored after the call) and
    `get_output_quantizers`. With `batchnorm`, the BatchNormalization that
    followed the layer is folded into its kernel and bias using the moving
    statistics; while training (and until `QATCallback` freezes them) the batch
    statistics of the float output still update the moving statistics.

    Example:

    ```python
    qc = tfopt.quantization.LayerQuantizeConfig(weights={"kernel": "last"})
    layer = tfopt.quantization.QuantizeWrapper(keras.layers.Dense(4), qc)
    ```

    Args:
        layer: the Keras layer to quantize.
        quantize_config: a `QuantizeConfig` saying which weights, activations and
            outputs are quantized.
        batchnorm: a BatchNormalization layer to fold in. Defaults to `None`.
        layer_spec: the `LayerSpec` the layer is quantized by (a dict when loaded).
            Defaults to `None`: the registry's spec for the layer's class. It is
            saved with the model, so a model loads computing what it computed
            even where the class is registered differently or not at all.
        **kwargs: Layer arguments (`name`...).

    Raises:
        TypeError: `layer` is not a Keras layer or `quantize_config` not a QuantizeConfig.
    """

    def __init__(self, layer, quantize_config, batchnorm=None, layer_spec=None, **kwargs):
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
        # A mask (Embedding(mask_zero=True)) goes on through the wrapped layer as it would
        # through the layer itself: Keras's masking contract is the layer's.
        self.supports_masking = bool(getattr(layer, "supports_masking", False))
        self.quantize_config = quantize_config
        self.batchnorm = batchnorm
        object.__setattr__(self, "_input_source", None)
        if isinstance(layer_spec, dict):
            layer_spec = registry.LayerSpec(**layer_spec)
        if layer_spec is not None and not isinstance(layer_spec, registry.LayerSpec):
            raise TypeError(
                "Argument `layer_spec` must be None or a tfopt.quantization.LayerSpec. "
                f"Received: layer_spec of type {type(layer_spec).__name__}"
            )
        spec = layer_spec if layer_spec is not None else registry.spec_for(layer)
        self.layer_spec = spec
        self._as_conv2d = spec is not None and spec.conv1d_as_conv2d
        self._dense = spec is not None and spec.dense
        # Average pooling: the int8 kernel's output keeps the input's grid.
        self._same_scale = spec is not None and spec.kind == "same_scale"

    def __call__(self, *args, **kwargs):
        """Calls the layer; on a symbolic input, first records the grid that input lies on."""
        inputs = args[0] if args else kwargs.get("inputs")
        if isinstance(inputs, keras.KerasTensor):  # building a functional graph
            object.__setattr__(self, "_input_source", _graph.activation_source(inputs))
        return super().__call__(*args, **kwargs)

    def output_grid(self):
        """(quantizer, variables) of the output's grid.

        None if unknown (not exactly one output quantizer); False when the output
        keeps its input's grid (average pooling).
        """
        if self._same_scale:
            return False
        if len(self._output_quantizers) != 1:
            return None
        return self._output_quantizers[0], self._output_vars[0]

    def _bias_grid(self):
        """The int32 bias grid the int8 kernels use (input step x weight step), or None."""
        if not self._weight_quantizers:
            return None
        return _kernels.bias_grid(
            self._input_source, self._weight_quantizers[0][1], self._weight_vars[0]
        )

    def build(self, input_shape=None):
        """Builds the layer (and BatchNorm), the QAT flags and every quantizer's range variables.

        The quantizers come from the `QuantizeConfig`; with `preserve_sparsity`
        a mask per weight is created as well.
        """
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
            shape = _layouts.channels_last_shape(variable.shape, layout)
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
        self._activation_quantizers = list(qc.get_activations_and_quantizers(self.layer))
        self._activation_vars = [
            q.build((), f"activation_{i}", self)
            for i, (_, q) in enumerate(self._activation_quantizers)
        ]
        self._output_quantizers = list(qc.get_output_quantizers(self.layer))
        if tflite_scheme.relu_output(self.layer):  # a copy: a config may share quantizers
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
        """(kernel, bias, correction) with the BatchNorm folded in (see _batchnorm.fold)."""
        return _batchnorm.fold(
            self.layer,
            self.batchnorm,
            self._weight_values()[0],
            self._layouts[0],
            self.bn_frozen,
            inputs,
            training,
        )

    def quantized_weights(self) -> list[dict]:
        """The weights as inference computes them (BN folded, fake-quantized).

        Returns one dict per quantized weight: "value" (numpy, the layer's layout),
        "channels_last" (numpy, output channels on the last axis), "min"/"max"
        (the stored range, None for a quantizer without one), "quantizer",
        "layout", "variable" and "folded_bias" (numpy or None).
        """
        values = self._weight_values()
        folded_bias = None
        if self.batchnorm is not None:
            values[0], folded_bias, _ = self._folded(None, False)
            folded_bias = _kernels.round_bias(folded_bias, self._bias_grid())
        out = []
        for (variable, quantizer), value, layout, qvars in zip(
            self._weight_quantizers, values, self._layouts, self._weight_vars
        ):
            q = quantizer(
                _layouts.to_channels_last(value, layout),
                False,
                qvars,
                quantize_active=1.0,
                ranges_frozen=1.0,
            )
            found = quantizer.get_range(qvars)
            out.append(
                {
                    "value": _layouts.from_channels_last(q, layout, variable.shape).numpy(),
                    "channels_last": q.numpy(),
                    "min": None if found is None else np.asarray(found[0]),
                    "max": None if found is None else np.asarray(found[1]),
                    "quantizer": quantizer,
                    "layout": layout,
                    "variable": variable,
                    "folded_bias": None if folded_bias is None else np.asarray(folded_bias),
                }
            )
        return out

    def _quantize_aware_activations(self, training, flags):
        """The config's activations, each followed by its fake-quantizer."""

        def make(activation, quantizer, qvars):
            return lambda x: quantizer(activation(x), training, qvars, **flags)

        return [
            make(activation, quantizer, qvars)
            for (activation, quantizer), qvars in zip(
                self._activation_quantizers, self._activation_vars
            )
        ]

    def _write_back(self, scope):
        """Applies the activation quantizers' range updates made inside the layer's scope.

        The layer runs in a StatelessScope, which holds every assignment back.
        """
        for qvars in self._activation_vars:
            for variable in qvars.values():
                value = scope.get_current_value(variable)
                if value is not None:
                    variable.assign(value)

    def compute_mask(self, inputs, mask=None):
        """The wrapped layer's output mask (None for a layer that does not mask)."""
        if not self.supports_masking:
            return None
        return self.layer.compute_mask(inputs, mask)

    def call(self, inputs, training=None, mask=None):
        """Fake-quantizes the weights (BatchNorm folded), runs the layer, quantizes its output.

        The config's activations are fake-quantized inside the layer; outside
        training the bias is rounded onto the int32 bias grid when that is known.
        """
        training = bool(training)
        layer = self.layer
        flags = _flags(self, training)
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
                kernel = tf.expand_dims(value, 0)  # (1, width, in, out): see _conv1d
                conv_kernel = quantizer(kernel, training, qvars, **flags)
                continue
            q = quantizer(_layouts.to_channels_last(value, layout), training, qvars, **flags)
            mapping.append((variable, _layouts.from_channels_last(q, layout, variable.shape)))
        grid = None if training else self._bias_grid()
        if grid is not None:
            if folded_bias is not None:
                folded_bias = _kernels.round_bias(folded_bias, grid)
            elif getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None:
                mapping.append((layer.bias, _kernels.round_bias(layer.bias, grid)))
        if folded_bias is not None and _batchnorm._has_bias(layer):
            if correction is None:
                mapping.append((layer.bias, folded_bias))
                folded_bias = None
            else:  # the bias is added after the correction
                mapping.append((layer.bias, tf.zeros_like(layer.bias)))
        activation = getattr(layer, "activation", None)
        split = self._pre_quantizer is not None and activation is not None
        emulated = tflite_scheme.int8_activation(
            activation, getattr(self.quantize_config, "config", None)
        )
        if split:
            layer.activation = keras.activations.linear
        elif emulated is not None:  # an Activation layer: its int8 kernels' arithmetic
            layer.activation = lambda x: emulated(x, training, flags)
        originals = [a for a, _ in self._activation_quantizers]
        if originals:
            self.quantize_config.set_quantize_activations(
                layer, self._quantize_aware_activations(training, flags)
            )
        try:
            if conv_kernel is not None:
                bias = None
                if _batchnorm._has_bias(layer):
                    bias = next((v for var, v in mapping if var is layer.bias), layer.bias)
                outputs = _conv1d.conv1d_as_conv2d(layer, inputs, conv_kernel, bias)
            else:
                flat = self._dense and len(inputs.shape) > 2
                x = _flatten_leading(inputs) if flat else inputs
                with keras.StatelessScope(state_mapping=mapping) as scope:
                    outputs = layer(x, training=training, **_mask_kwargs(layer, mask))
                self._write_back(scope)
                if flat:
                    outputs = _unflatten_leading(outputs, inputs)
        finally:
            if originals:
                self.quantize_config.set_quantize_activations(layer, originals)
            if split or emulated is not None:
                layer.activation = activation
        if correction is not None:
            outputs = outputs * correction
        if folded_bias is not None:
            outputs = outputs + folded_bias
        if split:
            outputs = self._pre_quantizer(outputs, training, self._pre_vars, **flags)
            outputs = (
                activation(outputs) if emulated is None else emulated(outputs, training, flags)
            )
        if self._same_scale and self._input_source is not None:
            outputs = _kernels.onto_input_grid(
                outputs, training, self._input_source, self.quantize_active
            )
        for quantizer, qvars in zip(self._output_quantizers, self._output_vars):
            outputs = quantizer(outputs, training, qvars, **flags)
        return outputs

    def get_config(self):
        """Returns the serialized inner layer, `quantize_config` and `batchnorm` (or None)."""
        config = super().get_config()
        config["quantize_config"] = keras.saving.serialize_keras_object(self.quantize_config)
        config["batchnorm"] = (
            None if self.batchnorm is None else keras.saving.serialize_keras_object(self.batchnorm)
        )
        spec = self.layer_spec
        config["layer_spec"] = None if spec is None else dataclasses.asdict(spec)
        return config

    @classmethod
    def from_config(cls, config):
        """Creates the wrapper and its inner layer from the dict `get_config` returned."""
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
        self.supports_masking = True  # elementwise: a padding mask passes on unchanged
        if isinstance(quantizer, dict):
            quantizer = keras.saving.deserialize_keras_object(quantizer)
        if quantizer is not None and not isinstance(quantizer, Quantizer):
            raise TypeError(
                "Argument `quantizer` must be a tfopt.quantization Quantizer. "
                f"Received: quantizer of type {type(quantizer).__name__}"
            )
        self.quantizer = quantizer or MovingAverageQuantizer()

    def build(self, input_shape=None):
        """Creates the QAT flags and the quantizer's range variables."""
        _add_flags(self)
        self._vars = self.quantizer.build((), "input", self)
        self.built = True

    def output_grid(self):
        """(quantizer, variables) of the output's grid."""
        return self.quantizer, self._vars

    def call(self, inputs, training=None):
        """Fake-quantizes `inputs` with the quantizer, which may update its range in training."""
        training = bool(training)
        return self.quantizer(inputs, training, self._vars, **_flags(self, training))

    def compute_output_shape(self, input_shape):
        """Returns `input_shape`: quantizing keeps the shape."""
        return input_shape

    def get_config(self):
        """Returns the base layer config plus the serialized `quantizer`."""
        config = super().get_config()
        config["quantizer"] = keras.saving.serialize_keras_object(self.quantizer)
        return config
