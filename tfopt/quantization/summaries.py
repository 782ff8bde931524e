"""QuantizationSummaries: each QAT layer's activation ranges as TensorBoard scalars."""

from __future__ import annotations

import os

import keras
import numpy as np

from tfopt.quantization.callbacks import _collect_quantize_layers
from tfopt.quantization.quantize_wrapper import QuantizeLayer, QuantizeWrapper


def _scalar(tag: str, value: float, step: int) -> None:
    """A TensorBoard scalar, written with TF alone (the tensorboard package is optional)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=metadata)


def activation_ranges(layer) -> list[tuple[str, float, float]]:
    """(role, min, max) of every activation range quantizer of a QAT layer.

    Roles: "output" (the layer's output grid; "output_1"... when it has
    several), "pre_activation" (a weighted layer's output before an activation
    the int8 kernel cannot fuse) and "activation" ("activation_1"...: an
    activation the config quantizes inside the layer). Quantizers without a
    min/max range (a custom one) are left out.
    """
    found = []
    if isinstance(layer, QuantizeLayer):
        found.append(("output", layer.quantizer, layer._vars))
    elif isinstance(layer, QuantizeWrapper):
        for i, (q, v) in enumerate(zip(layer._output_quantizers, layer._output_vars)):
            found.append(("output" if i == 0 else f"output_{i}", q, v))
        if layer._pre_quantizer is not None:
            found.append(("pre_activation", layer._pre_quantizer, layer._pre_vars))
        for i, ((_, q), v) in enumerate(zip(layer._activation_quantizers, layer._activation_vars)):
            found.append(("activation" if i == 0 else f"activation_{i}", q, v))
    out = []
    for role, quantizer, qvars in found:
        found_range = quantizer.get_range(qvars)
        if found_range is None:
            continue
        low, high = found_range
        out.append((role, float(np.asarray(low)), float(np.asarray(high))))
    return out


@keras.saving.register_keras_serializable(package="tfopt")
class QuantizationSummaries(keras.callbacks.Callback):
    """Writes each QAT layer's activation ranges (min and max) to TensorBoard.

    The QAT counterpart of `tfopt.pruning.PruningSummaries` (tfmot has none):
    a separate callback next to `QATCallback`, as Keras keeps logging in its
    own `TensorBoard` callback. Scalars go to `<log_dir>/metrics` at the end
    of every epoch, at the optimizer's iteration count, tagged
    `<layer>/<role>/min` and `<layer>/<role>/max`, e.g. `quant_conv/output/max`
    (roles: "output", "pre_activation", "activation"; see `activation_ranges`).
    A range still at 0 has not been observed yet. Inside a Distiller only the
    student's layers are logged.

    Example:

    ```python
    qat.fit(x, y, epochs=1, callbacks=[tfopt.quantization.QATCallback(),
                                       tfopt.quantization.QuantizationSummaries(log_dir="logs")])
    ```

    Args:
        log_dir: directory of the TensorBoard logs.
        update_freq: "epoch" (the only supported value, as in `PruningSummaries`).
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
        self.log_dir = os.fspath(log_dir)
        self.update_freq = update_freq
        self._writer = None

    def _layers(self):
        layers = _collect_quantize_layers(self.model)
        if not layers:
            raise ValueError(
                f"QuantizationSummaries is attached to model {self.model.name!r}, which has no "
                "quantization layers. Make the model with tfopt.quantization.quantize_model."
            )
        return layers

    def on_train_begin(self, logs=None):
        """Checks the model has quantization layers.

        Raises:
            ValueError: the model has none.
        """
        self._layers()

    def on_epoch_end(self, epoch, logs=None):
        """Writes every activation range's min and max."""
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "metrics"))
        step = int(self.model.optimizer.iterations.numpy())
        with self._writer.as_default():
            for layer in self._layers():
                for role, low, high in activation_ranges(layer):
                    _scalar(f"{layer.name}/{role}/min", low, step)
                    _scalar(f"{layer.name}/{role}/max", high, step)
        self._writer.flush()

    def on_train_end(self, logs=None):
        """Closes the summary writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def get_config(self):
        """Returns `log_dir` and `update_freq` as a dict."""
        return {"log_dir": self.log_dir, "update_freq": self.update_freq}

    @classmethod
    def from_config(cls, config):
        """Creates the callback from the dict `get_config` returned."""
        return cls(**config)
