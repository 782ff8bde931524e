"""QuantizationConfig: how a model is quantized during QAT, with presets."""

from __future__ import annotations

import dataclasses

import keras

PRESETS = ("tflite", "tensorrt")


@keras.saving.register_keras_serializable(package="tfopt")
@dataclasses.dataclass(frozen=True)
class QuantizationConfig:
    """The numeric format QAT trains for: bits, granularity, symmetry, range estimation.

    Weights use min/max of their current values (per output channel or per
    tensor); activations use moving-average (EMA) min/max of the batches seen in
    training. Two presets match the int8 runtimes: ``"tflite"`` (TFLite's int8
    spec) and ``"tensorrt"`` (symmetric activations with zero-point 0).

    Example:

    ```python
    config = tfopt.quantization.QuantizationConfig.from_preset("tflite")
    four_bit = dataclasses.replace(config, weight_bits=4)
    qat = tfopt.quantization.quantize_model(model, config=four_bit)
    ```

    Args:
        weight_bits: bits of the weights, 2 to 8. Defaults to `8`.
        activation_bits: bits of the activations; 8 is what the int8 exporters
            run. Defaults to `8`.
        per_channel: one range per output channel for Conv/DepthwiseConv kernels.
            Defaults to `True`.
        dense_per_channel: one range per output unit for Dense kernels (TFLite's
            converter takes per-tensor Dense weights only; ONNX/TensorRT take both).
            Defaults to `False`.
        symmetric_weights: weight ranges symmetric around zero. Defaults to `True`.
        narrow_range: weights use [-(2^(b-1) - 1), 2^(b-1) - 1] (TFLite's int8 spec:
            -127..127). Defaults to `True`.
        symmetric_activations: activation ranges symmetric with zero-point 0
            (TensorRT), instead of asymmetric (TFLite). Defaults to `False`.
        ema_decay: decay of the moving-average activation ranges, in [0, 1).
            Defaults to `0.999`.
        name: the preset this config came from, or "custom". Defaults to `"custom"`.

    Raises:
        ValueError: an argument out of range.
    """

    weight_bits: int = 8
    activation_bits: int = 8
    per_channel: bool = True
    dense_per_channel: bool = False
    symmetric_weights: bool = True
    narrow_range: bool = True
    symmetric_activations: bool = False
    ema_decay: float = 0.999
    name: str = "custom"

    def __post_init__(self):
        if (
            not isinstance(self.weight_bits, int)
            or isinstance(self.weight_bits, bool)
            or not 2 <= self.weight_bits <= 8
        ):
            raise ValueError(
                "Argument `weight_bits` must be an int from 2 to 8. "
                f"Received: weight_bits={self.weight_bits!r}"
            )
        if self.activation_bits != 8 or isinstance(self.activation_bits, bool):
            raise ValueError(
                "Argument `activation_bits` must be 8 (int8 activations; TFLite's 16x8 mode "
                f"is not trained by QAT yet). Received: activation_bits={self.activation_bits!r}"
            )
        for flag in (
            "per_channel",
            "dense_per_channel",
            "symmetric_weights",
            "narrow_range",
            "symmetric_activations",
        ):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(
                    f"Argument `{flag}` must be a bool. Received: {flag}={getattr(self, flag)!r}"
                )
        if not isinstance(self.ema_decay, (int, float)) or not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(
                "Argument `ema_decay` must be a float in [0, 1), e.g. 0.999. "
                f"Received: ema_decay={self.ema_decay!r}"
            )

    @classmethod
    def from_preset(cls, name: str) -> QuantizationConfig:
        """The config of a named preset: "tflite" or "tensorrt".

        Args:
            name: "tflite" (per-channel symmetric narrow-range conv weights,
                per-tensor Dense weights, asymmetric int8 activations) or
                "tensorrt" (per-channel conv and Dense weights, symmetric int8
                activations with zero-point 0).

        Returns:
            A `QuantizationConfig`.

        Raises:
            ValueError: an unknown preset name.
        """
        key = name.lower() if isinstance(name, str) else name
        if key == "tflite":
            return cls(name="tflite")
        if key == "tensorrt":
            return cls(dense_per_channel=True, symmetric_activations=True, name="tensorrt")
        raise ValueError(
            f"Argument `config` names an unknown preset. Received: {name!r}. "
            f"Presets: {', '.join(repr(p) for p in PRESETS)}, or pass a QuantizationConfig."
        )

    def get_config(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> QuantizationConfig:
        return cls(**config)


def resolve_config(config) -> QuantizationConfig:
    """None -> the "tflite" preset; a preset name -> its config; a config -> itself."""
    if config is None:
        return QuantizationConfig.from_preset("tflite")
    if isinstance(config, QuantizationConfig):
        return config
    if isinstance(config, str):
        return QuantizationConfig.from_preset(config)
    raise TypeError(
        "Argument `config` must be None, a preset name ('tflite' or 'tensorrt') or a "
        f"tfopt.quantization.QuantizationConfig. Received: config of type {type(config).__name__}"
    )
