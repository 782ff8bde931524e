"""Which weights of which layers get pruned, and the extension point for your own layers.

A readable table: built-in layer class -> (attribute path of each prunable
weight, the weight's input-channel axis used by m:n sparsity). Layers with no
weights, and the normalization layers listed in `_KEPT_DENSE`, pass through
unpruned. Your own layers implement `PrunableLayer.get_prunable_weights()`.
"""

from __future__ import annotations

import abc

import keras

L = keras.layers

# class -> ((attribute path, m:n axis), ...). The m:n axis is the input-channel axis:
# Dense (in, out) and ConvND (..., in, out) -> -2; ConvNDTranspose (..., out, in) -> -1.
_PRUNABLE: tuple[tuple[type, tuple[tuple[str, int], ...]], ...] = (
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
)

# Layers with weights that stay dense (pruning them saves nothing and hurts accuracy).
_KEPT_DENSE: tuple[type, ...] = (
    L.BatchNormalization,
    L.LayerNormalization,
    L.GroupNormalization,
    L.UnitNormalization,
    L.Normalization,
    L.PReLU,
)


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
    if isinstance(layer, PrunableLayer):
        return True
    return any(isinstance(layer, cls) for cls, _ in _PRUNABLE) or isinstance(layer, _KEPT_DENSE)


def has_prunable_weights(layer) -> bool:
    """True when `layer` (by its class) has weights tfopt prunes."""
    if isinstance(layer, PrunableLayer):
        return True
    return any(isinstance(layer, cls) for cls, _ in _PRUNABLE)


def prunable_weights(layer) -> list[tuple[object, int]]:
    """The (variable, m:n axis) pairs to prune in a built `layer`.

    Args:
        layer: a built Keras layer known to the registry or a `PrunableLayer`.

    Returns:
        A list of (variable, axis), empty for layers with nothing to prune.
    """
    if isinstance(layer, PrunableLayer):
        return [(w, -2 if len(w.shape) >= 2 else 0) for w in layer.get_prunable_weights()]
    for cls, entries in _PRUNABLE:
        if isinstance(layer, cls):
            return [(_attribute(layer, path), axis) for path, axis in entries]
    return []
