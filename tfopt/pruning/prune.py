"""`prune_low_magnitude` (wrap layers or clone models with wrappers) and `strip_pruning`."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from tfopt._keras import clone_layer, is_graph_model, is_tf_keras
from tfopt.pruning import prune_registry
from tfopt.pruning._limits import _m_by_n_message, _m_by_n_misfits
from tfopt.pruning.pruning_callbacks import collect_pruning_layers
from tfopt.pruning.pruning_schedule import PruningSchedule
from tfopt.pruning.pruning_wrapper import PruneLowMagnitude, _check_params


def _copy_layer(layer):
    """A new layer with the same class, config, build and weights (not sharing variables)."""
    return clone_layer(layer, copy_weights=True)


def _subclassed_message(model) -> str:
    return (
        f"Model {model.name!r} of class {type(model).__name__} is a subclassed model; "
        "prune_low_magnitude can clone only Sequential and functional models. Wrap its inner "
        "layers instead, where the model builds them: "
        "self.dense = tfopt.pruning.prune_low_magnitude(keras.layers.Dense(10), ...)."
    )


def _matches(layer, leave_dense) -> bool:
    return any(
        (isinstance(item, str) and item == layer.name)
        or (isinstance(item, type) and isinstance(layer, item))
        for item in leave_dense
    )


def _prune_model(model, params: dict, leave_dense):
    def clone_function(layer):
        if not isinstance(layer, keras.layers.Layer):
            return layer  # a stateless keras.ops node, e.g. the mask of Embedding(mask_zero)
        if isinstance(layer, keras.Model):
            if is_graph_model(layer):
                return _prune_model(layer, params, leave_dense)
            if _matches(layer, leave_dense) or not layer.weights:
                return _copy_layer(layer)
            raise ValueError(_subclassed_message(layer))
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        if _matches(layer, leave_dense):
            return _copy_layer(layer)
        if not prune_registry.has_prunable_weights(layer):
            if prune_registry.is_known(layer) or not layer.weights:
                return _copy_layer(layer)  # nothing to prune: passes through
            raise ValueError(
                f"Layer {layer.name!r} of class {type(layer).__name__} is not supported for "
                "pruning: tfopt does not know which of its weights to prune. Make it a "
                "tfopt.pruning.PrunableLayer (implement get_prunable_weights()), or leave it "
                f"dense: prune_low_magnitude(model, ..., leave_dense=[{layer.name!r}])."
            )
        return PruneLowMagnitude(_copy_layer(layer), **params)

    return keras.models.clone_model(model, clone_function=clone_function)


def prune_low_magnitude(
    to_prune,
    pruning_schedule: PruningSchedule | None = None,
    block_size: tuple[int, int] = (1, 1),
    block_pooling_type: str = "AVG",
    sparsity_m_by_n: tuple[int, int] | None = None,
    *,
    leave_dense: Sequence[str | type] = (),
    **kwargs,
):
    """Wraps a layer, a list of layers or every prunable layer of a model for pruning.

    A model (Sequential or functional, nested ones included) is cloned: the
    result holds copies of the layers with the same weights, each prunable one
    in a `PruneLowMagnitude`; the model passed in is not modified. Layers with
    nothing to prune (pooling, BatchNormalization, ...) pass through.

    Example:

    ```python
    pruned = tfopt.pruning.prune_low_magnitude(
        model, tfopt.pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000)
    )
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(x, y, epochs=2, callbacks=[tfopt.pruning.UpdatePruningStep()])
    small = tfopt.pruning.strip_pruning(pruned)
    ```

    Args:
        to_prune: a `keras.layers.Layer`, a list of layers, or a Sequential /
            functional `keras.Model`.
        pruning_schedule: a `PruningSchedule` (or tfmot schedule). Defaults to
            `None` (`ConstantSparsity(0.5, begin_step=0)`, tfmot's default).
        block_size: (rows, cols) of blocks pruned together in rank-2 weights.
            Defaults to `(1, 1)`.
        block_pooling_type: "AVG" or "MAX". Defaults to `"AVG"`.
        sparsity_m_by_n: `(m, n)`, e.g. `(2, 4)`: m zeros in every n weights
            along the input-channel axis. A layer with fewer than n weights on
            that axis (e.g. a convolution on a 1-channel input) is refused, all
            such layers named at once: keep them dense with `leave_dense`.
            Defaults to `None`.
        leave_dense: names or classes of layers to keep dense (e.g. an unknown
            custom layer, or the last classifier). Defaults to `()`.
        **kwargs: passed to `PruneLowMagnitude` (`mask_type`, `seed`).

    Returns:
        A `PruneLowMagnitude`, a list of them, or a new model.

    Raises:
        ValueError: bad arguments, an already pruned layer or model, an
            unsupported layer, an m:n pattern or block size a layer cannot
            take, or a subclassed model.
        TypeError: `to_prune` of another type.
    """
    if _is_tf_keras_input(to_prune):  # legacy Keras 2: tfmot does it (tfopt.compat)
        from tfopt import compat

        return compat.prune_low_magnitude(
            to_prune,
            pruning_schedule,
            block_size=block_size,
            block_pooling_type=block_pooling_type,
            sparsity_m_by_n=sparsity_m_by_n,
            leave_dense=leave_dense,
            **kwargs,
        )
    params = {
        "pruning_schedule": pruning_schedule,
        "block_size": block_size,
        "block_pooling_type": block_pooling_type,
        "sparsity_m_by_n": sparsity_m_by_n,
        **kwargs,
    }
    checked = _check_params(
        pruning_schedule,
        block_size,
        block_pooling_type,
        sparsity_m_by_n,
        kwargs.get("mask_type", "magnitude"),
    )
    if isinstance(to_prune, keras.Model):
        if collect_pruning_layers(to_prune):
            raise ValueError(
                f"Model {to_prune.name!r} is already pruned (it holds PruneLowMagnitude "
                "layers). Prune a model once; to change the schedule, strip_pruning() it first."
            )
        if not is_graph_model(to_prune):
            raise ValueError(_subclassed_message(to_prune))
        _check_leave_dense(to_prune, leave_dense)
        m_by_n = checked["sparsity_m_by_n"]
        if m_by_n:
            misfits = _m_by_n_misfits_in(to_prune, m_by_n, leave_dense)
            if misfits:  # every such layer in one message, not one per attempt
                raise ValueError(_m_by_n_message(misfits, m_by_n))
        return _prune_model(to_prune, params, leave_dense)
    if isinstance(to_prune, keras.layers.Layer):
        return PruneLowMagnitude(to_prune, **params)
    if isinstance(to_prune, (list, tuple)):
        return [
            prune_low_magnitude(layer, **params, leave_dense=leave_dense) for layer in to_prune
        ]
    raise TypeError(
        "Argument `to_prune` must be a keras Layer, a list of layers, or a Sequential/functional "
        f"keras.Model. Received: to_prune={to_prune!r}"
    )


def _m_by_n_misfits_in(model, m_by_n, leave_dense) -> dict:
    """{layer: misfits} for the layers `_prune_model` would wrap that m:n cannot apply to."""
    found = {}
    for layer in model.layers:
        if _matches(layer, leave_dense) or isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            if is_graph_model(layer):
                found.update(_m_by_n_misfits_in(layer, m_by_n, leave_dense))
            continue
        if layer.built and prune_registry.has_prunable_weights(layer):
            misfits = _m_by_n_misfits(layer, m_by_n)
            if misfits:
                found[layer] = misfits
    return found


def _is_tf_keras_input(to_prune) -> bool:
    if isinstance(to_prune, (list, tuple)):
        return bool(to_prune) and all(is_tf_keras(layer) for layer in to_prune)
    return is_tf_keras(to_prune)


def _all_layers(model) -> list:
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_all_layers(layer))
    return found


def _check_leave_dense(model, leave_dense) -> None:
    """Refuses a `leave_dense` that is not a list of names/classes, or names no layer has.

    A typo would otherwise prune the very layer the user meant to keep dense.
    """
    if isinstance(leave_dense, (str, type)) or not isinstance(leave_dense, (list, tuple, set)):
        raise TypeError(
            "Argument `leave_dense` must be a list of layer names or classes, e.g. "
            f"leave_dense=['logits']. Received: leave_dense={leave_dense!r}"
        )
    layers = _all_layers(model)
    names = {layer.name for layer in layers}
    for item in leave_dense:
        if isinstance(item, str):
            if item not in names:
                raise ValueError(
                    f"Argument `leave_dense` names {item!r}, which is no layer of model "
                    f"{model.name!r}. Its layers: {sorted(names)}"
                )
        elif isinstance(item, type):
            if not any(isinstance(layer, item) for layer in layers):
                raise ValueError(
                    f"Argument `leave_dense` names class {item.__name__}, of which model "
                    f"{model.name!r} has no layer."
                )
        else:
            raise TypeError(
                "Argument `leave_dense` must hold layer names (str) or classes. "
                f"Received the entry {item!r}"
            )


def _strip_wrapper(wrapper: PruneLowMagnitude):
    inner = wrapper.layer
    masks = {id(w): m for w, m in wrapper.pruning_vars()}
    values = [
        # np.where, not w * mask: pruned negative weights must be +0.0, not -0.0 (gzip).
        np.where(masks[id(w)].numpy() != 0, w.numpy(), 0).astype(w.dtype)
        if id(w) in masks
        else w.numpy()
        for w in inner.weights
    ]
    copy = inner.__class__.from_config(inner.get_config())
    build_config = inner.get_build_config()
    if build_config:
        copy.build_from_config(build_config)
    copy.set_weights(values)
    return copy


def _layer_items(value):
    """(index suffix, layer) for a layer attribute, or the layers in a list/tuple/dict one."""
    if isinstance(value, keras.layers.Layer):
        return [("", value)]
    if isinstance(value, (list, tuple)):
        return [(f"[{i}]", v) for i, v in enumerate(value) if isinstance(v, keras.layers.Layer)]
    if isinstance(value, dict):
        return [(f"[{k!r}]", v) for k, v in value.items() if isinstance(v, keras.layers.Layer)]
    return []


def _attribute_paths(model) -> tuple[list, list]:
    """(path, layer) of the wrappers and of the other weighted layers of `model`.

    Paths are Python attribute paths ("model.fc", "model.blocks[0].fc"); the
    other layers hold weights but no wrapper (their weights copy as they are).
    """
    wrappers, others, seen = [], [], {id(model)}

    def visit(layer, prefix):
        for name, value in vars(layer).items():
            if name.startswith("_"):
                continue
            for suffix, item in _layer_items(value):
                if id(item) in seen:
                    continue
                seen.add(id(item))
                path = f"{prefix}.{name}{suffix}"
                if isinstance(item, PruneLowMagnitude):
                    wrappers.append((path, item))
                elif collect_pruning_layers(item):  # holds wrappers: look inside
                    visit(item, path)
                elif item.weights:
                    others.append((path, item))

    visit(model, "model")
    return wrappers, others


def _strip_subclassed_message(model) -> str:
    cls = type(model).__name__
    wrappers, others = _attribute_paths(model)
    found = {id(w) for _, w in wrappers}
    unnamed = [w.name for w in collect_pruning_layers(model) if id(w) not in found]
    held = [p for p, _ in wrappers] + [f"the wrapper {name!r}" for name in unnamed]
    first_path, first = wrappers[0] if wrappers else ("model.fc", None)
    inner = type(first.layer).__name__ if first is not None else "layer"
    copies = [
        f"plain{p[len('model') :]}.set_weights(tfopt.pruning.strip_pruning({p}).get_weights())"
        for p, _ in wrappers
    ] or ["plain.fc.set_weights(tfopt.pruning.strip_pruning(model.fc).get_weights())"]
    rest = (
        f"; and each other layer's weights as they are, e.g. "
        f"plain{others[0][0][len('model') :]}.set_weights({others[0][0]}.get_weights())"
        if others
        else ""
    )
    return (
        f"Model {model.name!r} of class {cls} is a subclassed model: strip_pruning can rebuild "
        "only Sequential and functional models (and assigning a new layer to an attribute of "
        f"a built model keeps the old one tracked). Its pruned layers: {', '.join(held)}. "
        f"Each strips on its own: tfopt.pruning.strip_pruning({first_path}) returns the plain "
        f"{inner} with its zeros baked in. For a plain {cls}, build one whose __init__ does "
        f"not call prune_low_magnitude (plain = {cls}(...); plain(x)), then copy the weights "
        f"layer by layer: {'; '.join(copies)}{rest}. Received: model={model.name!r}"
    )


def _strip_model(model):
    def clone_function(layer):
        if not isinstance(layer, keras.layers.Layer):
            return layer  # a stateless keras.ops node
        if isinstance(layer, PruneLowMagnitude):
            return _strip_wrapper(layer)
        if isinstance(layer, keras.Model) and is_graph_model(layer):
            return _strip_model(layer)
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        return _copy_layer(layer)

    return keras.models.clone_model(model, clone_function=clone_function)


def strip_pruning(model):
    """Returns a plain copy of a pruned model: original layer classes and names, zeros baked in.

    Example:

    ```python
    small = tfopt.pruning.strip_pruning(pruned)
    tfopt.export.to_tflite(small, "model.tflite", sparse=True)
    ```

    Args:
        model: a Sequential/functional model holding `PruneLowMagnitude`
            layers, or a single `PruneLowMagnitude`.

    Returns:
        A new model (or layer) without pruning wrappers.

    Raises:
        ValueError: the model holds no pruning wrappers.
        TypeError: `model` is not a Keras model or wrapper.
    """
    if isinstance(model, PruneLowMagnitude):
        return _strip_wrapper(model)
    if is_tf_keras(model):  # legacy Keras 2: tfmot does it (tfopt.compat)
        from tfopt import compat

        return compat.strip_pruning(model)
    if not isinstance(model, keras.Model):
        raise TypeError(
            "Argument `model` must be a keras.Model returned by prune_low_magnitude. "
            f"Received: model={model!r}"
        )
    if not collect_pruning_layers(model):
        raise ValueError(
            f"Model {model.name!r} has no pruning to strip (no PruneLowMagnitude layers). "
            "Pass the model returned by tfopt.pruning.prune_low_magnitude(...). "
            f"Received: model={model.name!r}"
        )
    if not is_graph_model(model):
        raise ValueError(_strip_subclassed_message(model))
    return _strip_model(model)
