"""Teacher-output caching: run the teacher once over fixed inputs, reuse its outputs every epoch.

The cached outputs travel inside `y` (`{_LABELS: y, _TEACHER: outputs}`), so
Keras slices, shuffles and distributes them together with the inputs and the
alignment between a sample and its teacher output cannot break.
"""

from __future__ import annotations

import re

import numpy as np

_LABELS = "__tfopt_labels"
_TEACHER = "__tfopt_teacher"

# Op names that make a tf.data pipeline non-deterministic from one epoch to the next.
_RANDOM_OP = re.compile(r"Random|Shuffle|Rng|Uniform|Normal|Multinomial")


def pack(y, teacher_outputs) -> dict:
    """Returns the `y` structure that carries cached teacher outputs."""
    if y is None:
        return {_TEACHER: teacher_outputs}
    return {_LABELS: y, _TEACHER: teacher_outputs}


def unpack(y):
    """Returns `(labels, cached_teacher_outputs_or_None)` from a possibly packed `y`."""
    if isinstance(y, dict) and _TEACHER in y:
        return y.get(_LABELS), y[_TEACHER]
    return y, None


def _is_array(value) -> bool:
    if isinstance(value, np.ndarray):
        return True
    module = type(value).__module__
    return module.startswith("tensorflow") and hasattr(value, "shape") and hasattr(value, "dtype")


def _all_arrays(structure) -> bool:
    import keras

    flat = keras.tree.flatten(structure)
    return bool(flat) and all(_is_array(v) for v in flat)


def _random_ops_in_dataset(dataset) -> list[str]:
    """Names of random ops in a tf.data pipeline (its graph and map functions)."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(dataset._as_serialized_graph().numpy())
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    return sorted(op for op in ops if _RANDOM_OP.search(op))


def _materialize(dataset):
    """Reads a deterministic dataset of `(x, y[, sample_weight])` batches into numpy arrays."""
    import keras

    xs, ys, ws, sizes = [], [], [], []
    for element in dataset.as_numpy_iterator():
        x, y, w = keras.utils.unpack_x_y_sample_weight(element)
        xs.append(x)
        ys.append(y)
        ws.append(w)
        sizes.append(len(keras.tree.flatten(x)[0]))
    if not sizes:
        raise ValueError("Argument `x` is an empty tf.data.Dataset; nothing to distill on.")
    if any(s != sizes[0] for s in sizes[:-1]) or sizes[-1] > sizes[0]:
        raise ValueError(
            "cache_teacher_outputs=True needs a dataset of equal-sized batches (the last may "
            f"be smaller). Received batch sizes {sorted(set(sizes))}. Pass arrays instead."
        )

    def concat(parts):
        if parts[0] is None:
            return None
        return keras.tree.map_structure(lambda *a: np.concatenate(a, axis=0), *parts)

    return concat(xs), concat(ys), concat(ws), sizes[0]


def prepare_fit_data(distiller, x, y, fit_kwargs: dict):
    """Returns `(x, y, fit_kwargs)` for `Model.fit` with teacher outputs packed into `y`.

    Raises:
        ValueError: If the inputs are not fixed (a generator, a `PyDataset`, or a
            tf.data pipeline with random ops such as augmentation or shuffling).
    """
    import tensorflow as tf

    if isinstance(x, tf.data.Dataset):
        if y is not None:
            raise ValueError(
                "Argument `y` must be None when `x` is a tf.data.Dataset. Received: y of "
                f"type {type(y).__name__}"
            )
        random_ops = _random_ops_in_dataset(x)
        if random_ops:
            raise ValueError(
                "cache_teacher_outputs=True needs inputs that are the same every epoch, but "
                f"the tf.data pipeline in `x` contains random ops {random_ops} (augmentation "
                "or shuffling), so cached teacher outputs would not match the inputs. Pass "
                "fixed arrays, or build the Distiller with cache_teacher_outputs=False."
            )
        x, y, sample_weight, batch_size = _materialize(x)
        if sample_weight is not None:
            fit_kwargs["sample_weight"] = sample_weight
        fit_kwargs["batch_size"] = batch_size
        fit_kwargs["shuffle"] = False  # the pipeline had no shuffle: keep its order
    elif not _all_arrays(x):
        raise ValueError(
            "cache_teacher_outputs=True needs fixed in-memory inputs (NumPy arrays or "
            "tensors, or a tf.data.Dataset without random ops). Received: x of type "
            f"{type(x).__name__}; a generator or keras.utils.PyDataset may augment or change "
            "its data between epochs, so its teacher outputs cannot be cached. Pass arrays, "
            "or build the Distiller with cache_teacher_outputs=False."
        )
    batch_size = fit_kwargs.get("batch_size") or 32
    teacher_outputs = distiller.teacher_outputs(x, batch_size=batch_size)
    return x, pack(y, teacher_outputs), fit_kwargs
