"""Per-layer quantization error of a QAT model against its float model, as SQNR in dB."""

from __future__ import annotations

import math

import numpy as np

from tfopt.report._evaluation import run
from tfopt.report._figure import new_figure


def _inputs_of(data):
    """The model inputs in `data`: `x`, or the `x` of an `(x, y)` pair."""
    if isinstance(data, tuple) and len(data) == 2:
        return data[0]
    return data


def sqnr_db(reference, quantized) -> float:
    """Signal-to-quantization-noise ratio in dB: `10 * log10(P_signal / P_noise)`.

    `P_signal` is the mean square of `reference`, `P_noise` the mean square of
    `quantized - reference`: the signal-to-noise ratio in decibels
    (https://en.wikipedia.org/wiki/Signal-to-noise_ratio), with the
    quantization error as the noise. It is the quantity PyTorch's Numeric Suite
    reports (`compute_sqnr` in `torch/ao/ns/fx/utils.py`:
    `20 * log10(||x|| / ||x - y||)`, the same ratio written with norms).
    A uniform quantizer gives about 6 dB per bit: 6.02 * 8 = ~48 dB for values
    spread evenly over an 8-bit grid's range.

    Example:

    ```python
    tfopt.report.sqnr_db([1.0, -1.0], [1.1, -1.0])   # 10*log10(1 / 0.005) = 23.0
    ```

    Args:
        reference: the float values (any shape).
        quantized: the quantized model's values, same shape.

    Returns:
        The SQNR in dB; `inf` when the two are equal (no noise), `-inf` when
        the reference is all zeros and the quantized values are not.

    Raises:
        ValueError: the shapes differ.
    """
    ref = np.asarray(reference, np.float64)
    got = np.asarray(quantized, np.float64)
    if ref.shape != got.shape:
        raise ValueError(
            f"Arguments `reference` and `quantized` must have the same shape. "
            f"Received: {ref.shape} and {got.shape}"
        )
    signal = float(np.mean(ref * ref)) if ref.size else 0.0
    noise = float(np.mean((got - ref) ** 2)) if ref.size else 0.0
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def _check_models(float_model, qat_model):
    import keras

    from tfopt.quantization import QuantizeWrapper, is_qat_model

    for name, model in (("float_model", float_model), ("qat_model", qat_model)):
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"Argument `{name}` must be a Keras model. Received: {name} of type "
                f"{type(model).__name__}"
            )
    if is_qat_model(float_model):
        raise ValueError(
            f"Argument `float_model`: {float_model.name!r} is a QAT model. Pass the float model "
            "it was made from as `float_model` and the QAT model as `qat_model`."
        )
    if not is_qat_model(qat_model):
        raise ValueError(
            f"Argument `qat_model`: {qat_model.name!r} is not a QAT model. Make one with "
            "tfopt.quantization.quantize_model(float_model) (or quantize_apply) and train it."
        )
    wrappers = [layer for layer in qat_model.layers if isinstance(layer, QuantizeWrapper)]
    if not wrappers:
        raise ValueError(
            f"Argument `qat_model`: the quantized layers of {qat_model.name!r} sit in a nested "
            "model. Pass that inner QAT model (and its float counterpart) instead."
        )
    return wrappers


def _inputs(model):
    """The model's inputs as its graph takes them: one tensor, or the list of several."""
    inputs = model.inputs
    return inputs[0] if len(inputs) == 1 else inputs


def _float_counterpart(float_model, wrapper):
    """(float layer whose output the wrapper's output stands for, folded BN name) or None."""
    names = {layer.name: layer for layer in float_model.layers}
    inner = wrapper.layer.name
    bn = wrapper.batchnorm.name if wrapper.batchnorm is not None else None
    if bn is not None and bn in names:  # the wrapper computes conv + BN in one op
        return names[bn], bn
    if inner in names:
        return names[inner], None
    # SeparableConv2D is quantized as <name>_depthwise + <name>_pointwise: the pointwise
    # part ends where the float layer ends; the depthwise half has no float tensor.
    if inner.endswith("_pointwise") and inner[: -len("_pointwise")] in names:
        return names[inner[: -len("_pointwise")]], None
    return None


def _float_twin(float_model, qat_model):
    """A clone of `float_model` holding the QAT model's current (trained) weights.

    Weights are matched by layer name: a wrapper's inner layer and its folded
    BatchNormalization, and any layer the QAT model left in float. A layer
    whose weights do not match one to one (a SeparableConv2D, split in two by
    QAT) keeps the float model's weights.
    """
    import keras

    from tfopt.quantization import QuantizeWrapper

    twin = keras.models.clone_model(float_model)
    twin.set_weights(float_model.get_weights())
    targets = {layer.name: layer for layer in twin.layers}
    sources = []
    for layer in qat_model.layers:
        if isinstance(layer, QuantizeWrapper):
            sources.append(layer.layer)
            if layer.batchnorm is not None:
                sources.append(layer.batchnorm)
        else:
            sources.append(layer)
    for source in sources:
        target = targets.get(source.name)
        if target is None or not source.weights:
            continue
        values = source.get_weights()
        if [v.shape for v in values] == [tuple(w.shape) for w in target.weights]:
            target.set_weights(values)
    return twin


def quantization_error(
    float_model, qat_model, data, batch_size: int = 256, weights: str = "float"
) -> list[dict]:
    """Per-layer SQNR (dB) between a float model's layer outputs and its QAT model's.

    Each quantized layer of the QAT model (a `QuantizeWrapper` named
    `quant_<name>`) is compared with the float model's layer `<name>` on the
    same inputs, both run in inference mode. Where BatchNormalization was
    folded into a conv/dense, the wrapper computes conv + BN in one op, so it
    is compared with the float model's BatchNormalization output. Where a
    ReLU is fused, the conv's wrapper output is the (unquantized) input of the
    ReLU's wrapper and both get a row. The error is end to end up to that
    layer: the QAT layer's inputs already carry the error of the quantized
    layers before it (as in PyTorch's Numeric Suite activation comparison),
    so a layer whose SQNR drops sharply from the row before it is the one that
    adds the error. A SeparableConv2D is compared at its pointwise half; its
    depthwise half has no float tensor and is left out.

    Once the QAT model has been trained, its weights are no longer the float
    model's, and the difference then includes what training changed.
    `weights="qat"` runs the float model's architecture with the QAT model's
    current weights instead (copied into a clone, matched by layer name): the
    error of the quantization alone.

    SQNR is `10 * log10(P_signal / P_noise)`, with `P_signal` the mean square
    of the float output and `P_noise` the mean square of the difference (the
    signal-to-noise ratio in dB, https://en.wikipedia.org/wiki/Signal-to-noise_ratio;
    PyTorch's Numeric Suite computes the same, `compute_sqnr` in
    `torch/ao/ns/fx/utils.py`). Higher is better; an 8-bit grid gives about
    48 dB (6 dB per bit) for values spread over its whole range.

    Example:

    ```python
    rows = tfopt.report.quantization_error(model, qat, data.x_test[:256])
    [(r["layer"], round(r["sqnr_db"], 1)) for r in rows]
    ```

    Args:
        float_model: the float Keras model the QAT model was made from
            (functional or Sequential; layers are matched by name).
        qat_model: the QAT model (`quantize_model` / `quantize_apply`), with
            trained or calibrated ranges.
        data: model inputs `x` (an array, a list or a dict of arrays), or an
            `(x, y)` pair whose `y` is ignored. A few hundred samples are plenty.
        batch_size: samples per forward pass. Defaults to `256`.
        weights: "float" (the float model as it is) or "qat" (the float
            model's layers with the QAT model's trained weights). Defaults to
            `"float"`.

    Returns:
        A list of dicts, one per quantized layer in the QAT model's order:
        `layer` (QAT layer name), `float_layer` (the float layer compared
        with), `class` (the
        quantized layer's class), `folded_batchnorm` (the folded BN's name, or
        None), `sqnr_db` (float; inf when identical), `signal_power`,
        `noise_power` (mean squares) and `max_abs_error`.

    Raises:
        TypeError: a model that is not a Keras model.
        ValueError: `float_model` is a QAT model, `qat_model` is not, no
            quantized layer has a float counterpart, or an unknown `weights`.
    """
    import keras

    if weights not in ("float", "qat"):
        raise ValueError(
            f'Argument `weights` must be "float" or "qat". Received: weights={weights!r}'
        )

    wrappers = _check_models(float_model, qat_model)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Argument `batch_size` must be an int >= 1. Received: {batch_size!r}")
    pairs = []
    if weights == "qat":
        float_model = _float_twin(float_model, qat_model)
    for wrapper in wrappers:
        found = _float_counterpart(float_model, wrapper)
        if found is not None:
            pairs.append((wrapper, *found))
    if not pairs:
        raise ValueError(
            f"No quantized layer of {qat_model.name!r} has a layer of the same name in "
            f"{float_model.name!r}. Pass the float model the QAT model was made from."
        )
    x = _inputs_of(data)
    qat_probe = keras.Model(_inputs(qat_model), [w.output for w, _, _ in pairs])
    float_probe = keras.Model(_inputs(float_model), [f.output for _, f, _ in pairs])
    reference = run(float_probe, x, batch_size)
    quantized = run(qat_probe, x, batch_size)
    records = []
    for (wrapper, float_layer, bn), ref, got in zip(pairs, reference, quantized):
        if ref.shape != got.shape:  # a layer the transform reshaped: not comparable
            continue
        diff = got - ref
        records.append(
            {
                "layer": wrapper.name,
                "float_layer": float_layer.name,
                "class": type(wrapper.layer).__name__,
                "folded_batchnorm": bn,
                "sqnr_db": sqnr_db(ref, got),
                "signal_power": float(np.mean(ref * ref)),
                "noise_power": float(np.mean(diff * diff)),
                "max_abs_error": float(np.max(np.abs(diff))) if diff.size else 0.0,
            }
        )
    return records


def plot_quantization_error(
    float_model, qat_model, data, batch_size: int = 256, weights: str = "float"
):
    """Plots `quantization_error` as one horizontal bar per quantized layer (SQNR, dB).

    Layers run top to bottom in model order; higher is better. A layer whose
    output is identical in both models (infinite SQNR) is drawn at the right
    edge and labelled "exact".

    Example:

    ```python
    figure = tfopt.report.plot_quantization_error(model, qat, data.x_test[:256])
    figure.savefig("sqnr.png")
    ```

    Args:
        float_model: the float model.
        qat_model: its QAT model.
        data: inputs `x`, or an `(x, y)` pair.
        batch_size: samples per forward pass. Defaults to `256`.
        weights: "float" or "qat", as for `quantization_error`. Defaults to
            `"float"`.

    Returns:
        A `matplotlib.figure.Figure` with one Axes.

    Raises:
        TypeError, ValueError: as `quantization_error`.
    """
    records = quantization_error(float_model, qat_model, data, batch_size, weights)
    finite = [r["sqnr_db"] for r in records if math.isfinite(r["sqnr_db"])]
    top = max([*finite, 0.0]) * 1.15 + 5.0
    values = [top if r["sqnr_db"] == math.inf else max(r["sqnr_db"], 0.0) for r in records]
    labels = [
        r["layer"] + (f" (+{r['folded_batchnorm']})" if r["folded_batchnorm"] else "")
        for r in records
    ]
    figure, ax = new_figure(6.4, max(2.5, 0.35 * len(labels) + 1.2))
    positions = np.arange(len(labels))
    ax.barh(positions, values, color="tab:blue", gid="sqnr")
    for pos, value, record in zip(positions, values, records):
        text = "exact" if record["sqnr_db"] == math.inf else f"{record['sqnr_db']:.1f} dB"
        ax.annotate(text, (value, pos), textcoords="offset points", xytext=(3, 0),
                    va="center", fontsize=7)  # fmt: skip
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_xlim(0.0, top * 1.15)
    ax.set_xlabel("SQNR (dB, higher is better)")
    ax.set_title(f"quantization error per layer\n{qat_model.name}")
    return figure
