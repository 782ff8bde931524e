"""Checks on the Keras model handed to an exporter, and its input signature."""

from __future__ import annotations

import contextlib
import re

import keras
import numpy as np
import tensorflow as tf
from keras import tree

from tfopt._keras import is_graph_model, is_tf_keras
from tfopt.quantization import export_trace as _qat_export_trace
from tfopt.quantization import is_qat_model


def check_keras_model(model, argument: str = "model", input_signature=None) -> keras.Model:
    """Raises a clear error unless `model` is a built Keras 3 model.

    An unbuilt subclassed model given an `input_signature` is built by calling it
    once on zeros of that signature (what `model.build` cannot do for every model).
    A Distiller is refused with the route to its student.
    """
    if is_tf_keras(model):  # a legacy Keras 2 model: converted and verified as it is
        if not hasattr(model, "inputs") or not getattr(model, "built", False):
            raise ValueError(
                f"Argument `{argument}` is a tf_keras (Keras 2) model that is not built; build "
                "it or give it an input layer first."
            )
        return model
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Argument `{argument}` must be a Keras 3 model (keras.Model, keras.Sequential or a "
            f"functional model). Received: {argument} of type {type(model).__module__}."
            f"{type(model).__qualname__}"
        )
    if type(model).__name__ == "Distiller" and hasattr(model, "student"):
        raise TypeError(
            f"Argument `{argument}` is a Distiller (teacher and student trained together); "
            f"export its student: {argument}.student."
        )
    if not model.built and input_signature is not None:
        specs = input_specs(model, input_signature)
        zeros = [
            np.zeros((1, *[d or 1 for d in s.shape[1:]]), s.dtype.as_numpy_dtype) for s in specs
        ]
        try:
            model(call_inputs(model, zeros), training=False)
        except Exception as err:
            raise ValueError(
                f"Argument `{argument}` is not built and calling it on zeros of "
                f"`input_signature` failed ({type(err).__name__}: {err}). Check the signature "
                "or build the model yourself first."
            ) from err
    if not model.built:
        raise ValueError(
            f"Argument `{argument}` is not built: it has no weights and no input shape yet. "
            f"Build it first, e.g. `{argument}.build((None, 28, 28, 1))`, call it on a batch, or "
            "start it with `keras.Input(shape=...)`."
        )
    return model


@contextlib.contextmanager
def export_trace(model, target: str):
    """Context for tracing `model` to a `target` file ("tflite", "onnx"): a QAT model
    writes the ops its int8 kernels compute natively as that converter reads them."""
    if not is_qat_model(model):
        yield
        return
    with _qat_export_trace(model, target):
        yield


def check_finite_weights(model) -> None:
    """Refuses a model with NaN or infinite weights (or QAT ranges): its file would be too.

    Raises:
        ValueError: naming the first weights that are not finite.
    """
    bad = []
    for variable in model.weights:
        value = np.asarray(keras.ops.convert_to_numpy(variable))
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            where = getattr(variable, "path", None) or variable.name
            count = np.size(value) - np.count_nonzero(np.isfinite(value))
            bad.append(f"{where} ({count} of {np.size(value)})")
    if bad:
        raise ValueError(
            f"Model {model.name!r} has NaN or infinite values in {len(bad)} weights: "
            f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}. An exported file would "
            "compute NaN. Retrain from a checkpoint before the divergence (a lower learning "
            "rate, gradient clipping), or for a QAT model recalibrate its ranges."
        )


def _is_dim(d) -> bool:
    return d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 1)


def _safe_name(name: str, index: int) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(name or ""))
    if not name or not (name[0].isalpha()):
        name = f"input_{index}" if not name else f"input_{name}"
    return name


class InputSpecs(list):
    """A model's inputs as TensorSpecs, in `model.inputs` order, and how it takes them.

    `dict_keys` holds the keys of a model called with a dict whose keys, in the order
    the model was built with, are not sorted: Keras orders such a model's inputs by
    sorted key, so a list of arrays could be meant either way and data must come as a
    dict. None otherwise.
    """

    def __init__(self, specs=(), dict_keys=None):
        super().__init__(specs)
        self.dict_keys = dict_keys


def _inputs_struct(model):
    """The structure a functional model's call takes (a tensor, a list, a dict...), or
    None for Sequential and subclassed models (they take one tensor or a list)."""
    if is_tf_keras(model) or not is_graph_model(model):
        return None
    return getattr(model, "_inputs_struct", None)


def _takes_flat_list(model) -> bool:
    """True when `model` is called with one tensor or a flat list of them."""
    struct = _inputs_struct(model)
    if isinstance(struct, dict):
        return False
    return not isinstance(struct, (list, tuple)) or not any(
        isinstance(x, (dict, list, tuple)) for x in struct
    )


def call_inputs(model, arrays):
    """`arrays` (one per input, in `model.inputs` order) in the structure `model` takes.

    A functional model built on a dict of inputs is called with that dict, one built
    on nested lists with nested lists: Keras warns about, or refuses, anything else.
    """
    arrays = list(arrays)
    struct = _inputs_struct(model)
    if struct is not None and len(tree.flatten(struct)) == len(arrays):
        return tree.pack_sequence_as(struct, arrays)
    return arrays[0] if len(arrays) == 1 else arrays


def output_keys(model) -> list[str] | None:
    """The keys of a model's dict of outputs in the order its outputs flatten to (sorted,
    as Keras and tf.nest flatten a dict), or None for a model of other outputs."""
    struct = getattr(model, "_outputs_struct", None) if is_graph_model(model) else None
    if (
        isinstance(struct, dict)
        and all(isinstance(k, str) for k in struct)
        and len(tree.flatten(struct)) == len(struct)
    ):
        return sorted(struct)
    return None


def _dict_keys(model):
    struct = _inputs_struct(model)
    if isinstance(struct, dict) and len(struct) > 1 and list(struct) != sorted(struct):
        return tuple(struct)
    return None


def input_specs(model: keras.Model, input_signature=None) -> InputSpecs:
    """The model's inputs as TensorSpecs with a free batch dimension and stable names.

    Functional and Sequential models carry their inputs. A subclassed model needs
    `input_signature` (a TensorSpec, a shape tuple, or a list of either), unless it
    was built with a single known input shape.
    """
    if input_signature is not None:
        wanted = (
            "a tf.TensorSpec, a shape tuple (batch dimension first, e.g. (None, 28, 28, 1)), "
            "or a list of those"
        )
        if not isinstance(input_signature, (list, tuple, tf.TensorSpec)):
            raise TypeError(
                f"Argument `input_signature` must be {wanted}. Received: {input_signature!r}"
            )
        items = (
            input_signature if isinstance(input_signature, (list, tuple)) else [input_signature]
        )
        if items and all(_is_dim(d) for d in items):
            items = [tuple(items)]  # a single shape tuple
        specs = []
        for i, item in enumerate(items):
            if isinstance(item, tf.TensorSpec):
                specs.append(tf.TensorSpec(item.shape, item.dtype, name=_safe_name(item.name, i)))
            elif isinstance(item, (tuple, list)) and len(item) >= 2 and all(map(_is_dim, item)):
                specs.append(tf.TensorSpec(tuple(item), tf.float32, name=f"input_{i}"))
            else:
                raise TypeError(
                    f"Argument `input_signature` must be {wanted}; a shape has a batch "
                    f"dimension and at least one more. Received: {item!r}"
                )
        known = getattr(model, "_inputs_struct", None) and getattr(model, "inputs", None)
        if known:
            ranks = [len(t.shape) for t in model.inputs]
            if len(ranks) != len(specs) or any(len(s.shape) != r for s, r in zip(specs, ranks)):
                raise ValueError(
                    f"Argument `input_signature` does not fit model {model.name!r}: it takes "
                    f"inputs of shapes {[tuple(t.shape) for t in model.inputs]}. Received: "
                    f"{input_signature!r}"
                )
        return InputSpecs(specs)
    try:
        inputs = model.inputs
    except AttributeError:
        inputs = None
    if inputs:
        return InputSpecs(
            [
                tf.TensorSpec(
                    (None, *tuple(t.shape[1:])), tf.as_dtype(t.dtype), name=_safe_name(t.name, i)
                )
                for i, t in enumerate(inputs)
            ],
            dict_keys=_dict_keys(model),
        )
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    if len(shapes) == 1:
        (shape,) = shapes.values()
        if isinstance(shape, (tuple, list)) and all(
            isinstance(d, (int, type(None))) for d in shape
        ):
            return InputSpecs(
                [tf.TensorSpec((None, *tuple(shape[1:])), tf.float32, name="input_0")]
            )
    raise ValueError(
        f"Cannot tell the input signature of the subclassed model {model.name!r}. Pass "
        "`input_signature`, e.g. input_signature=[tf.TensorSpec((None, 32), tf.float32)] or "
        "input_signature=(None, 32)."
    )


def check_batch_size(batch_size) -> int | None:
    """`batch_size` (None: a free batch dimension), checked.

    Raises:
        TypeError: not None or an int.
        ValueError: below 1.
    """
    if batch_size is None:
        return None
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool):
        raise TypeError(
            "Argument `batch_size` must be None (a free batch dimension) or an int >= 1, e.g. "
            f"batch_size=1 for static shapes. Received: batch_size={batch_size!r}"
        )
    if batch_size < 1:
        raise ValueError(
            "Argument `batch_size` must be None (a free batch dimension) or an int >= 1, e.g. "
            f"batch_size=1 for static shapes. Received: batch_size={batch_size!r}"
        )
    return int(batch_size)


def with_batch(specs: InputSpecs, batch_size: int | None) -> InputSpecs:
    """`specs` with their batch dimension fixed at `batch_size` (None: as they are)."""
    if batch_size is None:
        return specs
    return InputSpecs(
        [tf.TensorSpec((batch_size, *s.shape[1:]), s.dtype, name=s.name) for s in specs],
        dict_keys=getattr(specs, "dict_keys", None),
    )


def as_functional(
    model: keras.Model, specs: list[tf.TensorSpec], batch_size: int | None = None
) -> keras.Model:
    """A functional view of `model` (same weights) taking a flat list of named inputs.

    The TFLite converter calls a Keras 3 model with a list of its inputs, so a model
    built on a dict (or nested lists) of inputs is wrapped in one that takes the list
    and calls it with its own structure. The batch dimension stays free unless
    `batch_size` fixes it (recurrent layers need a static batch to lower to TFLite
    builtins; edge compilers need static shapes).
    """
    if is_tf_keras(model):  # its own graph and input names serve as they are
        return model
    if (
        batch_size is None
        and is_graph_model(model)
        and _takes_flat_list(model)
        and all(s.name == t.name for s, t in zip(specs, model.inputs))
    ):
        return model
    inputs = [
        keras.Input(
            shape=tuple(s.shape[1:]), batch_size=batch_size, dtype=s.dtype.name, name=s.name
        )
        for s in specs
    ]
    outputs = model(call_inputs(model, inputs), training=False)
    return keras.Model(
        inputs[0] if len(inputs) == 1 else inputs, outputs, name=f"{model.name}_export"
    )


def serving_function(model: keras.Model, specs: list[tf.TensorSpec], target: str):
    """A tf.function computing the model in inference mode, outputs flattened to a list,
    traced for a `target` file ("tflite", "onnx")."""

    from tfopt.export import _grouped_conv

    grouped = _grouped_conv.onnx_trace if target == "onnx" else contextlib.nullcontext

    @tf.function(input_signature=specs, autograph=False)
    def serve(*args):
        with export_trace(model, target), grouped():
            out = model(call_inputs(model, args), training=False)
        return tf.nest.flatten(out)

    return serve


def random_inputs(specs: list[tf.TensorSpec], n: int, seed: int = 0) -> list[np.ndarray]:
    """Deterministic sample inputs for a signature: standard normal floats, small ints."""
    rng = np.random.default_rng(seed)
    out = []
    for s in specs:
        shape = (n, *[d if d is not None else 1 for d in s.shape[1:]])
        if s.dtype.is_integer:
            out.append(rng.integers(0, 10, size=shape).astype(s.dtype.as_numpy_dtype))
        else:
            out.append(rng.standard_normal(shape).astype(s.dtype.as_numpy_dtype))
    return out


def keras_outputs(model: keras.Model, inputs: list[np.ndarray], batch_size: int = 256):
    """Runs the Keras model in inference mode; returns its outputs as a list of arrays."""
    n = inputs[0].shape[0]
    chunks = []
    for start in range(0, n, batch_size):
        batch = [x[start : start + batch_size] for x in inputs]
        out = model(call_inputs(model, batch), training=False)
        chunks.append([np.asarray(o) for o in tf.nest.flatten(out)])
    return [np.concatenate([c[i] for c in chunks], axis=0) for i in range(len(chunks[0]))]
