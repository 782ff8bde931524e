"""QuantizeConfig: which weights and outputs of one layer are fake-quantized, and how."""

from __future__ import annotations

import keras

from tfopt.quantization._layouts import LAYOUTS
from tfopt.quantization.config import QuantizationConfig
from tfopt.quantization.quantizers import (
    FixedRangeQuantizer,
    LastValueQuantizer,
    MovingAverageQuantizer,
)

# TFLite's int16 softmax, logistic and tanh kernels write a fixed output scale of
# 1/32768 with zero-point 0: 16-bit codes -32768..32767 on [-1, 32767/32768].
_INT16_FIXED_OUTPUT_RANGE = (-1.0, 32767.0 / 32768.0)


class QuantizeConfig:
    """Tells `QuantizeWrapper` how to quantize one layer (tfmot's interface, Keras 3).

    Subclass it for a custom layer and pass it to `quantize_annotate_layer`; a
    tfmot `QuantizeConfig` ports by changing its import.

    - `get_weights_and_quantizers(layer)`: (variable, quantizer) pairs. The
      wrapper substitutes the fake-quantized value for each variable while the
      layer runs, so `set_quantize_weights` is not called (Keras 3 layers keep
      their weights in variables, which cannot be reassigned to tensors).
      Ranges are per tensor unless the quantizer is `per_axis`, then per slice
      of the weight's last axis (override `get_weight_layouts` for others).
    - `get_activations_and_quantizers(layer)`: (activation function, quantizer)
      pairs. While the layer runs, the wrapper hands `set_quantize_activations`
      one function per pair that applies the activation and fake-quantizes its
      result, and afterwards hands it the original functions back. The default
      `set_quantize_activations` sets `layer.activation` (one pair).
    - `get_output_quantizers(layer)`: quantizers of the layer's output.

    Example:

    ```python
    @keras.saving.register_keras_serializable()
    class MyDenseConfig(tfopt.quantization.QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return [(layer.kernel, tfopt.quantization.LastValueQuantizer(num_bits=4))]
        def get_activations_and_quantizers(self, layer):
            return [(layer.activation, tfopt.quantization.MovingAverageQuantizer())]
        def set_quantize_weights(self, layer, quantize_weights):
            pass
        def set_quantize_activations(self, layer, quantize_activations):
            layer.activation = quantize_activations[0]
        def get_output_quantizers(self, layer):
            return []
        def get_config(self):
            return {}
    ```
    """

    def get_weights_and_quantizers(self, layer) -> list:
        """(weight variable, Quantizer) pairs of `layer`."""
        return []

    def get_activations_and_quantizers(self, layer) -> list:
        """(activation function, Quantizer) pairs of `layer`.

        Each activation's result is fake-quantized by its quantizer.
        """
        return []

    def set_quantize_weights(self, layer, quantize_weights) -> None:
        """Not called: tfopt substitutes the quantized weights itself (see the class)."""

    def set_quantize_activations(self, layer, quantize_activations) -> None:
        """Puts activation functions in place on `layer` (one per activation pair).

        The default sets `layer.activation` when there is exactly one pair.

        Raises:
            NotImplementedError: more than one pair, or a layer with no `activation`.
        """
        if len(quantize_activations) == 1 and hasattr(layer, "activation"):
            layer.activation = quantize_activations[0]
            return
        raise NotImplementedError(
            f"{type(self).__name__}.get_activations_and_quantizers returned "
            f"{len(quantize_activations)} activations for layer {layer.name!r}: implement "
            "set_quantize_activations(layer, quantize_activations) to put them in place."
        )

    def get_output_quantizers(self, layer) -> list:
        """Quantizers of the layer's output: [] (float output) or [one Quantizer]."""
        return []

    def get_weight_layouts(self, layer) -> list[str]:
        """One of LAYOUTS per weight: where its output channels sit."""
        return ["last"] * len(self.get_weights_and_quantizers(layer))

    def get_config(self) -> dict:
        """The config's constructor arguments (a flat dict), so the model can be saved."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement get_config() so the model can be saved."
        )

    @classmethod
    def from_config(cls, config: dict):
        """The config of a `get_config` dict."""
        return cls(**config)


def _check_layouts(layouts):
    for item in layouts:
        if item not in LAYOUTS:
            raise ValueError(
                f"Argument `weights` has an unknown layout {item!r}. Layouts: {LAYOUTS}"
            )


@keras.saving.register_keras_serializable(package="tfopt")
class LayerQuantizeConfig(QuantizeConfig):
    """The built-in QuantizeConfig: named kernels with layouts, and an optional output quantizer.

    Example:

    ```python
    qc = LayerQuantizeConfig(weights={"kernel": "last"}, quantize_output=True)
    ```

    Args:
        weights: {weight attribute name: layout} (layouts: "last", "depthwise",
            "transpose", "tensor"). Defaults to `None` (no weights).
        quantize_output: fake-quantize the layer's output. Defaults to `True`.
        quantize_pre_activation: also fake-quantize the layer's output before its
            own `activation` (for activations the int8 kernels do not fuse, like
            softmax). Defaults to `False`.
        config: a `QuantizationConfig` (or its dict). Defaults to `None` ("tflite").
        dense: the kernel belongs to a Dense layer (uses `dense_per_channel`).
            Defaults to `False`.
        preserve_sparsity: keep the weights' zeros at zero (a pruned model stays
            sparse through QAT). Defaults to `False`.
    """

    def __init__(
        self,
        weights: dict | None = None,
        quantize_output: bool = True,
        quantize_pre_activation: bool = False,
        config: QuantizationConfig | dict | None = None,
        dense: bool = False,
        preserve_sparsity: bool = False,
    ):
        self.weights = dict(weights or {})
        _check_layouts(self.weights.values())
        self.quantize_output = bool(quantize_output)
        self.quantize_pre_activation = bool(quantize_pre_activation)
        if isinstance(config, dict):
            config = QuantizationConfig.from_config(config)
        self.config = config or QuantizationConfig.from_preset("tflite")
        self.dense = bool(dense)
        self.preserve_sparsity = bool(preserve_sparsity)

    def _weight_quantizer(self, layout):
        per_axis = layout != "tensor" and (
            self.config.dense_per_channel if self.dense else self.config.per_channel
        )
        return LastValueQuantizer(
            num_bits=self.config.weight_bits,
            per_axis=per_axis,
            symmetric=self.config.symmetric_weights,
            narrow_range=self.config.narrow_range,
        )

    def activation_quantizer(self) -> MovingAverageQuantizer:
        """A new EMA-range quantizer with the config's activation bits, symmetry and decay."""
        return MovingAverageQuantizer(
            num_bits=self.config.activation_bits,
            symmetric=self.config.symmetric_activations,
            narrow_range=self.config.symmetric_activations,
            ema_decay=self.config.ema_decay,
        )

    def get_weights_and_quantizers(self, layer):
        """Each named weight of `layer` with a min/max `LastValueQuantizer` for its layout.

        Raises:
            ValueError: `layer` has no variable of that name.
        """
        pairs = []
        for name, layout in self.weights.items():
            variable = getattr(layer, name, None)
            if not isinstance(variable, keras.Variable):
                names = sorted(
                    attr
                    for attr in dir(type(layer)) + list(vars(layer))
                    if not attr.startswith("__")
                    and isinstance(getattr(layer, attr, None), keras.Variable)
                )
                raise ValueError(
                    f"Layer {layer.name!r} ({type(layer).__name__}) has no weight variable "
                    f"{name!r}, which its LayerSpec (weights={self.weights!r}) quantizes; found "
                    f"{type(variable).__name__ if variable is not None else 'nothing'} there. "
                    f"Its weight attributes: {names}. Fix the spec given to "
                    "tfopt.quantization.register_layer (weights={attribute: layout})."
                )
            pairs.append((variable, self._weight_quantizer(layout)))
        return pairs

    def get_weight_layouts(self, layer):
        """The layouts of the named weights, in `get_weights_and_quantizers` order."""
        return list(self.weights.values())

    def get_output_quantizers(self, layer):
        """[] without `quantize_output`; else the output's quantizer.

        A softmax, sigmoid or tanh output gets a `FixedRangeQuantizer` on TFLite's
        fixed output range: the int16 one with 16-bit activations, the int8 one with
        asymmetric 8-bit activations. Every other case gets `activation_quantizer()`.
        """
        if not self.quantize_output:
            return []
        from tfopt.quantization import tflite_scheme

        fixed = tflite_scheme.FIXED_OUTPUT_RANGES.get(tflite_scheme.output_activation(layer))
        if fixed is not None and self.config.activation_bits == 16:
            return [FixedRangeQuantizer(*_INT16_FIXED_OUTPUT_RANGE, num_bits=16)]
        if fixed is not None and not self.config.symmetric_activations:
            return [FixedRangeQuantizer(*fixed, num_bits=self.config.activation_bits)]
        return [self.activation_quantizer()]

    def get_config(self):
        """Returns the constructor arguments, `config` as `QuantizationConfig.get_config()`."""
        return {
            "weights": dict(self.weights),
            "quantize_output": self.quantize_output,
            "quantize_pre_activation": self.quantize_pre_activation,
            "config": self.config.get_config(),
            "dense": self.dense,
            "preserve_sparsity": self.preserve_sparsity,
        }
