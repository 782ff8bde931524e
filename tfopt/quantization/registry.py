"""The layer table: how each built-in Keras layer takes part in QAT.

Kinds:
    "weighted": kernels fake-quantized (per channel where the config says so),
        output quantized unless a ReLU/ReLU6 follows it (then the activation
        quantizes, so the int8 kernel runs conv+bias+relu fused).
    "activation": ReLU/ReLU6 (fusable into the preceding weighted op); output quantized.
    "output": computes new values (Add, Concatenate, average pooling...); output quantized.
    "passthrough": moves or selects values (max pooling, reshape, padding...);
        output keeps its input's quantization, as the int8 kernels require.
    "same_scale": average pooling: computes new values but the int8 kernel keeps
        its input's scale and zero point; the output is rounded back onto the
        input's grid the way that kernel rounds (half away from zero).
    "concat": quantizes its output; producers that feed only the concat drop
        their own output quantizer, so all inputs share the concat's scale as
        TFLite's int8 CONCATENATION requires.
    "input_transform": Rescaling: runs in float on the raw input, output quantized
        (the int8 graph starts after it).
    "batchnorm": folded into the preceding weighted layer, else output quantized.
"""

from __future__ import annotations

import dataclasses

import keras

L = keras.layers


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    kind: str
    weights: tuple = ()  # ((attribute, layout), ...)
    dense: bool = False
    separable: bool = False  # SeparableConv2D: split into depthwise + 1x1 conv


_TABLE: dict[type, LayerSpec] = {
    L.Dense: LayerSpec("weighted", (("kernel", "last"),), dense=True),
    # Conv1D: per channel, run by the wrapper as ExpandDims -> Conv2D on a 4-D kernel
    # (`conv1d_as_conv2d`), the form the converter folds into a per-channel CONV_2D.
    L.Conv1D: LayerSpec("weighted", (("kernel", "last"),)),
    L.Conv2D: LayerSpec("weighted", (("kernel", "last"),)),
    L.DepthwiseConv2D: LayerSpec("weighted", (("kernel", "depthwise"),)),
    # Conv2DTranspose: per-tensor kernel; the converter cannot fold a per-channel
    # fake-quant through the kernel transpose its TRANSPOSE_CONV needs.
    L.Conv2DTranspose: LayerSpec("weighted", (("kernel", "tensor"),)),
    # Quantized as TFLite runs it: DEPTHWISE_CONV_2D, an int8 tensor, then CONV_2D 1x1.
    L.SeparableConv2D: LayerSpec("weighted", (("kernel", "last"),), separable=True),
    L.ReLU: LayerSpec("activation"),
    L.Add: LayerSpec("output"),
    L.Subtract: LayerSpec("output"),
    L.Multiply: LayerSpec("output"),
    L.Concatenate: LayerSpec("concat"),
    L.GlobalAveragePooling1D: LayerSpec("output"),
    L.GlobalAveragePooling2D: LayerSpec("output"),
    L.Rescaling: LayerSpec("input_transform"),
    L.Softmax: LayerSpec("output"),
    L.LeakyReLU: LayerSpec("output"),
    L.BatchNormalization: LayerSpec("batchnorm"),
    L.AveragePooling1D: LayerSpec("same_scale"),
    L.AveragePooling2D: LayerSpec("same_scale"),
    L.MaxPooling1D: LayerSpec("passthrough"),
    L.MaxPooling2D: LayerSpec("passthrough"),
    L.GlobalMaxPooling1D: LayerSpec("passthrough"),
    L.GlobalMaxPooling2D: LayerSpec("passthrough"),
    L.Flatten: LayerSpec("passthrough"),
    L.Reshape: LayerSpec("passthrough"),
    L.Dropout: LayerSpec("passthrough"),
    L.SpatialDropout1D: LayerSpec("passthrough"),
    L.SpatialDropout2D: LayerSpec("passthrough"),
    L.ZeroPadding1D: LayerSpec("passthrough"),
    L.ZeroPadding2D: LayerSpec("passthrough"),
    L.Cropping1D: LayerSpec("passthrough"),
    L.Cropping2D: LayerSpec("passthrough"),
    L.UpSampling1D: LayerSpec("passthrough"),
    L.UpSampling2D: LayerSpec("passthrough"),
    L.InputLayer: LayerSpec("passthrough"),
}

# Activations whose int8 TFLite kernels have a fixed output range: (min, max).
FIXED_OUTPUT_RANGES = {
    "softmax": (0.0, 255.0 / 256.0),  # scale 1/256, zero-point -128
    "sigmoid": (0.0, 255.0 / 256.0),
    "tanh": (-1.0, 127.0 / 128.0),  # scale 1/128, zero-point 0
}

# Activations the int8 conv / depthwise / fully-connected kernels fuse.
_FUSABLE = ("relu", "relu6", "linear")


def activation_name(fn) -> str:
    """Name of a Keras activation function (e.g. 'relu'), or '' if unknown."""
    return getattr(fn, "__name__", "") if fn is not None else "linear"


def is_fusable_activation(layer) -> bool:
    """True for ReLU / ReLU6 layers (and Activation('relu'|'relu6'))."""
    if isinstance(layer, L.ReLU):
        return (
            float(layer.negative_slope) == 0.0
            and float(layer.threshold) == 0.0
            and layer.max_value in (None, 6, 6.0)
        )
    if type(layer) is L.Activation:
        return activation_name(layer.activation) in ("relu", "relu6")
    return False


def conv1d_as_conv2d(layer) -> bool:
    """True for a Conv1D the wrapper runs as Conv2D (channels last, one group)."""
    return (
        type(layer) is L.Conv1D
        and layer.data_format == "channels_last"
        and int(getattr(layer, "groups", 1)) == 1
    )


def spec_for(layer) -> LayerSpec | None:
    """The LayerSpec of `layer`, or None when QAT does not know the layer."""
    if type(layer) is L.Conv1D and not conv1d_as_conv2d(layer):
        return LayerSpec("weighted", (("kernel", "tensor"),))
    if is_fusable_activation(layer):
        return LayerSpec("activation")
    if type(layer) is L.Activation:
        return LayerSpec("output")
    if isinstance(layer, L.UpSampling2D) and layer.interpolation != "nearest":
        return LayerSpec("output")
    return _TABLE.get(type(layer))


def relu_output(layer) -> bool:
    """True when `layer`'s output is a ReLU/ReLU6 (>= 0): a fusable activation layer, or
    a layer whose own `activation` is relu/relu6."""
    own = activation_name(getattr(layer, "activation", None))
    return is_fusable_activation(layer) or own in ("relu", "relu6")


def own_activation_fusable(layer) -> bool:
    """True when the layer's own `activation` argument (if any) is linear/relu/relu6."""
    return activation_name(getattr(layer, "activation", None)) in _FUSABLE


def supported_layers() -> list[str]:
    """Class names of the built-in layers QAT handles."""
    return sorted({*(t.__name__ for t in _TABLE), "Activation"})
