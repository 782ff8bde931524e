"""Compress part of a model for a measurement: quantize some layers, or prune some layers.

Quantization works on groups of layers ("units") as QAT quantizes them: a
conv/dense with the BatchNormalization folded into it and the ReLU fused after
it are one int8 op, so they are quantized (and left in float) together.
Pruning works layer by layer, in place, and always puts the weights back.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from tfopt.report._evaluation import rows, take


@dataclasses.dataclass(frozen=True)
class Unit:
    """Layers compressed together, named by the first of them."""

    name: str
    layer_class: str
    members: tuple[str, ...]
    weights: int = 0  # prunable weights (pruning)


# ----------------------------------------------------------------------------- quantization


def _functional(model):
    import keras

    from tfopt._keras import is_graph_model, sequential_as_functional

    if not isinstance(model, keras.Model):
        raise TypeError(
            "Argument `model` must be a Keras model. "
            f"Received: model of type {type(model).__name__}"
        )
    if isinstance(model, keras.Sequential):
        return sequential_as_functional(model, "model")
    if not is_graph_model(model):
        raise TypeError(
            f"Argument `model` is a subclassed model ({type(model).__name__}): QAT needs a "
            "functional or Sequential model (quantize_apply does), so its layers' sensitivity "
            "cannot be measured this way."
        )
    return model


def quantization_units(model) -> tuple[list[Unit], list[dict]]:
    """The quantizable units of a functional/Sequential model, and the layers left out.

    A unit is a layer the registry quantizes ("weighted", "output", "concat",
    "same_scale", "input_transform", "activation", "batchnorm"), plus for a
    weighted layer the BatchNormalization QAT folds into it and the ReLU it
    fuses, and for an Add the ReLU it fuses. Layers that only move values
    (kind "passthrough": pooling by max, Flatten, Reshape, Dropout...) keep
    their input's grid and are no unit; layers the registry does not know are
    listed in the second value with the reason.
    """
    import keras

    from tfopt.quantization import registry, tflite_scheme

    graph = _functional(model)
    nodes = [
        node
        for depth in sorted(graph._nodes_by_depth, reverse=True)
        for node in graph._nodes_by_depth[depth]
        if node.operation is not None and not node.is_input
    ]
    consumers: dict[int, list] = {}
    for node in nodes:
        for t in node.input_tensors:
            consumers.setdefault(id(t), []).append(node)
    for out in graph.outputs:
        consumers.setdefault(id(out), []).append(None)

    def single_consumer(node):
        if len(node.outputs) != 1:
            return None
        users = consumers.get(id(node.outputs[0]), [])
        return users[0] if len(users) == 1 else None

    def kind(node):
        spec = registry.spec_for(node.operation) if node is not None else None
        return None if spec is None else spec.kind

    units, skipped, claimed = [], [], set()
    for node in nodes:
        layer = node.operation
        if id(layer) in claimed:
            continue
        if isinstance(layer, keras.Model):
            raise ValueError(
                f"Argument `model`: layer {layer.name!r} is a nested model. QAT quantizes flat "
                "models: rebuild it so its layers are called directly, or analyse the nested "
                "model on its own."
            )
        spec = registry.spec_for(layer)
        if spec is None:
            skipped.append({"layer": layer.name, "reason": "not supported by QAT (stays float)"})
            continue
        if spec.kind == "passthrough":
            continue
        members, tail = [layer], node
        if spec.kind == "weighted" and spec.folds_batchnorm:
            activation = tflite_scheme.activation_name(getattr(layer, "activation", None))
            user = single_consumer(node)
            if activation == "linear" and kind(user) == "batchnorm":
                members.append(user.operation)
                tail = user
        if spec.fuses_activation:
            user = single_consumer(tail)
            if kind(user) == "activation":
                members.append(user.operation)
        claimed.update(id(m) for m in members)
        units.append(Unit(layer.name, type(layer).__name__, tuple(m.name for m in members)))
    return units, skipped


def annotated_clone(model, names):
    """A clone of `model` in which the layers named in `names` are annotated for QAT."""
    import keras

    from tfopt._keras import clone_layer
    from tfopt.quantization import QuantizeAnnotate

    names = set(names)

    def clone(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        copy = clone_layer(layer)
        return QuantizeAnnotate(copy) if layer.name in names else copy

    annotated = keras.models.clone_model(model, clone_function=clone)
    for new, old in zip(annotated.layers, model.layers):
        new.set_weights(old.get_weights())
    return annotated


def calibrate(qat, x, batch_size: int, steps: int) -> None:
    """Observes a fresh QAT model's ranges on `x` in training mode, without changing weights.

    Folded BatchNorm statistics are frozen first (so BN keeps the float model's
    moving statistics); each step runs one batch forward with `training=True`,
    which is all the range quantizers need. No optimizer step is taken.
    """
    from tfopt._layers import find_layers
    from tfopt.quantization import QuantizeWrapper

    for wrapper in find_layers(qat, QuantizeWrapper):
        if getattr(wrapper, "bn_frozen", None) is not None:
            wrapper.bn_frozen.assign(1.0)
    n = rows(x)
    for step in range(steps):
        start = (step * batch_size) % n
        qat(take(x, start, min(start + batch_size, n)), training=True)


# ----------------------------------------------------------------------------- pruning


def pruning_units(model) -> tuple[list[Unit], list]:
    """The layers with prunable weights (nested models included), and those layers."""
    from tfopt.pruning import PruneLowMagnitude, prune_registry

    found = []

    def walk(layer):
        if isinstance(layer, PruneLowMagnitude):
            found.append(layer.layer)
            return
        if prune_registry.has_prunable_weights(layer) and layer.built:
            found.append(layer)
            return
        for child in layer._flatten_layers(include_self=False, recursive=False):
            walk(child)

    walk(model)
    units = [
        Unit(
            layer.name,
            type(layer).__name__,
            (layer.name,),
            int(sum(np.prod(w.shape) for w, _ in prune_registry.prunable_weights(layer))),
        )
        for layer in found
    ]
    return units, found


@contextlib.contextmanager
def pruned(layers, sparsity: float):
    """Zeros the smallest-magnitude `sparsity` of each prunable weight of `layers`, in place.

    The rule of `prune_low_magnitude`'s masks (tfmot's: per weight tensor, the
    `round(size * (1 - sparsity))` largest magnitudes kept). The weights are put
    back when the block exits, whatever happens inside it.
    """
    from tfopt.pruning import prune_registry
    from tfopt.pruning.masks import magnitude_mask

    saved = []
    try:
        for layer in layers:
            for weight, _ in prune_registry.prunable_weights(layer):
                value = weight.numpy()
                saved.append((weight, value))
                mask = np.asarray(magnitude_mask(value, np.float32(sparsity)))
                weight.assign(value * mask)
        yield
    finally:
        for weight, value in saved:
            weight.assign(value)
