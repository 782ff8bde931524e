"""The public layer registry: how each Keras layer class takes part in QAT.

Every built-in layer is registered through the same `register_layer` call a user
makes for their own layer (see `tfopt/quantization/tflite_scheme.py`), so a
custom layer is a first-class citizen: `quantize_model` wraps it, folds a
BatchNormalization into it, fuses a ReLU after it and the exporters read it
exactly as they read a built-in one.

Kinds (`LayerSpec.kind`):
    "weighted": weights fake-quantized (per channel where the config says so),
        output quantized unless a fusable ReLU/ReLU6 follows it (then the
        activation quantizes, so the int8 kernel runs op+bias+relu fused).
    "activation": a ReLU/ReLU6 the int8 kernels can fuse into the op before it;
        output quantized.
    "output": computes new values (Add, Concatenate, average of a window...);
        output quantized.
    "passthrough": moves or selects values (max pooling, reshape, padding...);
        output keeps its input's quantization, as the int8 kernels require.
    "same_scale": computes new values but the int8 kernel keeps its input's scale
        and zero point (average pooling); the output is rounded back onto the
        input's grid the way that kernel rounds (half away from zero).
    "concat": all inputs on the output's scale. A producer that feeds only the
        concat (through "passthrough" layers) drops its own output quantizer; any
        other input (a skip connection that also feeds other layers, a model
        input, another concat's output) shares one range with the concat's
        output through a `SharedQuantize`.
    "input_transform": runs in float on the raw input (Rescaling), output
        quantized: the integer graph starts after it.
    "batchnorm": folded into the preceding weighted layer, else output quantized.
    "float": TFLite has no int8 kernel for it (ELU, softplus, mish...): QAT leaves
        it float, with a `FloatBoundary` on each side, and warns; the exported
        file lists it among the ops left in float.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from tfopt._keras import check_layer_class, check_registered_class, registry_items
from tfopt.quantization._layouts import LAYOUTS

KINDS = (
    "weighted",
    "activation",
    "output",
    "passthrough",
    "same_scale",
    "concat",
    "input_transform",
    "batchnorm",
    "float",
)


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """How one layer class is quantized: its kind, weights, and what it fuses with.

    Example:

    ```python
    spec = tfopt.quantization.LayerSpec(
        "weighted", weights={"kernel": "last"}, folds_batchnorm=True, fuses_activation=True
    )
    ```

    Args:
        kind: one of `KINDS` (see the module docstring). Required.
        weights: {weight attribute: layout} (or a tuple of pairs) of the weights
            to fake-quantize; only for "weighted". Layouts say where a kernel's
            output channels sit: "last" (Dense, ConvND: the last axis),
            "depthwise" (DepthwiseConv: in x multiplier on the last two axes),
            "transpose" (ConvNDTranspose: the second to last axis) or "tensor"
            (always one range per tensor). Defaults to `()`.
        dense: the kernel takes the config's `dense_per_channel` instead of
            `per_channel` (Dense-like layers). Defaults to `False`.
        separable: SeparableConv2D-like: quantized as TFLite runs it, a
            depthwise conv, an int8 tensor, then a 1x1 conv. Defaults to `False`.
        conv1d_as_conv2d: a channels-last Conv1D the wrapper runs as
            ExpandDims -> Conv2D so the converter folds a per-channel kernel.
            Defaults to `False`.
        folds_batchnorm: a BatchNormalization right after it (and nothing else
            reading its output) is folded into its kernel and bias; the kernel's
            output channels must be on the axis its layout names. Defaults to `False`.
        fuses_activation: the int8 kernel fuses a following ReLU/ReLU6 (no
            quantization between them). Defaults to `False`.
        int16_calibrator: TFLite's converter cannot make this layer's int16
            tensors from fake-quant ops (TF 2.21: CONCATENATION, TILE, LOGISTIC),
            so a 16x8 export routes the model through TFLite's calibrator with
            the trained ranges. Defaults to `False`.

    Raises:
        ValueError: an unknown kind or layout, or weights on a kind without weights.
    """

    kind: str
    weights: tuple = ()
    dense: bool = False
    separable: bool = False
    conv1d_as_conv2d: bool = False
    folds_batchnorm: bool = False
    fuses_activation: bool = False
    int16_calibrator: bool = False

    def __post_init__(self):
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise ValueError(
                f"Argument `kind` must be one of {KINDS}. Received: kind={self.kind!r}"
            )
        weights = _weight_pairs(self.weights)
        for name, layout in weights:
            if layout not in LAYOUTS:
                raise ValueError(
                    f"Argument `weights` has an unknown layout {layout!r} for {name!r}. "
                    f"Layouts: {LAYOUTS}"
                )
        if weights and self.kind != "weighted":
            raise ValueError(
                f"Argument `weights` is only for kind='weighted'. Received: kind={self.kind!r}, "
                f"weights={dict(weights)!r}"
            )
        if self.kind == "weighted" and not weights:
            raise ValueError(
                "Argument `weights` must name at least one weight for kind='weighted' (a "
                "weighted layer with no quantized weight would stay float in an int8 file), "
                "e.g. weights={'kernel': 'last'}. A layer without weights to quantize is "
                "'output', 'passthrough' or 'same_scale'. Received: weights=()"
            )
        for flag in _FLAGS:
            value = getattr(self, flag)
            if not isinstance(value, bool):
                raise TypeError(f"Argument `{flag}` must be a bool. Received: {flag}={value!r}")
            allowed = _FLAG_KINDS.get(flag)
            if value and allowed and self.kind not in allowed:
                raise ValueError(
                    f"Argument `{flag}=True` applies to kind {' or '.join(map(repr, allowed))}. "
                    f"Received: kind={self.kind!r}"
                )
        object.__setattr__(self, "weights", weights)


_FLAGS = (
    "dense",
    "separable",
    "conv1d_as_conv2d",
    "folds_batchnorm",
    "fuses_activation",
    "int16_calibrator",
)
# The kinds a flag means something for (absent: any kind).
_FLAG_KINDS = {
    "dense": ("weighted",),
    "separable": ("weighted",),
    "conv1d_as_conv2d": ("weighted",),
    "folds_batchnorm": ("weighted",),
    "fuses_activation": ("weighted", "output"),
}


def _weight_pairs(weights) -> tuple:
    """`weights` ({name: layout} or pairs) as a tuple of (name, layout) pairs.

    Raises:
        TypeError: anything else (a bare name, a list of names, None...).
    """
    example = "e.g. weights={'kernel': 'last'} or (('kernel', 'last'),)"
    items = registry_items(weights, "a dict of weight attribute -> layout", example)
    pairs = []
    for item in items:
        if (
            not isinstance(item, (list, tuple))
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], str)
        ):
            raise TypeError(
                f"Argument `weights` must map weight attribute names to layouts, {example}. "
                f"Received the entry {item!r}"
            )
        pairs.append((item[0], item[1]))
    return tuple(pairs)


SpecRule = Callable[[keras.layers.Layer], "LayerSpec | None"]

# Filled by tflite_scheme (imported by tfopt.quantization's __init__) and by users.
_REGISTRY: dict[type, LayerSpec | SpecRule] = {}


def register_layer(layer_class: type, spec: LayerSpec | SpecRule, *, override: bool = False):
    """Registers how `quantize_model` quantizes instances of `layer_class`.

    The class is matched exactly (a subclass needs its own registration: it may
    compute something else). `spec` is a `LayerSpec`, or a function of the layer
    instance returning one (or None: not quantizable in that configuration).

    Example:

    ```python
    class ScaledDense(keras.layers.Dense):
        pass

    tfopt.quantization.register_layer(
        ScaledDense, tfopt.quantization.LayerSpec("weighted", weights={"kernel": "last"},
                                                  dense=True, fuses_activation=True))
    ```

    Args:
        layer_class: a subclass of `keras.layers.Layer`, or of `keras.Operation`
            for the `ops` calls a functional model records as nodes (`x + 3.0`,
            `ops.mean`, slicing); an operation node takes the spec's kind, with
            no weights.
        spec: a `LayerSpec`, or a callable `spec(layer) -> LayerSpec | None`.
        override: replace an existing registration. Defaults to `False`.

    Returns:
        `layer_class` (so this works as a decorator's body).

    Raises:
        TypeError: `layer_class` is not a Keras layer or operation class, or `spec`
            is neither a LayerSpec nor callable.
        ValueError: the class is registered already and `override` is False.
    """
    check_layer_class(layer_class, operations=True)
    if isinstance(spec, type) or (not isinstance(spec, LayerSpec) and not callable(spec)):
        raise TypeError(
            "Argument `spec` must be a tfopt.quantization.LayerSpec or a function of the layer "
            f"returning one. Received: spec of type {type(spec).__name__}"
        )
    if layer_class in _REGISTRY and not override:
        raise ValueError(
            f"Layer class {layer_class.__name__} is registered already. Pass override=True to "
            "replace its spec."
        )
    _REGISTRY[layer_class] = spec
    return layer_class


def unregister_layer(layer_class: type) -> None:
    """Removes a registration made with `register_layer` (no error if there is none).

    Args:
        layer_class: the registered class.

    Raises:
        TypeError: `layer_class` is not a class.
    """
    check_registered_class(layer_class)
    _REGISTRY.pop(layer_class, None)


def spec_for(layer) -> LayerSpec | None:
    """The `LayerSpec` of a layer instance, or None when QAT does not know the layer.

    Args:
        layer: a Keras layer.

    Returns:
        Its `LayerSpec`, or None.
    """
    entry = _REGISTRY.get(type(layer))
    if entry is None or isinstance(entry, LayerSpec):
        return entry
    try:
        spec = entry(layer)
    except Exception as err:
        err.add_note(
            f"(raised by the spec function registered for {type(layer).__name__} with "
            f"tfopt.quantization.register_layer, on layer {layer.name!r})"
        )
        raise
    if spec is not None and not isinstance(spec, LayerSpec):
        raise TypeError(
            f"The spec function registered for {type(layer).__name__} returned "
            f"{type(spec).__name__}, not a LayerSpec or None."
        )
    return spec


def supported_layers() -> list[str]:
    """Class names of the layers QAT handles (built-in and registered), sorted.

    Keras's own layers by name ("Conv2D"), Keras operation nodes as "ops.Add",
    others by module and name ("my_package.layers.MyConv"), so a user's class is
    never confused with a Keras one of the same name.

    Returns:
        A list of class names.
    """
    return sorted(_display_name(cls) for cls in _REGISTRY)


def _display_name(cls) -> str:
    if cls.__module__.startswith("keras.src.ops."):  # an operation node, e.g. ops.Add
        return f"ops.{cls.__name__}"
    if cls.__module__.startswith("keras."):
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"
