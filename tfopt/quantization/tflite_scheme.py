"""TFLite's int8 scheme: every built-in layer's registration and the kernel facts behind it.

tfmot's `default_8bit` is the model: the rules that follow from how TFLite's
integer kernels compute live here, registered through the public
`register_layer`, so the built-in layers take the same route as a user's.

Kernel facts used (TFLite's quantization spec,
https://ai.google.dev/edge/litert/models/quantization_spec):
- CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD and SUB fuse a ReLU/ReLU6
  (`fuses_activation`); a BatchNormalization is folded into the conv before it.
- SOFTMAX and LOGISTIC write a fixed output scale 1/256 (zero point -128), TANH
  1/128 (zero point 0): `FIXED_OUTPUT_RANGES`.
- AVERAGE_POOL_2D, MAX_POOL_2D, RESHAPE, PAD... keep their input's scale.
- CONCATENATION takes inputs on one scale.
"""

from __future__ import annotations

import keras

from tfopt._keras import operation_classes
from tfopt.quantization import _attention
from tfopt.quantization.registry import LayerSpec, register_layer

L = keras.layers

# Activations whose int8 TFLite kernels have a fixed output range: (min, max).
FIXED_OUTPUT_RANGES = {
    "softmax": (0.0, 255.0 / 256.0),  # scale 1/256, zero-point -128
    "sigmoid": (0.0, 255.0 / 256.0),
    "tanh": (-1.0, 127.0 / 128.0),  # scale 1/128, zero-point 0
}

# Activations the int8 conv / depthwise / fully-connected kernels fuse.
_FUSABLE = ("relu", "relu6", "linear")


def activation_name(fn) -> str:
    """Name of a Keras activation function (e.g. 'relu'): 'linear' for None, '' if unknown."""
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


def relu_output(layer) -> bool:
    """True when `layer`'s output is a ReLU/ReLU6 (>= 0).

    That is a fusable activation layer, or a layer whose own `activation` is relu/relu6.
    """
    own = activation_name(getattr(layer, "activation", None))
    return is_fusable_activation(layer) or own in ("relu", "relu6")


def own_activation_fusable(layer) -> bool:
    """True when the layer's own `activation` argument (if any) is linear/relu/relu6."""
    return activation_name(getattr(layer, "activation", None)) in _FUSABLE


# Keras operation nodes that are activations: {class name: activation name}.
_ACTIVATION_OPS = {"Sigmoid": "sigmoid", "Softmax": "softmax", "Tanh": "tanh", "Gelu": "gelu"}


def output_activation(layer) -> str:
    """The activation a layer's output went through last ('softmax', 'relu', 'linear'...).

    A layer without an `activation` gives 'linear'; an unnamed function gives ''.
    An operation node (`ops.sigmoid(x)`) gives its function's name.
    """
    if isinstance(layer, L.Softmax):
        return "softmax"
    if type(layer).__module__.startswith("keras.src.ops."):
        return _ACTIVATION_OPS.get(type(layer).__name__, "linear")
    return activation_name(getattr(layer, "activation", None))


def int8_activation(fn, config):
    """What TFLite's int8 kernels compute for activation `fn`, when Keras's own is not it.

    silu/swish has no int8 kernel of its own: the converter writes LOGISTIC (its
    output on the fixed 1/256 grid) and MUL, so the sigmoid is rounded before the
    product. Returns `f(x, training, flags)` computing that, or None (for every
    other activation, and for 16-bit or symmetric activations, whose kernels differ).
    """
    from tfopt.quantization.quantizers import FixedRangeQuantizer

    if activation_name(fn) not in ("silu", "swish") or config is None:
        return None
    if config.activation_bits != 8 or config.symmetric_activations:
        return None
    rounded = FixedRangeQuantizer(*FIXED_OUTPUT_RANGES["sigmoid"])

    def silu(x, training, flags):
        return x * rounded(keras.activations.sigmoid(x), training, {}, **flags)

    return silu


def int16_calibrator(layer, spec) -> bool:
    """True when a 16x8 export must route this layer through TFLite's calibrator.

    TF 2.21's converter refuses int16 CONCATENATION and TILE tensors made from
    fake-quant ops, and gives LOGISTIC an output scale of 1/65536 that LiteRT's
    int16 kernel rejects.
    """
    return bool(spec is not None and spec.int16_calibrator) or output_activation(layer) == (
        "sigmoid"
    )


# --- the registrations -------------------------------------------------------------

_WEIGHTED = dict(folds_batchnorm=True, fuses_activation=True)

register_layer(L.Dense, LayerSpec("weighted", {"kernel": "last"}, dense=True, **_WEIGHTED))


def _dilated(layer) -> bool:
    return any(int(r) > 1 for r in getattr(layer, "dilation_rate", (1,)))


def _conv2d(layer):
    # A dilated conv the converter writes as SPACE_TO_BATCH_ND -> CONV_2D ->
    # BATCH_TO_SPACE_ND with the bias ADD after them, and a channels_first conv with
    # transposes around it: the CONV_2D output has no range of its own and runs float
    # (measured, TF 2.21). Left float on purpose, and said so, rather than a float
    # CONV_2D inside an "int8" file.
    if _dilated(layer) or getattr(layer, "data_format", "channels_last") != "channels_last":
        return LayerSpec("float")
    return LayerSpec("weighted", {"kernel": "last"}, **_WEIGHTED)


register_layer(L.Conv2D, _conv2d)
register_layer(L.DepthwiseConv2D, LayerSpec("weighted", {"kernel": "depthwise"}, **_WEIGHTED))
# Conv2DTranspose: per-tensor kernel (the converter cannot fold a per-channel fake-quant
# through the kernel transpose its TRANSPOSE_CONV needs), and no BN folding (its
# kernel's output channels are not on the last axis).
register_layer(
    L.Conv2DTranspose, LayerSpec("weighted", {"kernel": "tensor"}, fuses_activation=True)
)
# Quantized as TFLite runs it: DEPTHWISE_CONV_2D, an int8 tensor, then CONV_2D 1x1.
register_layer(
    L.SeparableConv2D, LayerSpec("weighted", {"kernel": "last"}, separable=True, **_WEIGHTED)
)


def _conv1d(layer):
    # A channels-last Conv1D of one group: per channel, run by the wrapper as
    # ExpandDims -> Conv2D on a 4-D kernel, the form the converter folds into a
    # per-channel CONV_2D (on the 3-D kernel it fails). Others: per tensor.
    grouped = int(getattr(layer, "groups", 1)) > 1
    if grouped and _dilated(layer):  # float CONV_2D in the file, as a dilated Conv2D
        return LayerSpec("float")
    if layer.data_format == "channels_last" and not grouped:
        return LayerSpec("weighted", {"kernel": "last"}, conv1d_as_conv2d=True, **_WEIGHTED)
    return LayerSpec("weighted", {"kernel": "tensor"}, **_WEIGHTED)


register_layer(L.Conv1D, _conv1d)
register_layer(
    L.ReLU, lambda layer: LayerSpec("activation" if is_fusable_activation(layer) else "output")
)
# Activations with an int8 kernel (or a sequence of them) whose output tfopt's
# fake-quantization predicts: fixed-range LOGISTIC/TANH/SOFTMAX, GELU, HARD_SWISH,
# LEAKY_RELU, and silu as LOGISTIC + MUL (`int8_activation`).
_INT8_ACTIVATIONS = ("sigmoid", "tanh", "softmax", "gelu", "hard_silu", "silu", "leaky_relu")
# Clipping activations the conv / fully-connected / add kernels fuse (RELU_N1_TO_1).
_FUSED_CLIPS = ("hard_tanh",)


def _activation_layer(layer):
    # relu/relu6 (and hard_tanh's clip): fused into the op before; linear
    # (keras.applications' classifier_activation=None): an identity on its input's
    # grid; an activation with no int8 kernel (elu, softplus, log_softmax, whose int8
    # kernel has a fixed scale tfopt does not model...): left float.
    name = activation_name(layer.activation)
    if is_fusable_activation(layer) or name in _FUSED_CLIPS:
        return LayerSpec("activation")
    if name == "linear":
        return LayerSpec("passthrough")
    if name in _INT8_ACTIVATIONS:
        return LayerSpec("output")
    return LayerSpec("float")


register_layer(L.Activation, _activation_layer)
register_layer(L.Add, LayerSpec("output", fuses_activation=True))
register_layer(L.Subtract, LayerSpec("output", fuses_activation=True))
register_layer(L.Multiply, LayerSpec("output"))
register_layer(L.Concatenate, LayerSpec("concat", int16_calibrator=True))
for _cls in (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.Softmax, L.LeakyReLU):
    register_layer(_cls, LayerSpec("output"))
# No int8 LayerNormalization kernel: the converter writes MEAN, SQUARED_DIFFERENCE,
# RSQRT, MUL, ADD, each with a scale of its own that tfopt does not model.
register_layer(L.LayerNormalization, LayerSpec("float"))
# MultiHeadAttention and Dense-like EinsumDense layers are taken apart before the
# transform (`_attention`): FULLY_CONNECTED, MUL, BATCH_MATMUL and SOFTMAX, all int8.
# What cannot be taken apart (a subclass, another einsum equation) stays float.
register_layer(L.MultiHeadAttention, LayerSpec("float"))
register_layer(L.EinsumDense, LayerSpec("float"))
# A masked attention softmax: -1e9 has no int8 code on the scores' grid.
register_layer(_attention.MaskedSoftmax, LayerSpec("float"))
register_layer(_attention.HeadsReshape, LayerSpec("passthrough"))
# Recurrent layers: the hybrid route (recurrent part float, the rest int8). TFLite's
# int8 fused LSTM needs the converter's own calibration of a fused op Keras 3's
# layers do not lower to.
for _cls in (L.LSTM, L.GRU, L.SimpleRNN, L.Bidirectional):
    register_layer(_cls, LayerSpec("float"))
# Embedding: TFLite's int8 GATHER reads an int8 table (one scale for the table).
register_layer(L.Embedding, LayerSpec("weighted", {"embeddings": "tensor"}))
register_layer(L.Rescaling, LayerSpec("input_transform"))
register_layer(L.Normalization, LayerSpec("input_transform"))
register_layer(L.BatchNormalization, LayerSpec("batchnorm"))
register_layer(L.AveragePooling1D, LayerSpec("same_scale"))
register_layer(L.AveragePooling2D, LayerSpec("same_scale"))
for _cls in (
    L.MaxPooling1D,
    L.MaxPooling2D,
    L.GlobalMaxPooling1D,
    L.GlobalMaxPooling2D,
    L.Flatten,
    L.Reshape,
    L.Dropout,
    L.SpatialDropout1D,
    L.SpatialDropout2D,
    L.ZeroPadding1D,
    L.ZeroPadding2D,
    L.Cropping1D,
    L.Cropping2D,
    L.InputLayer,
    L.Masking,  # keeps or zeroes whole timesteps: 0.0 is exact on every int8 grid
):
    register_layer(_cls, LayerSpec("passthrough"))
register_layer(L.UpSampling1D, LayerSpec("passthrough", int16_calibrator=True))
# Nearest upsampling copies values (its input's scale); bilinear computes new ones.
register_layer(
    L.UpSampling2D,
    lambda layer: LayerSpec(
        "passthrough" if layer.interpolation == "nearest" else "output", int16_calibrator=True
    ),
)

# --- Keras operation nodes (`x + 3.0`, `ops.mean(x)`, `x[:, 1:]`) ---------------------
# A functional model records `ops` calls as nodes. Their int8 TFLite kernels: ADD, SUB
# and MUL with a constant or tensor (own output scale; ADD/SUB fuse a ReLU), MEAN
# (own output scale), RELU/RELU6 (fused into the op before them), LOGISTIC/SOFTMAX/
# TANH (fixed output scales), GELU; RESHAPE, TRANSPOSE, SQUEEZE, EXPAND_DIMS,
# STRIDED_SLICE keep their input's scale; CONCATENATION takes one scale.
for _cls in operation_classes("numpy", ("Add", "Subtract")).values():
    register_layer(_cls, LayerSpec("output", fuses_activation=True))
# Einsum of two activations: BATCH_MATMUL (per-tensor operands, own output scale).
for _cls in operation_classes("numpy", ("Multiply", "Mean", "Einsum")).values():
    register_layer(_cls, LayerSpec("output"))
for _cls in operation_classes("nn", ("Sigmoid", "Softmax", "Gelu")).values():
    register_layer(_cls, LayerSpec("output"))
for _cls in operation_classes("numpy", ("Tanh",)).values():
    register_layer(_cls, LayerSpec("output"))
for _cls in operation_classes("nn", ("Relu", "Relu6")).values():
    register_layer(_cls, LayerSpec("activation"))
for _cls in operation_classes(
    "numpy", ("Reshape", "Transpose", "Squeeze", "ExpandDims", "GetItem")
).values():
    register_layer(_cls, LayerSpec("passthrough"))
for _cls in operation_classes("core", ("Slice",)).values():
    register_layer(_cls, LayerSpec("passthrough"))
for _cls in operation_classes("numpy", ("Concatenate",)).values():
    register_layer(_cls, LayerSpec("concat"))

# keras.applications.ConvNeXt's LayerScale (x * gamma, one gamma per channel): TFLite's
# int8 MUL takes gamma as a per-tensor int8 constant.
try:
    from keras.src.applications.convnext import LayerScale as _LayerScale
except ImportError:  # a Keras without it
    _LayerScale = None
if _LayerScale is not None:
    register_layer(_LayerScale, LayerSpec("weighted", {"gamma": "tensor"}))
