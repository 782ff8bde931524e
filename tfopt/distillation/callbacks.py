"""Schedules for the distillation temperature and alpha, applied by a callback each epoch."""

from __future__ import annotations

from collections.abc import Callable

import keras

__all__ = ["DistillationScheduler", "LinearSchedule"]


@keras.saving.register_keras_serializable(package="tfopt")
class LinearSchedule:
    """Value that moves linearly from `initial_value` to `final_value`, then stays.

    `value(epoch) = initial + (final - initial) * min(epoch, transition_epochs) /
    transition_epochs` (epochs count from 0).

    Example:

    ```python
    anneal = tfopt.distillation.LinearSchedule(8.0, 2.0, transition_epochs=4)
    [anneal(e) for e in range(6)]  # [8.0, 6.5, 5.0, 3.5, 2.0, 2.0]
    ```

    Args:
        initial_value: Value at epoch 0.
        final_value: Value from epoch `transition_epochs` on.
        transition_epochs: Epochs to go from one to the other (>= 1). Defaults to `1`.

    Raises:
        ValueError: If `transition_epochs < 1`.
        TypeError: If a value is not a number.
    """

    def __init__(self, initial_value: float, final_value: float, transition_epochs: int = 1):
        for name, value in (("initial_value", initial_value), ("final_value", final_value)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Argument `{name}` must be a number. Received: {name}={value!r}")
        if (
            isinstance(transition_epochs, bool)
            or not isinstance(transition_epochs, int)
            or transition_epochs < 1
        ):
            raise ValueError(
                "Argument `transition_epochs` must be an integer >= 1. "
                f"Received: transition_epochs={transition_epochs!r}"
            )
        self.initial_value = float(initial_value)
        self.final_value = float(final_value)
        self.transition_epochs = transition_epochs

    def __call__(self, epoch: int) -> float:
        """Returns the value at `epoch` (a negative epoch counts as 0).

        Raises:
            TypeError: `epoch` is not a number.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
            raise TypeError(f"Argument `epoch` must be a number. Received: epoch={epoch!r}")
        fraction = min(max(epoch, 0), self.transition_epochs) / self.transition_epochs
        return self.initial_value + (self.final_value - self.initial_value) * fraction

    def get_config(self) -> dict:
        """Returns `initial_value`, `final_value` and `transition_epochs` as a dict."""
        return {
            "initial_value": self.initial_value,
            "final_value": self.final_value,
            "transition_epochs": self.transition_epochs,
        }

    @classmethod
    def from_config(cls, config: dict) -> LinearSchedule:
        """Creates the schedule from the dict `get_config` returned."""
        return cls(**config)


def _check_schedule(name: str, schedule) -> Callable[[int], float] | None:
    if schedule is None or callable(schedule):
        return schedule
    raise TypeError(
        f"Argument `{name}` must be a callable epoch -> value (e.g. "
        f"tfopt.distillation.LinearSchedule(8.0, 2.0, 5)) or None. Received: {name}={schedule!r}"
    )


class DistillationScheduler(keras.callbacks.Callback):
    """Sets a `tfopt.distillation.Distiller`'s temperature and/or alpha at each epoch start.

    The values live in variables, so a new value takes effect without retracing
    the train function, and a model saved mid-training keeps it. The values used
    are added to the epoch logs as `temperature` and `alpha`.

    Example:

    ```python
    scheduler = tfopt.distillation.DistillationScheduler(
        temperature=tfopt.distillation.LinearSchedule(8.0, 2.0, transition_epochs=9),
        alpha=lambda epoch: 0.9 if epoch < 5 else 0.5,
    )
    distiller.fit(x, y, epochs=10, callbacks=[scheduler])
    ```

    Args:
        temperature: Callable `epoch -> temperature (> 0)`. Defaults to `None` (unchanged).
        alpha: Callable `epoch -> alpha in [0, 1]`. Defaults to `None` (unchanged).

    Raises:
        ValueError: If both are None, or (during fit) a scheduled value is out of range.
        TypeError: If a schedule is not callable, or the model is not a tfopt Distiller.
    """

    def __init__(
        self,
        temperature: Callable[[int], float] | None = None,
        alpha: Callable[[int], float] | None = None,
    ):
        super().__init__()
        self.temperature = _check_schedule("temperature", temperature)
        self.alpha = _check_schedule("alpha", alpha)
        if temperature is None and alpha is None:
            raise ValueError(
                "DistillationScheduler needs `temperature` and/or `alpha`. "
                "Received: temperature=None, alpha=None"
            )

    def _distiller(self):
        from tfopt.distillation.distiller import Distiller

        if not isinstance(self.model, Distiller):
            raise TypeError(
                "DistillationScheduler must be passed to `fit` of a "
                f"tfopt.distillation.Distiller. Received a model of type "
                f"{type(self.model).__name__}."
            )
        return self.model

    def on_epoch_begin(self, epoch, logs=None):
        """Sets the Distiller's temperature and/or alpha to the schedules' values for `epoch`."""
        distiller = self._distiller()
        if self.temperature is not None:
            value = self.temperature(epoch)
            try:
                distiller.temperature = value
            except (TypeError, ValueError) as error:
                raise type(error)(f"At epoch {epoch}, the temperature schedule: {error}") from None
        if self.alpha is not None:
            value = self.alpha(epoch)
            try:
                distiller.alpha = value
            except (TypeError, ValueError) as error:
                raise type(error)(f"At epoch {epoch}, the alpha schedule: {error}") from None

    def on_epoch_end(self, epoch, logs=None):
        """Adds the Distiller's `alpha` (and `temperature`, if it has one) to the epoch logs."""
        if logs is None:
            return
        distiller = self._distiller()
        if distiller.temperature is not None:
            logs["temperature"] = distiller.temperature
        logs["alpha"] = distiller.alpha
