"""The tf_keras bridge: tfopt's calls on a legacy tf_keras (Keras 2) model go to tfmot.

tfmot works on tf_keras models only; tfopt works on Keras 3 models. So that the same
user code runs on either, `tfopt.pruning.prune_low_magnitude`, `strip_pruning`,
`UpdatePruningStep` and `tfopt.quantization.quantize_model`, given a tf_keras model,
hand the work to tfmot; the exporters convert and verify tf_keras models directly.

tfmot is imported only then, never at `import tfopt`, and without changing the
process: importing tfmot sets `TF_USE_LEGACY_KERAS=1` and would make `tf.keras`
resolve to tf_keras for the rest of the process; here `tf.keras` is resolved first
and the variable is put back as it was.

Example (tests/test_compat.py runs this kind of code in a child process, since it
imports tf_keras and tfmot):

```python
# doc: no-run
import tf_keras  # a legacy model, e.g. loaded from an old .h5 file
legacy = tf_keras.Sequential([tf_keras.Input((64,)), tf_keras.layers.Dense(10)])
pruned = tfopt.pruning.prune_low_magnitude(legacy, tfopt.pruning.ConstantSparsity(0.5, 0))
print(type(pruned.layers[0]).__module__)   # tensorflow_model_optimization...
```
"""

from __future__ import annotations

import importlib
import os

from tfopt._keras import is_tf_keras

__all__ = ["is_tf_keras", "is_tfmot_qat_model", "tfmot"]

_INSTALL = "pip install tensorflow-model-optimization tf-keras (or `pip install tfopt[tfmot]`)"


def tfmot():
    """`tensorflow_model_optimization`, imported without switching the process to tf_keras.

    Raises:
        ImportError: tfmot is not installed, with the command that installs it.
    """
    import tensorflow as tf

    _ = tf.keras.__name__  # resolve tf.keras now, under the user's own settings
    before = os.environ.get("TF_USE_LEGACY_KERAS")
    try:
        module = importlib.import_module("tensorflow_model_optimization")
    except ImportError as err:
        raise ImportError(
            f"This is a tf_keras (Keras 2) model, which tfopt hands to tfmot: {_INSTALL}. "
            "Or rebuild the model with Keras 3 (`import keras`)."
        ) from err
    finally:
        _undo_tfmot_env_change(before)
    return module


def _undo_tfmot_env_change(before) -> None:
    """Takes back what tfmot's import did to `TF_USE_LEGACY_KERAS` (it sets it to "1").

    The variable ends as the user had it, and is not touched when tfmot left it so.
    """
    if os.environ.get("TF_USE_LEGACY_KERAS") == before:
        return
    if before is None:
        del os.environ["TF_USE_LEGACY_KERAS"]
    else:
        os.environ["TF_USE_LEGACY_KERAS"] = before


def is_tfmot_qat_model(model) -> bool:
    """True for a tf_keras model quantized by tfmot (it holds tfmot's quantize layers)."""
    if not is_tf_keras(model):
        return False
    layers = getattr(model, "layers", None) or ()
    return any(
        type(layer).__module__.startswith("tensorflow_model_optimization.python.core.quantization")
        for layer in layers
    )


def tfmot_schedule(schedule):
    """Tfmot's schedule equal to a tfopt one (same class name and arguments), or as given."""
    if schedule is None or type(schedule).__module__.startswith("tensorflow_model_optimization"):
        return schedule
    cls = getattr(tfmot().sparsity.keras, type(schedule).__name__, None)
    if cls is None:
        raise TypeError(
            f"Argument `pruning_schedule`: tfmot has no {type(schedule).__name__} schedule for a "
            "tf_keras model. Use ConstantSparsity or PolynomialDecay (tfopt's or tfmot's)."
        )
    return cls(**schedule.get_config())


def prune_low_magnitude(to_prune, pruning_schedule, **kwargs):
    """Tfmot's `prune_low_magnitude` on a tf_keras model or layer (tfopt's arguments)."""
    if kwargs.pop("leave_dense", ()):
        raise ValueError(
            "Argument `leave_dense` is tfopt's own and does not exist for tf_keras models "
            "(tfmot): prune the layers you want with prune_low_magnitude on each of them."
        )
    for name in ("mask_type", "seed"):
        if name in kwargs:
            raise ValueError(
                f"Argument `{name}` is tfopt's own and does not exist for tf_keras models (tfmot)."
            )
    schedule = tfmot_schedule(pruning_schedule)
    if schedule is not None:
        kwargs["pruning_schedule"] = schedule
    return tfmot().sparsity.keras.prune_low_magnitude(to_prune, **kwargs)


def strip_pruning(model):
    """Tfmot's `strip_pruning` of a tf_keras model."""
    return tfmot().sparsity.keras.strip_pruning(model)


def quantize_model(model, config):
    """Tfmot's `quantize_model` of a tf_keras model (its default 8-bit scheme: "tflite")."""
    if config not in (None, "tflite"):
        raise ValueError(
            "Argument `config` must be None or 'tflite' for a tf_keras model: tfmot quantizes "
            f"with its default 8-bit scheme only. Received: config={config!r}. For the "
            "'tensorrt' or 'tflite16x8' presets, rebuild the model with Keras 3."
        )
    return tfmot().quantization.keras.quantize_model(model)


def update_pruning_step():
    """Tfmot's `UpdatePruningStep` callback (for a tf_keras model's fit)."""
    return tfmot().sparsity.keras.UpdatePruningStep()
