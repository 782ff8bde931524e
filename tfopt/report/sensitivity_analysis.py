"""`quantization_sensitivity` and `pruning_sensitivity`: each layer alone compressed, measured."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from tfopt.report import _compress
from tfopt.report._evaluation import check_data, resolve_metric, run
from tfopt.report.sensitivity import Sensitivity


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"Argument `{name}` must be an int >= {minimum}. Received: {value!r}")
    return int(value)


def _config_label(config) -> str:
    """E.g. "tflite w8a8": the preset's name (or "custom") and the bits it quantizes to."""
    return f"{config.name} w{config.weight_bits}a{config.activation_bits}"


def quantization_sensitivity(
    model,
    data,
    metric=None,
    config=None,
    mode: str = "auto",
    calibration_data=None,
    calibration_steps: int = 8,
    batch_size: int = 64,
) -> Sensitivity:
    """Measures the metric when each layer alone is quantized; ranks the layers.

    For each quantizable layer (with the BatchNormalization QAT folds into it
    and the ReLU it fuses: they run as one int8 op) the model is annotated at
    that layer only and `quantize_apply` builds its QAT model; ranges are then
    observed on calibration data in training mode for `calibration_steps`
    batches, without any weight update (folded BatchNorm statistics frozen),
    and the metric is measured in inference mode. That is post-training
    quantization through QAT's own fake-quant ops, the honest cheap measure of
    what quantizing a layer costs before any QAT training, which usually
    recovers part of the drop. Layers that only move values (max pooling,
    Flatten, Dropout...) keep their input's grid and are not measured; layers
    QAT does not support are listed in `skipped`.

    Example:

    ```python
    sensitivity = tfopt.report.quantization_sensitivity(model, (x_test, y_test))
    print(sensitivity.table())
    qat = tfopt.quantization.quantize_apply(sensitivity.annotated_model(max_drop=0.01))
    ```

    Args:
        model: a trained float Keras model (functional or Sequential).
        data: `(x, y)`: the inputs and labels the metric is measured on.
        metric: None or "accuracy" (top-1: argmax of the outputs against
            integer or one-hot labels), a Keras metric (name, class or
            instance, e.g. `keras.metrics.MeanAbsoluteError()`) or a function
            `f(y_true, y_pred) -> float` on NumPy arrays. Defaults to `None`.
        config: the QAT config or preset name, as for `quantize_apply`.
            Defaults to `None` ("tflite").
        mode: "max" (larger is better), "min" or "auto" (from the Keras
            metric's direction, as Keras's EarlyStopping decides). Defaults to
            `"auto"`.
        calibration_data: inputs the ranges are observed on. Defaults to
            `None` (the `x` of `data`).
        calibration_steps: batches observed. Defaults to `8`.
        batch_size: samples per batch. Defaults to `64`.

    Returns:
        A `Sensitivity`.

    Raises:
        TypeError: a subclassed model, a bad `metric` or `config`.
        ValueError: bad `data`, a metric whose direction is unknown with
            `mode="auto"`, a nested model, or no quantizable layer.
    """
    from tfopt.quantization import quantize_apply
    from tfopt.quantization.config import resolve_config

    units, skipped = _compress.quantization_units(model)
    if not units:
        raise ValueError(
            f"Argument `model`: {model.name!r} has no layer QAT quantizes (Conv, Dense, Add, "
            "ReLU...), so there is nothing to measure."
        )
    x, y = check_data(data)
    chosen = resolve_metric(metric, mode)
    qconfig = resolve_config(config)
    calibration = x if calibration_data is None else calibration_data
    steps = _check_int("calibration_steps", calibration_steps, 1)
    batch = _check_int("batch_size", batch_size, 1)
    baseline = chosen(y, run(model, x, 256)[0])

    def measure(leave, _setting):
        names = {m for unit in units for m in unit.members} - set(leave)
        if not names:
            return baseline
        qat = quantize_apply(_compress.annotated_clone(model, names), qconfig)
        _compress.calibrate(qat, calibration, batch, steps)
        return chosen(y, run(qat, x, 256)[0])

    all_names = [m for unit in units for m in unit.members]
    rows = []
    for unit in units:
        value = measure([n for n in all_names if n not in unit.members], None)
        rows.append(
            {
                "layer": unit.name,
                "class": unit.layer_class,
                "layers": list(unit.members),
                "metric": [value],
                "drop": [chosen.worse_by(baseline, value)],
            }
        )
    return Sensitivity(
        "quantization", chosen, baseline, [_config_label(qconfig)], rows, skipped, measure, model,
        samples=len(y),
    )  # fmt: skip


def pruning_sensitivity(
    model,
    data,
    sparsities: Sequence[float] = (0.5, 0.75, 0.9),
    metric=None,
    mode: str = "auto",
) -> Sensitivity:
    """Measures the metric when each layer alone is magnitude-pruned, at each sparsity.

    Each layer with prunable weights (as `prune_low_magnitude` prunes them) has
    the smallest-magnitude share of each of its prunable weights set to zero,
    with `prune_low_magnitude`'s mask rule, and the model is measured with no
    retraining: one-shot pruning sensitivity, the usual way to rank layers
    (each layer pruned on its own and the network evaluated, as in Li et al.,
    "Pruning Filters for Efficient ConvNets", https://arxiv.org/abs/1608.08710).
    Fine-tuning with a schedule recovers much of a drop, so read the ranking
    rather than the figures. The model's weights are put back after each
    measurement.

    Example:

    ```python
    sensitivity = tfopt.report.pruning_sensitivity(model, (x_test, y_test))
    pruned = tfopt.pruning.prune_low_magnitude(
        model, tfopt.pruning.ConstantSparsity(0.9, 0), leave_dense=sensitivity.suggest(0.02))
    ```

    Args:
        model: a trained Keras model (any kind: Sequential, functional,
            subclassed, nested).
        data: `(x, y)`: the inputs and labels the metric is measured on.
        sparsities: the sparsities to measure, each in (0, 1). Defaults to
            `(0.5, 0.75, 0.9)`.
        metric: as for `quantization_sensitivity`. Defaults to `None` (top-1
            accuracy).
        mode: "max", "min" or "auto". Defaults to `"auto"`.

    Returns:
        A `Sensitivity` (settings: the sparsities, ascending).

    Raises:
        TypeError: `model` is not a Keras model, or a bad `metric`.
        ValueError: bad `data` or `sparsities`, or no prunable layer.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(
            "Argument `model` must be a Keras model. "
            f"Received: model of type {type(model).__name__}"
        )
    if isinstance(sparsities, numbers.Real):
        sparsities = (sparsities,)
    values = list(sparsities) if isinstance(sparsities, (list, tuple)) else None
    if not values or any(
        isinstance(s, bool) or not isinstance(s, numbers.Real) or not 0.0 < s < 1.0 for s in values
    ):
        raise ValueError(
            "Argument `sparsities` must be a non-empty list of fractions in (0, 1), e.g. "
            f"(0.5, 0.75, 0.9). Received: sparsities={sparsities!r}"
        )
    settings = sorted({float(s) for s in values})
    units, layers = _compress.pruning_units(model)
    if not units:
        raise ValueError(
            f"Argument `model`: {model.name!r} has no prunable weights (Dense, Conv, "
            "Embedding, recurrent kernels...), so there is nothing to measure."
        )
    x, y = check_data(data)
    chosen = resolve_metric(metric, mode)
    baseline = chosen(y, run(model, x, 256)[0])
    by_name = {layer.name: layer for layer in layers}

    def measure(leave, sparsity):
        chosen_layers = [layer for name, layer in by_name.items() if name not in set(leave)]
        if not chosen_layers:
            return baseline
        with _compress.pruned(chosen_layers, sparsity):
            return chosen(y, run(model, x, 256)[0])

    rows = []
    for unit in units:
        metrics = []
        for sparsity in settings:
            with _compress.pruned([by_name[unit.name]], sparsity):
                metrics.append(chosen(y, run(model, x, 256)[0]))
        rows.append(
            {
                "layer": unit.name,
                "class": unit.layer_class,
                "layers": list(unit.members),
                "weights": unit.weights,
                "metric": metrics,
                "drop": [chosen.worse_by(baseline, m) for m in metrics],
            }
        )
    return Sensitivity(
        "pruning", chosen, baseline, settings, rows, [], measure, model, samples=len(y)
    )
