"""Which weights of which layers get pruned, and the extension points for your own layers.

A readable table: layer class -> (attribute path of each prunable weight, the
weight's input-channel axis used by m:n sparsity), filled through
`register_prunable` for the built-in layers as for a user's. Layers with no
weights, and the normalization layers registered with no weights, pass through
unpruned. Bidirectional and TimeDistributed prune what their inner layers
prune. Your own layers either implement `PrunableLayer.get_prunable_weights()`
or are registered with `register_prunable`.
"""

from __future__ import annotations

import abc

import keras

from tfopt._keras import check_layer_class, check_registered_class, registry_items

L = keras.layers

# Registered classes -> ((attribute path, m:n axis), ...); () for layers kept dense.
# Filled below through register_prunable, and by users.
_REGISTRY: dict[type, tuple[tuple[str, int], ...]] = {}


def register_prunable(layer_class: type, weights, *, override: bool = False) -> type:
    """Registers which weights of `layer_class` magnitude pruning prunes.

    Subclasses match too (the most specific registered class wins), as
    tfmot's registry does for its built-in layers. `weights` names each prunable
    weight by its attribute path on the layer ("kernel", "cell.kernel") with the
    axis that m:n sparsity groups along (the input-channel axis: -2 for a
    Dense/ConvND kernel). An empty `weights` registers a layer that has weights
    but is kept dense (pruning it would save nothing, e.g. a normalization).

    Example:

    ```python
    class Gated(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], 8))
        def call(self, x):
            return keras.ops.matmul(x, self.w)

    tfopt.pruning.register_prunable(Gated, [("w", -2)])
    ```

    Args:
        layer_class: a subclass of `keras.layers.Layer`.
        weights: a sequence of (attribute path, m:n axis) pairs, or of attribute
            paths (axis -2).
        override: replace an existing registration. Defaults to `False`.

    Returns:
        `layer_class`.

    Raises:
        TypeError: `layer_class` is not a Keras layer class, or a malformed entry.
        ValueError: the class is registered already and `override` is False.
    """
    check_layer_class(layer_class)
    example = "e.g. [('kernel', -2)], ['kernel'] or {'kernel': -2}"
    items = registry_items(weights, "a list of (attribute path, axis) pairs", example)
    entries = []
    for item in items:
        pair = (item, -2) if isinstance(item, str) else item
        valid = isinstance(pair, (list, tuple)) and len(pair) == 2
        if valid:
            path, axis = pair
            valid = (
                isinstance(path, str)
                and bool(path)
                and isinstance(axis, int)
                and not isinstance(axis, bool)
            )
        if not valid:
            raise TypeError(
                f"Argument `weights` must hold (attribute path, axis) pairs, {example}. "
                f"Received the entry {item!r}"
            )
        entries.append((path, axis))
    if layer_class in _REGISTRY and not override:
        raise ValueError(
            f"Layer class {layer_class.__name__} is registered already. Pass override=True to "
            "replace its entry."
        )
    _REGISTRY[layer_class] = tuple(entries)
    return layer_class


def unregister_prunable(layer_class: type) -> None:
    """Removes a registration made with `register_prunable` (no error if there is none).

    Raises:
        TypeError: `layer_class` is not a class.
    """
    check_registered_class(layer_class)
    _REGISTRY.pop(layer_class, None)


def _entry(layer):
    """The registered entry of the most specific class `layer` is an instance of, or None."""
    for cls in type(layer).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    return None


# The m:n axis is the input-channel axis: Dense (in, out) and ConvND (..., in, out) -> -2;
# ConvNDTranspose (..., out, in) -> -1; EinsumDense's kernel starts with its input axis.
for _cls, _weights in (
    (L.Dense, (("kernel", -2),)),
    (L.EinsumDense, (("kernel", 0),)),
    (L.Conv1DTranspose, (("kernel", -1),)),
    (L.Conv2DTranspose, (("kernel", -1),)),
    (L.Conv3DTranspose, (("kernel", -1),)),
    (L.DepthwiseConv1D, (("kernel", -2),)),
    (L.DepthwiseConv2D, (("kernel", -2),)),
    (L.SeparableConv1D, (("depthwise_kernel", -2), ("pointwise_kernel", -2))),
    (L.SeparableConv2D, (("depthwise_kernel", -2), ("pointwise_kernel", -2))),
    (L.Conv1D, (("kernel", -2),)),
    (L.Conv2D, (("kernel", -2),)),
    (L.Conv3D, (("kernel", -2),)),
    (L.Embedding, (("embeddings", -1),)),
    (L.LSTM, (("cell.kernel", -2), ("cell.recurrent_kernel", -2))),
    (L.GRU, (("cell.kernel", -2), ("cell.recurrent_kernel", -2))),
    (L.SimpleRNN, (("cell.kernel", -2), ("cell.recurrent_kernel", -2))),
    (
        L.MultiHeadAttention,
        (
            ("_query_dense.kernel", 0),
            ("_key_dense.kernel", 0),
            ("_value_dense.kernel", 0),
            ("_output_dense.kernel", 0),
        ),
    ),
    # Layers with weights that stay dense (pruning them saves nothing and hurts accuracy).
    (L.BatchNormalization, ()),
    (L.LayerNormalization, ()),
    (L.GroupNormalization, ()),
    (L.UnitNormalization, ()),
    (L.Normalization, ()),
    (L.PReLU, ()),
):
    register_prunable(_cls, _weights)


# Keras layers that hold layers: they prune what their inner layers prune (attribute names
# of the inner layers). A pruning wrapper goes around them, never inside: Bidirectional
# rebuilds its layer from a config with go_backwards, TimeDistributed calls it once per
# time step.
_CONTAINERS: dict[type, tuple[str, ...]] = {
    L.Bidirectional: ("forward_layer", "backward_layer"),
    L.TimeDistributed: ("layer",),
}


def _inner_layers(layer) -> list | None:
    """The inner layers of a container layer (Bidirectional, TimeDistributed), else None.

    A registration of the container class itself (or a PrunableLayer) takes precedence.
    """
    if isinstance(layer, PrunableLayer) or _entry(layer) is not None:
        return None
    for cls in type(layer).__mro__:
        if cls in _CONTAINERS:
            return [getattr(layer, name) for name in _CONTAINERS[cls]]
    return None


class PrunableLayer(abc.ABC):
    """Interface for your own layers: says which of their weights to prune.

    Example:

    ```python
    class MyDense(keras.layers.Dense, tfopt.pruning.PrunableLayer):
        def get_prunable_weights(self):
            return [self.kernel]
    ```
    """

    @abc.abstractmethod
    def get_prunable_weights(self) -> list:
        """Returns the list of weight variables to prune (the layer is built)."""


def _attribute(layer, path: str):
    value = layer
    for part in path.split("."):
        value = getattr(value, part)
    return value


def is_known(layer) -> bool:
    """True when tfopt knows what to prune in `layer` (maybe nothing)."""
    inner = _inner_layers(layer)
    if inner is not None:
        return all(is_known(item) for item in inner)
    return isinstance(layer, PrunableLayer) or _entry(layer) is not None


def has_prunable_weights(layer) -> bool:
    """True when `layer` (by its class, or its inner layers' classes) has weights tfopt prunes."""
    inner = _inner_layers(layer)
    if inner is not None:
        return any(has_prunable_weights(item) for item in inner)
    return isinstance(layer, PrunableLayer) or bool(_entry(layer))


def weight_labels(layer) -> dict[int, str]:
    """{id(variable): its path inside `layer`}, e.g. "forward_lstm/lstm_cell/kernel".

    Built from the layer tree (sublayer names), not from variable paths, which
    depend on the name scopes open when the layer was built.
    """
    labels = {}
    for child in layer._flatten_layers(include_self=False, recursive=False):
        for key, label in weight_labels(child).items():
            labels.setdefault(key, f"{child.name}/{label}")
    for weight in layer.weights:
        labels.setdefault(id(weight), weight.name)
    return labels


def prunable_weights(layer) -> list[tuple[object, int]]:
    """The (variable, m:n axis) pairs to prune in a built `layer`.

    Args:
        layer: a built Keras layer known to the registry or a `PrunableLayer`.

    Returns:
        A list of (variable, axis), empty for layers with nothing to prune.
    """
    inner = _inner_layers(layer)
    if inner is not None:  # Bidirectional: both directions; TimeDistributed: its layer
        return [pair for item in inner for pair in prunable_weights(item)]
    if isinstance(layer, PrunableLayer):
        return [(w, -2 if len(w.shape) >= 2 else 0) for w in layer.get_prunable_weights()]
    pairs = []
    for path, axis in _entry(layer) or ():
        try:
            variable = _attribute(layer, path)
        except AttributeError:
            variable = None
        if not isinstance(variable, keras.Variable):
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) has no weight variable at "
                f"{path!r}, which its pruning registration names (found "
                f"{type(variable).__name__ if variable is not None else 'nothing'}). Fix it "
                f"with tfopt.pruning.register_prunable({type(layer).__name__}, [...], "
                "override=True); the layer must create its weights in build()."
            )
        if not -len(variable.shape) <= axis < len(variable.shape):
            raise ValueError(
                f"The pruning registration of {type(layer).__name__} gives weight {path!r} "
                f"(shape {tuple(variable.shape)}) the m:n axis {axis}, outside its "
                f"{len(variable.shape)} axes."
            )
        pairs.append((variable, axis))
    return pairs
