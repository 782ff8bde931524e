"""QuantizationConfig: how a model is quantized during QAT, with presets."""

from __future__ import annotations

import dataclasses

import keras

PRESETS = ("tflite", "tensorrt", "tflite16x8")
ACTIVATION_BITS = (8, 16)


@keras.saving.register_keras_serializable(package="tfopt")
@dataclasses.dataclass(frozen=True)
class QuantizationConfig:
    """The numeric format QAT trains for: bits, granularity, symmetry, range estimation.

    Weights use min/max of their current values (per output channel or per
    tensor); activations use moving-average (EMA) min/max of the batches seen in
    training. Two presets match the int8 runtimes: ``"tflite"`` (TFLite's int8
    spec) and ``"tensorrt"`` (symmetric activations with zero-point 0); a third,
    ``"tflite16x8"``, trains for TFLite's 16x8 mode (int16 activations, int8
    weights).

    Example:

    ```python
    config = tfopt.quantization.QuantizationConfig.from_preset("tflite")
    four_bit = dataclasses.replace(config, weight_bits=4)
    qat = tfopt.quantization.quantize_model(model, config=four_bit)
    ```

    Args:
        weight_bits: bits of the weights, 2 to 8. Defaults to `8`.
        activation_bits: bits of the activations: 8 (int8 kernels), or 16 for
            TFLite's 16x8 mode (int16 activations, int8 weights), which needs
            `symmetric_activations=True` (zero-point 0), symmetric narrow-range
            weights, and exports to TFLite only. Defaults to `8`.
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
        ValueError: an argument out of range, or a 16-bit config outside TFLite's
            16x8 spec.
        TypeError: a flag that is not a bool.
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
        if (
            not isinstance(self.activation_bits, int)
            or isinstance(self.activation_bits, bool)
            or self.activation_bits not in ACTIVATION_BITS
        ):
            raise ValueError(
                "Argument `activation_bits` must be 8 (int8 activations) or 16 (TFLite's 16x8 "
                f"mode). Received: activation_bits={self.activation_bits!r}"
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
        if self.activation_bits == 16:
            self._check_16x8()
        if not isinstance(self.ema_decay, (int, float)) or not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(
                "Argument `ema_decay` must be a float in [0, 1), e.g. 0.999. "
                f"Received: ema_decay={self.ema_decay!r}"
            )

    def _check_16x8(self):
        """Checks the config is within TFLite's 16x8 spec.

        int16 activations symmetric (zero-point 0), int8 weights symmetric on
        -127..127; anything else would train for a grid no kernel runs.
        """
        required = {"symmetric_activations": True, "symmetric_weights": True, "narrow_range": True}
        for flag, value in required.items():
            if getattr(self, flag) != value:
                raise ValueError(
                    f"Argument `{flag}` must be {value} with activation_bits=16: TFLite's 16x8 "
                    "mode takes int16 activations symmetric with zero-point 0 and int8 weights "
                    f"symmetric on -127..127. Received: {flag}={getattr(self, flag)!r}. Use "
                    "QuantizationConfig.from_preset('tflite16x8'), or activation_bits=8."
                )

    @classmethod
    def from_preset(cls, name: str) -> QuantizationConfig:
        """The config of a named preset: "tflite", "tensorrt" or "tflite16x8".

        Example:

        ```python
        config = QuantizationConfig.from_preset("tflite16x8")
        ```

        Args:
            name: "tflite" (per-channel symmetric narrow-range conv weights,
                per-tensor Dense weights, asymmetric int8 activations),
                "tensorrt" (per-channel conv and Dense weights, symmetric int8
                activations with zero-point 0) or "tflite16x8" (TFLite's 16x8
                mode: the "tflite" weights, int16 activations symmetric with
                zero-point 0 on -32767..32767).

        Returns:
            A `QuantizationConfig`.

        Raises:
            ValueError: an unknown preset name.
        """
        if not isinstance(name, str):
            raise TypeError(
                f"Argument `config` must name a preset ({', '.join(map(repr, PRESETS))}) or be a "
                f"QuantizationConfig. Received: {type(name).__name__}"
            )
        key = name.lower()
        if key == "tflite":
            return cls(name="tflite")
        if key == "tensorrt":
            return cls(dense_per_channel=True, symmetric_activations=True, name="tensorrt")
        if key == "tflite16x8":
            return cls(activation_bits=16, symmetric_activations=True, name="tflite16x8")
        raise ValueError(
            f"Argument `config` names an unknown preset. Received: {name!r}. "
            f"Presets: {', '.join(repr(p) for p in PRESETS)}, or pass a QuantizationConfig."
        )

    def get_config(self) -> dict:
        """Returns every field, `name` included, as a flat dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> QuantizationConfig:
        """Creates (and validates) the config from the dict `get_config` returned."""
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
        f"Argument `config` must be None, a preset name ({', '.join(map(repr, PRESETS))}) or a "
        f"tfopt.quantization.QuantizationConfig. Received: config of type {type(config).__name__}"
    )
