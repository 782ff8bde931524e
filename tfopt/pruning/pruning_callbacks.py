"""Callbacks: `UpdatePruningStep` (required to train) and `PruningSummaries` (TensorBoard)."""

from __future__ import annotations

import keras
import numpy as np

from tfopt._keras import is_tf_keras
from tfopt._summaries import ScalarSummaries
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


class UpdatePruningStep(keras.callbacks.Callback):
    """Starts the pruning step at 0 when training begins; required to train a pruning model.

    The step then advances inside the training step itself (once per batch),
    so it stays right with `steps_per_execution > 1` and on every replica.
    At the end of each epoch the masks are applied once more, pruned weights
    stored as +0.0. Inside the
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
        """Sets pruned weights to +0.0 where the mask is 0 (the per-step mask leaves -0.0)."""
        if self._tfmot is not None:
            self._tfmot.on_epoch_end(epoch, logs)
            return
        for layer in self._layers:
            layer.apply_masks()


class PruningSummaries(ScalarSummaries):
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

    def _write_sparsities(self):
        scalars = []
        for layer in collect_pruning_layers(self.model):
            pruning_step = max(int(layer.pruning_step.numpy()), 0)
            _, target = layer.pruning_schedule(pruning_step)
            scalars.append((f"{layer.name}/target_sparsity", float(target)))
            # Paths inside the wrapped layer keep tags apart (MultiHeadAttention's
            # four kernels, both directions of a Bidirectional).
            labels = prune_registry.weight_labels(layer.layer)
            for weight, mask in layer.pruning_vars():
                sparsity = 1.0 - float(np.mean(mask.numpy()))
                scalars.append((f"{layer.name}/{labels[id(weight)]}/sparsity", sparsity))
        self._write(scalars)

    def on_epoch_begin(self, epoch, logs=None):
        """Writes every pruned weight's sparsity and each layer's target sparsity."""
        self._write_sparsities()

    def on_train_end(self, logs=None):
        """Writes the final sparsities, then closes the summary writer."""
        self._write_sparsities()
        self._close()
