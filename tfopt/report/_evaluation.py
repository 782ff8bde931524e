"""Data, metrics and batched inference shared by the sensitivity analyses and error reports."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np


def rows(x) -> int:
    """Number of samples in model inputs `x` (an array, a list or a dict of arrays)."""
    if isinstance(x, dict):
        x = next(iter(x.values()))
    elif isinstance(x, (list, tuple)):
        x = x[0]
    return len(x)


def take(x, start: int, stop: int):
    """Samples `start:stop` of model inputs `x`."""
    if isinstance(x, dict):
        return {k: v[start:stop] for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [v[start:stop] for v in x]
    return x[start:stop]


def run(model, x, batch_size: int) -> list[np.ndarray]:
    """Every output of `model` on `x` in inference mode, batch by batch, as float64 arrays.

    Eager calls rather than `predict`: no tf.function is traced for a model that
    is run once (the sensitivity analyses build one model per measurement).
    """
    parts = []
    for start in range(0, rows(x), batch_size):
        out = model(take(x, start, start + batch_size), training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        parts.append([np.asarray(o, np.float64) for o in out])
    return [np.concatenate(column) for column in zip(*parts)]


def check_data(data, argument: str = "data"):
    """`(x, y)` from `data`, or a ValueError naming the argument."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"Argument `{argument}` must be a pair `(x, y)` of inputs and labels, e.g. "
            f"(data.x_test, data.y_test). Received: {argument} of type {type(data).__name__}"
            + (f" with {len(data)} items" if isinstance(data, (tuple, list)) else "")
        )
    x, y = data
    y = np.asarray(y)
    try:
        n = rows(x)
    except TypeError as err:
        raise ValueError(
            f"Argument `{argument}`: `x` must be an array (or a list or dict of arrays). "
            f"Received: x of type {type(x).__name__}"
        ) from err
    if n == 0 or len(y) != n:
        raise ValueError(
            f"Argument `{argument}`: `x` and `y` must hold the same number of samples (at "
            f"least one). Received: {n} inputs and {len(y)} labels"
        )
    return x, y


def top1_accuracy(y_true, y_pred) -> float:
    """Share of samples whose largest output is the label (argmax of one-hot labels).

    A one-unit output is read as a probability: its prediction is `y_pred > 0.5`
    (Keras's binary accuracy).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_pred.ndim == 1 or y_pred.shape[-1] == 1:
        return float(np.mean((y_pred.reshape(-1) > 0.5) == (y_true.reshape(-1) > 0.5)))
    predicted = np.argmax(y_pred, axis=-1)
    if y_true.shape == y_pred.shape:
        y_true = np.argmax(y_true, axis=-1)
    return float(np.mean(predicted == y_true.reshape(predicted.shape)))


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric as the analyses use it: its name, `fn(y_true, y_pred) -> float`, direction."""

    name: str
    fn: Callable
    maximize: bool

    def __call__(self, y_true, y_pred) -> float:
        # Keras metric functions ("mae") give one value per sample: their mean.
        value = float(np.mean(np.asarray(self.fn(y_true, y_pred), np.float64)))
        if not math.isfinite(value):
            raise ValueError(f"Metric {self.name!r} gave {value} (not a finite number).")
        return value

    def worse_by(self, baseline: float, value: float) -> float:
        """How much worse `value` is than `baseline` (positive: worse)."""
        return baseline - value if self.maximize else value - baseline


def _keras_metric_fn(metric):
    def fn(y_true, y_pred):
        metric.reset_state()
        metric.update_state(y_true, y_pred)
        return np.asarray(metric.result())

    return fn


def resolve_metric(metric, mode: str = "auto") -> Metric:
    """A `Metric` from None/"accuracy", a Keras metric (name, class or instance) or a callable.

    `mode` "max"/"min" says which way is better; "auto" reads a Keras metric's
    direction, takes "accuracy" as higher-is-better and a name ending in "loss"
    as lower-is-better, as Keras's EarlyStopping does.
    """
    import keras

    if mode not in ("auto", "max", "min"):
        raise ValueError(
            f'Argument `mode` must be "auto", "max" or "min". Received: mode={mode!r}'
        )
    if metric is None or metric in ("accuracy", "acc"):
        return Metric("accuracy", top1_accuracy, mode != "min")
    direction = None
    if isinstance(metric, str):
        name = metric
        try:
            found = keras.metrics.get(metric)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f'Argument `metric`: unknown metric name {metric!r}. Use None or "accuracy" '
                "(top-1 accuracy), a Keras metric name or object (e.g. "
                "keras.metrics.MeanAbsoluteError()), or a function f(y_true, y_pred) -> float."
            ) from err
        metric = found() if isinstance(found, type) else found
    if isinstance(metric, type) and issubclass(metric, keras.metrics.Metric):
        metric = metric()
    if isinstance(metric, keras.metrics.Metric):
        name = metric.name
        direction = getattr(metric, "_direction", None)
        fn = _keras_metric_fn(metric)
    elif callable(metric):
        name = getattr(metric, "__name__", type(metric).__name__)
        fn = metric
    else:
        raise TypeError(
            'Argument `metric` must be None, "accuracy", a Keras metric (name, class or '
            "instance) or a function f(y_true, y_pred) -> float. "
            f"Received: metric of type {type(metric).__name__}"
        )
    if mode != "auto":
        return Metric(name, fn, mode == "max")
    if direction in ("up", "down"):
        return Metric(name, fn, direction == "up")
    if name.endswith("loss"):
        return Metric(name, fn, False)
    if "acc" in name:
        return Metric(name, fn, True)
    raise ValueError(
        f"Cannot tell whether a larger value of metric {name!r} is better. Pass "
        "mode='max' (e.g. for an accuracy or AUC) or mode='min' (for an error or a loss)."
    )
