"""QuantizationSummaries: each QAT layer's activation ranges as TensorBoard scalars."""

from __future__ import annotations

import keras
import numpy as np

from tfopt._summaries import ScalarSummaries
from tfopt.quantization.callbacks import _collect_quantize_layers
from tfopt.quantization.quantize_wrapper import QuantizeLayer, QuantizeWrapper


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
class QuantizationSummaries(ScalarSummaries):
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
        self._write(
            (f"{layer.name}/{role}/{end}", value)
            for layer in self._layers()
            for role, low, high in activation_ranges(layer)
            for end, value in (("min", low), ("max", high))
        )

    def on_train_end(self, logs=None):
        """Closes the summary writer."""
        self._close()

    @classmethod
    def from_config(cls, config):
        """Creates the callback from the dict `get_config` returned."""
        return cls(**config)
