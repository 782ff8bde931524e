"""Callbacks: `UpdatePruningStep` (required to train) and `PruningSummaries` (TensorBoard)."""

from __future__ import annotations

import os

import keras
import numpy as np

from tfopt._keras import is_tf_keras
from tfopt.pruning import prune_registry
from tfopt.pruning._train_step import _train_in_train_step
from tfopt.pruning.pruning_wrapper import PruneLowMagnitude


def collect_pruning_layers(model) -> list[PruneLowMagnitude]:
    """Every `PruneLowMagnitude` in `model`, nested models (and a Distiller's student) included.

    Args:
        model: a Keras model or layer.

    Returns:
        The wrappers, in layer order.
    """
    from tfopt._layers import find_layers

    return find_layers(model, PruneLowMagnitude)


def _scalar(tag: str, value: float, step: int) -> None:
    """A TensorBoard scalar, written with TF alone (the tensorboard package is optional)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=metadata)


class UpdatePruningStep(keras.callbacks.Callback):
    """Starts the pruning step at 0 when training begins; required to train a pruning model.

    The step then advances inside the training step itself (once per batch),
    so it stays right with `steps_per_execution > 1` and on every replica.
    At the end of each epoch the masks are applied once more. Inside the
    model's train step, a wrapper that Keras gives no `training` value (a
    subclassed model whose `call()` takes none) trains too.

    Example:

    ```python
    model.fit(x, y, callbacks=[tfopt.pruning.UpdatePruningStep()])
    ```
    """

    def __init__(self):
        super().__init__()
        self._layers: list[PruneLowMagnitude] = []
        self._tfmot = None  # tfmot's callback, for a tf_keras model (see tfopt.compat)

    def set_model(self, model):
        """Keeps the model; for a tf_keras (tfmot) model, sets up tfmot's own callback."""
        super().set_model(model)
        self._tfmot = None
        if is_tf_keras(model):
            from tfopt import compat

            self._tfmot = compat.update_pruning_step()
            self._tfmot.set_model(model)

    # tf_keras's CallbackList asks these of every callback (a tf_keras model's fit).
    _supports_tf_logs = False

    def _implements_train_batch_hooks(self):
        return True

    def _implements_test_batch_hooks(self):
        return False

    def _implements_predict_batch_hooks(self):
        return False

    def on_train_batch_begin(self, batch, logs=None):
        """For a tf_keras model: tfmot's step update (tfopt's runs inside the train step)."""
        if self._tfmot is not None:
            self._tfmot.on_train_batch_begin(batch, logs)

    def on_train_begin(self, logs=None):
        """Finds the model's pruning wrappers and starts each one's pruning step at 0.

        A training step traced before the wrappers were ready is rebuilt.
        """
        if self._tfmot is not None:
            self._tfmot.on_train_begin(logs)
            return
        self._layers = collect_pruning_layers(self.model)
        # The wrappers train in this model's train step even if Keras passes them no
        # `training` (a subclassed model whose call() takes none).
        stale = bool(self._layers) and _train_in_train_step(self.model)
        if any(not layer._step_ready for layer in self._layers):
            for layer in self._layers:
                layer._step_ready = True
            # A training step traced before (e.g. a fit that failed for want of this
            # callback) is stale.
            stale = True
        make = getattr(self.model, "make_train_function", None)
        if stale and make is not None:
            make(force=True)  # build a fresh one
        for layer in self._layers:
            # An unbuilt wrapper (subclassed models build on the first batch) starts at 0.
            if layer.built and int(layer.pruning_step.numpy()) == -1:
                layer.pruning_step.assign(0)

    def on_epoch_end(self, epoch, logs=None):
        """Multiplies every pruned weight by its mask once more."""
        if self._tfmot is not None:
            self._tfmot.on_epoch_end(epoch, logs)
            return
        for layer in self._layers:
            layer.apply_masks()


class PruningSummaries(keras.callbacks.Callback):
    """Writes each pruned weight's sparsity and the schedule's target to TensorBoard.

    Scalars go to `<log_dir>/metrics` at the start of every epoch and at the
    end of training, at the optimizer's iteration count.

    Example:

    ```python
    model.fit(x, y, callbacks=[tfopt.pruning.UpdatePruningStep(),
                               tfopt.pruning.PruningSummaries(log_dir="logs")])
    ```

    Args:
        log_dir: directory of the TensorBoard logs.
        update_freq: "epoch" (the only supported value, as in tfmot).
            Defaults to `"epoch"`.

    Raises:
        ValueError: an empty `log_dir` or one that is not a str or `os.PathLike`,
            or another `update_freq`.
    """

    def __init__(self, log_dir: str, update_freq: str = "epoch"):
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir):
            raise ValueError(
                f"Argument `log_dir` must be a non-empty path. Received: log_dir={log_dir!r}"
            )
        if update_freq != "epoch":
            raise ValueError(
                f'Argument `update_freq` must be "epoch". Received: update_freq={update_freq!r}'
            )
        self.log_dir = str(log_dir)
        self.update_freq = update_freq
        self._writer = None

    def _write(self):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "metrics"))
        step = int(self.model.optimizer.iterations.numpy())
        with self._writer.as_default():
            for layer in collect_pruning_layers(self.model):
                pruning_step = max(int(layer.pruning_step.numpy()), 0)
                _, target = layer.pruning_schedule(pruning_step)
                _scalar(f"{layer.name}/target_sparsity", float(target), step)
                # Paths inside the wrapped layer keep tags apart (MultiHeadAttention's
                # four kernels, both directions of a Bidirectional).
                labels = prune_registry.weight_labels(layer.layer)
                for weight, mask in layer.pruning_vars():
                    sparsity = 1.0 - float(np.mean(mask.numpy()))
                    _scalar(f"{layer.name}/{labels[id(weight)]}/sparsity", sparsity, step)
        self._writer.flush()

    def on_epoch_begin(self, epoch, logs=None):
        """Writes every pruned weight's sparsity and each layer's target sparsity."""
        self._write()

    def on_train_end(self, logs=None):
        """Writes the final sparsities, then closes the summary writer."""
        self._write()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
