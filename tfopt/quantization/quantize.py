"""quantize_model, quantize_annotate_layer, quantize_annotate_model, quantize_apply."""

from __future__ import annotations

import keras

from tfopt._keras import (
    clone_layer,
    is_graph_model,
    is_operation_node,
    is_tf_keras,
    sequential_as_functional,
)
from tfopt.quantization import _transform
from tfopt.quantization.annotate import QuantizeAnnotate
from tfopt.quantization.config import QuantizationConfig, resolve_config
from tfopt.quantization.export_info import is_qat_model
from tfopt.quantization.quantize_config import QuantizeConfig


def _check_bool(value, argument: str) -> bool:
    if not isinstance(value, (bool, int)) or isinstance(value, float):
        raise TypeError(f"Argument `{argument}` must be a bool. Received: {argument}={value!r}")
    return bool(value)


def _as_functional(model, argument="to_quantize") -> keras.Model:
    if is_tf_keras(model):
        raise TypeError(
            f"Argument `{argument}` is a tf_keras (Keras 2) model. tfopt.quantization works on "
            "Keras 3 models; for tf_keras use tensorflow_model_optimization directly."
        )
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Argument `{argument}` must be a Keras 3 Sequential or functional model. "
            f"Received: {argument} of type {type(model).__name__}"
        )
    if is_qat_model(model):
        raise ValueError(
            f"Argument `{argument}`: model {model.name!r} is already quantized (it holds "
            "QuantizeWrapper layers): "
            "quantize the original float model once, not the QAT model again."
        )
    if isinstance(model, keras.Sequential):
        return sequential_as_functional(model, argument)
    if not is_graph_model(model):
        raise TypeError(
            f"Argument `{argument}` is a subclassed model ({type(model).__name__}) with no "
            "functional graph, so QAT cannot see where the layers connect. Build it as a "
            "functional or Sequential model (`keras.Model(inputs, outputs)`), or quantize its "
            "layers inside `call` yourself with tfopt.quantization.QuantizeWrapper."
        )
    return model


def quantize_model(
    to_quantize: keras.Model,
    config: QuantizationConfig | str | None = None,
    preserve_sparsity: bool = False,
):
    """Makes a QAT model: every layer fake-quantized where the int8 runtimes quantize.

    BatchNormalization is folded into the Conv/DepthwiseConv/Dense before it,
    ReLU/ReLU6 are fused into the op before them, the input is quantized once.
    The original model is left untouched (its layers are cloned with their weights).

    Example:

    ```python
    qat = tfopt.quantization.quantize_model(model)            # the "tflite" preset
    qat.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    qat.fit(x_train, y_train, epochs=2)
    tfopt.export.to_tflite(qat, "model_int8.tflite")           # fully int8
    ```

    Args:
        to_quantize: a built Keras 3 Sequential or functional model.
        config: a `QuantizationConfig`, a preset name ("tflite", "tensorrt").
            Defaults to `None` ("tflite").
        preserve_sparsity: keep the zero weights of a pruned model at zero
            through QAT (prune, strip, then QAT). Defaults to `False`.

    Returns:
        The QAT `keras.Model`.

    Raises:
        TypeError: not a Keras 3 Sequential/functional model (subclassed, tf_keras).
        ValueError: an already quantized model, an unbuilt model, an unsupported layer.
    """
    if is_tf_keras(to_quantize):  # legacy Keras 2: tfmot does it (tfopt.compat)
        from tfopt import compat

        if preserve_sparsity:
            raise ValueError(
                "Argument `preserve_sparsity=True` is tfopt's own: for a tf_keras model use "
                "tfmot's pruning-preserving QAT (tfmot.quantization.keras.quantize_apply with "
                "Default8BitPrunePreserveQuantizeScheme)."
            )
        return compat.quantize_model(to_quantize, config)
    config = resolve_config(config)
    model = _as_functional(to_quantize)
    return _transform.transform(
        model,
        config,
        annotated_only=False,
        preserve_sparsity=_check_bool(preserve_sparsity, "preserve_sparsity"),
    )


def quantize_annotate_layer(to_annotate, quantize_config: QuantizeConfig | None = None):
    """Marks one layer for quantization by `quantize_apply`.

    Example:

    ```python
    model = keras.Sequential([keras.Input((64,)),
                              tfopt.quantization.quantize_annotate_layer(keras.layers.Dense(32)),
                              keras.layers.Dense(10)])                     # stays float
    qat = tfopt.quantization.quantize_apply(model)
    ```

    Args:
        to_annotate: a Keras 3 layer. A Keras operation node (`x + 3.0`, an `ops`
            call that `keras.models.clone_model` hands to its `clone_function`)
            is returned as it is: `quantize_apply` quantizes an operation whose
            inputs all come from quantized layers, when TFLite has its int8 kernel.
        quantize_config: a `QuantizeConfig` for the layer. Defaults to `None`
            (the built-in layer table).

    Returns:
        A `QuantizeAnnotate` wrapping the layer (an operation node unchanged).

    Raises:
        TypeError: `to_annotate` is not a Keras 3 layer or operation.
    """
    if is_operation_node(to_annotate) and quantize_config is None:
        return to_annotate
    if isinstance(to_annotate, keras.Model) or not isinstance(to_annotate, keras.layers.Layer):
        raise TypeError(
            "Argument `to_annotate` must be a Keras 3 layer (use quantize_annotate_model for a "
            f"model). Received: to_annotate of type {type(to_annotate).__name__}"
        )
    return QuantizeAnnotate(to_annotate, quantize_config=quantize_config)


def quantize_annotate_model(to_annotate: keras.Model) -> keras.Model:
    """Marks every layer of a model for quantization by `quantize_apply`.

    Example:

    ```python
    qat = tfopt.quantization.quantize_apply(tfopt.quantization.quantize_annotate_model(model))
    ```

    Args:
        to_annotate: a built Keras 3 Sequential or functional model.

    Returns:
        A functional model whose layers are `QuantizeAnnotate` wrappers (already
        annotated layers keep their annotation).

    Raises:
        TypeError, ValueError: as `quantize_model`.
    """
    model = _as_functional(to_annotate, "to_annotate")

    def annotate(layer):
        if isinstance(layer, (QuantizeAnnotate, keras.layers.InputLayer)):
            return layer
        if is_operation_node(layer):  # an `ops` call: quantize_apply decides from its inputs
            return layer
        return QuantizeAnnotate(clone_layer(layer))

    annotated = keras.models.clone_model(model, clone_function=annotate)
    for new, old in zip(annotated.layers, model.layers):
        new.set_weights(old.get_weights())
    return annotated


def quantize_apply(
    model: keras.Model,
    config: QuantizationConfig | str | None = None,
    preserve_sparsity: bool = False,
):
    """Makes a QAT model in which only the annotated layers are quantized.

    Unannotated layers stay float; the exporters put quantize/dequantize ops at
    the boundaries.

    Example:

    ```python
    qat = tfopt.quantization.quantize_apply(annotated_model, config="tflite")
    ```

    Args:
        model: a Keras 3 model with `QuantizeAnnotate` layers.
        config: a `QuantizationConfig` or preset name. Defaults to `None` ("tflite").
        preserve_sparsity: keep the zero weights of the annotated layers at zero
            through QAT (as in `quantize_model`). Defaults to `False`.

    Returns:
        The QAT `keras.Model`.

    Raises:
        TypeError, ValueError: as `quantize_model`; ValueError also when nothing
            is annotated.
    """
    config = resolve_config(config)
    functional = _as_functional(model, "model")
    if not any(isinstance(layer, QuantizeAnnotate) for layer in functional.layers):
        raise ValueError(
            f"Model {functional.name!r} has no annotated layer, so quantize_apply would quantize "
            "nothing. Annotate layers with quantize_annotate_layer, or call "
            "quantize_model(model) to quantize all of them."
        )
    return _transform.transform(
        functional,
        config,
        annotated_only=True,
        preserve_sparsity=_check_bool(preserve_sparsity, "preserve_sparsity"),
    )


def quantize_scope(*args):
    """A scope in which saved QAT models with custom configs or quantizers load (tfmot's name).

    tfopt's own classes load without it (they are registered with Keras); pass
    your `QuantizeConfig` / `Quantizer` classes, as dicts or as classes.

    Example:

    ```python
    class MyDenseConfig(tfopt.quantization.LayerQuantizeConfig):
        pass

    dense = tfopt.quantization.quantize_annotate_layer(
        keras.layers.Dense(8), MyDenseConfig(weights={"kernel": "last"}))
    qat = tfopt.quantization.quantize_apply(keras.Sequential([keras.Input((16,)), dense]))
    qat.save("qat.keras")
    with tfopt.quantization.quantize_scope({"MyDenseConfig": MyDenseConfig}):
        loaded = keras.saving.load_model("qat.keras")
    ```

    Args:
        *args: dicts of {name: class}, or classes (named by `__name__`).

    Returns:
        A `keras.saving.custom_object_scope` context manager.

    Raises:
        TypeError: an argument that is neither a dict nor a class.
    """
    objects = {}
    for arg in args:
        if isinstance(arg, dict):
            objects.update(arg)
        elif isinstance(arg, type):
            objects[arg.__name__] = arg
        else:
            raise TypeError(
                "Arguments of quantize_scope must be dicts of {name: class} or classes. "
                f"Received: {arg!r}"
            )
    return keras.saving.custom_object_scope(objects)
