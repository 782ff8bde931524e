"""QATCallback: quantization delay, range freezing and BatchNorm freezing by training step."""

from __future__ import annotations

import keras

from tfopt.quantization.quantize_wrapper import QuantizeLayer, QuantizeWrapper


def _check_step(name, value, allow_none):
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(
            f"Argument `{name}` must be an int >= 0{' or None' if allow_none else ''}. "
            f"Received: {name}={value!r}"
        )
    return value


def _collect_quantize_layers(model) -> list:
    """Every quantization layer in `model`, nested models included.

    A distiller's frozen teacher (a `teacher` attribute next to a `student`) is
    skipped: only the model being trained follows the QAT schedule.
    """
    from tfopt._layers import find_layers

    teacher = getattr(model, "teacher", None) if hasattr(model, "student") else None
    skip = () if teacher is None else (teacher,)
    return find_layers(model, (QuantizeWrapper, QuantizeLayer), skip=skip)


@keras.saving.register_keras_serializable(package="tfopt")
class QATCallback(keras.callbacks.Callback):
    """Progressive QAT: switches fake quantization on, and freezes ranges and BN, by step.

    Steps are the optimizer's iteration count, so a model loaded from `.keras`
    resumes the schedule where it stopped. Before `quant_delay_steps` fake
    quantization is identity (ranges are still observed). The train step reads
    the flags when it is traced (so it carries no per-element switch); the
    callback retraces it when it changes them. To set the `quantize_active` /
    `ranges_frozen` variables by hand instead, call
    `model.make_train_function(force=True)` afterwards.

    Example:

    ```python
    qat.fit(x, y, epochs=5, callbacks=[tfopt.quantization.QATCallback(
        quant_delay_steps=100, freeze_ranges_step=1000, freeze_bn_step=800)])
    ```

    Args:
        quant_delay_steps: steps of float training (ranges observed) before fake
            quantization starts. Defaults to `0`.
        freeze_ranges_step: step from which activation and weight ranges stop
            updating. Defaults to `None` (never).
        freeze_bn_step: step from which folded BatchNorm moving statistics stop
            updating. Defaults to `None` (never).

    Raises:
        ValueError: a negative or non-integer step.
    """

    def __init__(
        self,
        quant_delay_steps: int = 0,
        freeze_ranges_step: int | None = None,
        freeze_bn_step: int | None = None,
    ):
        super().__init__()
        self.quant_delay_steps = _check_step("quant_delay_steps", quant_delay_steps, False)
        self.freeze_ranges_step = _check_step("freeze_ranges_step", freeze_ranges_step, True)
        self.freeze_bn_step = _check_step("freeze_bn_step", freeze_bn_step, True)
        self._state = None

    def _layers(self):
        layers = _collect_quantize_layers(self.model)
        if not layers:
            raise ValueError(
                f"QATCallback is attached to model {self.model.name!r}, which has no "
                "quantization layers. Make the model with tfopt.quantization.quantize_model."
            )
        return layers

    def flags_at(self, step: int) -> tuple[float, float, float]:
        """(quantize_active, ranges_frozen, bn_frozen) at `step`."""
        active = float(step >= self.quant_delay_steps)
        frozen = float(self.freeze_ranges_step is not None and step >= self.freeze_ranges_step)
        bn = float(self.freeze_bn_step is not None and step >= self.freeze_bn_step)
        return active, frozen, bn

    def on_train_begin(self, logs=None):
        """Checks the model has quantization layers and forgets the flags last set.

        Raises:
            ValueError: the model has no quantization layers.
        """
        self._layers()
        self._state = None

    def on_train_batch_begin(self, batch, logs=None):
        """Sets the flags for the optimizer's current step; retraces the train step on a change."""
        step = int(self.model.optimizer.iterations.numpy())
        state = self.flags_at(step)
        if state == self._state:
            return
        active, frozen, bn = state
        for layer in self._layers():
            layer.quantize_active.assign(active)
            layer.ranges_frozen.assign(frozen)
            if hasattr(layer, "bn_frozen"):
                layer.bn_frozen.assign(bn)
        self._state = state
        # The train step reads quantize_active / ranges_frozen when it is traced (only
        # the selected branch is built): retrace it with the new values.
        self.model.make_train_function(force=True)

    def get_config(self):
        """Returns the three step arguments as a dict."""
        return {
            "quant_delay_steps": self.quant_delay_steps,
            "freeze_ranges_step": self.freeze_ranges_step,
            "freeze_bn_step": self.freeze_bn_step,
        }

    @classmethod
    def from_config(cls, config):
        """Creates the callback from the dict `get_config` returned."""
        return cls(**config)
