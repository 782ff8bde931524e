"""Small facts about Keras objects shared by every subpackage (no TensorFlow import)."""

from __future__ import annotations

_TF_KERAS_MODULES = ("tf_keras", "tensorflow.python.keras", "keras.api._v2")


def is_tf_keras(obj) -> bool:
    """True for an object of tf_keras (legacy Keras 2), told by its class's module."""
    return (type(obj).__module__ or "").startswith(_TF_KERAS_MODULES)


def is_graph_model(model) -> bool:
    """True for a Keras 3 Sequential or functional model (one with a layer graph)."""
    import keras
    from keras.src.models.functional import Functional

    return isinstance(model, (keras.Sequential, Functional))


def in_symbolic_call() -> bool:
    """True while Keras computes output shapes (building a functional model's graph)."""
    try:
        from keras.src.backend.common.symbolic_scope import in_symbolic_scope
    except ImportError:  # a Keras without it: never symbolic as far as we can tell
        return False
    return bool(in_symbolic_scope())


def sequential_as_functional(model, argument: str):
    """A built Sequential model's functional view (the same layers).

    Raises:
        ValueError: the Sequential model has no input shape yet, naming `argument`.
    """
    import keras

    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            f"Argument `{argument}`: Sequential model {model.name!r} has no input shape yet. "
            "Start it with `keras.Input(shape=...)` or build it, e.g. "
            "`model.build((None, 28, 28, 1))`."
        )
    return keras.Model(model.inputs, model.outputs, name=model.name)


def clone_layer(layer, copy_weights: bool = False):
    """A new layer of the same class and config, sharing no variables.

    Args:
        layer: a Keras layer.
        copy_weights: also build the copy as `layer` was built and copy its
            weights. Defaults to `False` (an unbuilt copy).

    Returns:
        The new layer.
    """
    copy = layer.__class__.from_config(layer.get_config())
    if copy_weights and layer.built:
        build_config = layer.get_build_config()
        if build_config:
            copy.build_from_config(build_config)
        elif not copy.built:
            copy.build()
        copy.set_weights(layer.get_weights())
    return copy


def check_layer_class(
    layer_class, argument: str = "layer_class", operations: bool = False
) -> None:
    """Raises TypeError unless `layer_class` is a Keras layer class (for registries).

    With `operations`, any `keras.Operation` class (the `ops` calls a functional
    model records, e.g. `x + 3.0`) is accepted too.
    """
    import keras

    base = keras.Operation if operations else keras.layers.Layer
    if not (isinstance(layer_class, type) and issubclass(layer_class, base)):
        what = "keras.layers.Layer or keras.Operation" if operations else "keras.layers.Layer"
        raise TypeError(
            f"Argument `{argument}` must be a subclass of {what}. "
            f"Received: {argument}={layer_class!r}"
        )


def operation_classes(module: str, names) -> dict:
    """{name: class} of the Keras operations `names` in `keras.src.ops.<module>`.

    The classes a functional model records for `keras.ops` calls (`x + 3.0` is
    `Add`); Keras exports the functions, not these classes. A name this Keras
    does not have is left out.
    """
    import importlib

    mod = importlib.import_module(f"keras.src.ops.{module}")
    return {name: getattr(mod, name) for name in names if hasattr(mod, name)}


def is_operation_node(operation) -> bool:
    """True for a Keras operation (an `ops` call) that is not a layer."""
    import keras

    return isinstance(operation, keras.Operation) and not isinstance(operation, keras.layers.Layer)


def registry_items(value, what: str, example: str) -> list:
    """The entries of a registry argument given as a dict or a list/tuple.

    Raises:
        TypeError: anything else, naming `what` should be and `example`.
    """
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, (list, tuple)):
        return list(value)
    raise TypeError(f"Argument `weights` must be {what}, {example}. Received: weights={value!r}")


def check_registered_class(layer_class, argument: str = "layer_class") -> None:
    """Raises TypeError unless `layer_class` is a class (for unregistering)."""
    if not isinstance(layer_class, type):
        raise TypeError(
            f"Argument `{argument}` must be a layer class. Received: {argument}={layer_class!r}"
        )
