"""QuantizeAnnotate: marks a layer for quantize_apply (partial QAT), otherwise transparent."""

from __future__ import annotations

import keras

from tfopt.quantization.quantize_config import QuantizeConfig


@keras.saving.register_keras_serializable(package="tfopt")
class QuantizeAnnotate(keras.layers.Wrapper):
    """Marks `layer` to be quantized by `quantize_apply`; computes exactly what `layer` does.

    Example:

    ```python
    dense = tfopt.quantization.quantize_annotate_layer(keras.layers.Dense(10))
    ```

    Args:
        layer: the layer to quantize.
        quantize_config: a `QuantizeConfig` for layers the built-in table does not
            know (or to override it). Defaults to `None` (the built-in table).
        **kwargs: Layer arguments.
    """

    def __init__(self, layer, quantize_config=None, **kwargs):
        if isinstance(quantize_config, dict):
            quantize_config = keras.saving.deserialize_keras_object(quantize_config)
        if quantize_config is not None and not isinstance(quantize_config, QuantizeConfig):
            raise TypeError(
                "Argument `quantize_config` must be None or a tfopt.quantization.QuantizeConfig. "
                f"Received: quantize_config of type {type(quantize_config).__name__}"
            )
        kwargs.setdefault("name", f"quant_annotate_{layer.name}")
        super().__init__(layer, **kwargs)
        self.quantize_config = quantize_config
        self.supports_masking = bool(getattr(layer, "supports_masking", False))

    def build(self, input_shape=None):
        """Builds the wrapped layer (if it is not built yet); creates no weights of its own.

        A layer called on several tensors (MultiHeadAttention(query, value)) builds on
        its first call instead, from all of them.
        """
        if not self.layer.built:
            try:
                self.layer.build(input_shape)
            except TypeError:  # build() wants more shapes than the first input's
                pass
        self.built = True

    def compute_mask(self, inputs, mask=None):
        """The wrapped layer's mask (the annotation changes nothing)."""
        return self.layer.compute_mask(inputs, mask)

    def call(self, inputs, *args, training=None, mask=None, **kwargs):
        """Runs the wrapped layer unchanged: the annotation only matters to `quantize_apply`.

        Further arguments (a MultiHeadAttention's `value`, `attention_mask`...) are
        passed on as they came.
        """
        if mask is not None and getattr(self.layer, "_call_has_mask_arg", False):
            kwargs["mask"] = mask
        return self.layer(inputs, *args, training=training, **kwargs)

    def get_config(self):
        """Returns the serialized inner layer and `quantize_config` (None if not given)."""
        config = super().get_config()
        config["quantize_config"] = (
            None
            if self.quantize_config is None
            else keras.saving.serialize_keras_object(self.quantize_config)
        )
        return config

    @classmethod
    def from_config(cls, config):
        """Creates the annotation and its inner layer from the dict `get_config` returned."""
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)
