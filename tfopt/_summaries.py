"""What the TensorBoard summary callbacks share (PruningSummaries, QuantizationSummaries)."""

from __future__ import annotations

import os

import keras


def scalar(tag: str, value: float, step: int) -> None:
    """A TensorBoard scalar, written with TF alone (the tensorboard package is optional)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=metadata)


class ScalarSummaries(keras.callbacks.Callback):
    """A callback writing scalars to `<log_dir>/metrics`, its writer made on first use.

    Args:
        log_dir: directory of the TensorBoard logs.
        update_freq: "epoch" (the only supported value, as in tfmot).

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

    def _write(self, scalars) -> None:
        """Writes `scalars` ((tag, value) pairs) at the optimizer's current step."""
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "metrics"))
        step = int(self.model.optimizer.iterations.numpy())
        with self._writer.as_default():
            for tag, value in scalars:
                scalar(tag, value, step)
        self._writer.flush()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def get_config(self):
        """Returns `log_dir` and `update_freq` as a dict."""
        return {"log_dir": self.log_dir, "update_freq": self.update_freq}
