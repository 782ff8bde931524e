"""Sensitivity analysis: rankings, suggestions that hold when measured, the API hooks."""

import dataclasses
import io
import json

import keras
import numpy as np
import pytest

from tests.report.conftest import accuracy
from tfopt import pruning, report
from tfopt import quantization as tq
from tfopt.report import _compress

# 3-bit weights make the per-layer drops large enough to rank and to need a suggestion;
# at 8 bits this CNN loses at most 0.3 points per layer (measured), too little to test.
THREE_BIT = dataclasses.replace(tq.QuantizationConfig.from_preset("tflite"), weight_bits=3)


@pytest.fixture(scope="module")
def val(digits):
    return digits.x_test, digits.y_test


@pytest.fixture(scope="module")
def qsens(trained_bn_cnn, val):
    return report.quantization_sensitivity(trained_bn_cnn, val, config=THREE_BIT)


@pytest.fixture(scope="module")
def psens(trained_bn_cnn, val):
    return report.pruning_sensitivity(trained_bn_cnn, val, sparsities=(0.9, 0.5, 0.75))


def _calibrated_accuracy(qat, x, y, steps=8, batch_size=64):
    """Observes ranges as documented (BN frozen, training-mode batches), then top-1."""
    for layer in qat.layers:
        if isinstance(layer, tq.QuantizeWrapper) and layer.batchnorm is not None:
            layer.bn_frozen.assign(1.0)
    for step in range(steps):
        start = (step * batch_size) % len(x)
        qat(x[start : start + batch_size], training=True)
    return accuracy(qat, x, y)


def _magnitude_prune(kernel, sparsity):
    """tfmot's rule in NumPy: keep the round(size * (1 - sparsity)) largest |w| (and ties)."""
    keep = max(round(kernel.size * (1 - sparsity)), 1)
    threshold = np.sort(np.abs(kernel).reshape(-1))[kernel.size - keep]
    return np.where(np.abs(kernel) >= threshold, kernel, 0.0)


def _pruned_copy(model, names, sparsity):
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for name in names:
        layer = copy.get_layer(name)
        weights = layer.get_weights()
        weights[0] = _magnitude_prune(weights[0], sparsity)
        layer.set_weights(weights)
    return copy


def test_quantization_units_and_ranking(qsens, trained_bn_cnn, val):
    # conv + its folded BN + the fused ReLU are one int8 op; pooling and Flatten only move
    # values and are not measured.
    units = {row["layer"]: row["layers"] for row in qsens.rows}
    assert units == {"conv": ["conv", "bn", "relu"], "conv2": ["conv2"], "fc": ["fc"],
                     "logits": ["logits"]}  # fmt: skip
    assert qsens.baseline == accuracy(trained_bn_cnn, *val)
    drops = [row["drop"][0] for row in qsens.rows]
    assert drops == sorted(drops, reverse=True)
    for row in qsens.rows:
        assert row["drop"][0] == pytest.approx(qsens.baseline - row["metric"][0], abs=1e-12)
    assert qsens.settings == ["tflite w3a8"] and qsens.skipped == []
    assert max(drops) > 0.005  # 3-bit weights cost something somewhere


def test_one_unit_alone_is_what_gets_quantized(trained_bn_cnn):
    annotated = _compress.annotated_clone(trained_bn_cnn, ["conv", "bn", "relu"])
    qat = tq.quantize_apply(annotated)
    wrappers = {layer.name: layer for layer in qat.layers if isinstance(layer, tq.QuantizeWrapper)}
    assert set(wrappers) == {"quant_conv", "quant_relu"}
    assert wrappers["quant_conv"].batchnorm.name == "bn"  # folded, as quantize_model does


def test_quantization_suggestion_holds_when_measured_independently(qsens, val):
    x, y = val
    max_drop = 0.01
    leave = qsens.suggest(max_drop)
    outcome = qsens.suggestions[-1]
    assert outcome["verified"] and outcome["leave"] == leave
    # Some layer must stay float (all quantized at 3 bits loses more than 1 point),
    # but not all of them.
    assert qsens.baseline - qsens.measure([]) > max_drop
    assert 0 < len(leave) < sum(len(r["layers"]) for r in qsens.rows)
    # Rebuilt through the public API and calibrated here: within the budget.
    qat = tq.quantize_apply(qsens.annotated_model(leave_float=leave), THREE_BIT)
    wrapped = {layer.layer.name for layer in qat.layers if isinstance(layer, tq.QuantizeWrapper)}
    assert not wrapped & set(leave)
    measured = _calibrated_accuracy(qat, x, y)
    assert qsens.baseline - measured <= max_drop
    assert measured == pytest.approx(outcome["metric"], abs=1e-12)
    # annotated_model(max_drop=...) runs the same suggestion.
    again = qsens.annotated_model(max_drop=max_drop)
    annotated = {layer.layer.name for layer in again.layers
                 if isinstance(layer, tq.QuantizeAnnotate)}  # fmt: skip
    assert annotated == {n for r in qsens.rows for n in r["layers"]} - set(leave)


def test_quantization_suggestion_zero_and_a_loose_budget(qsens):
    assert qsens.suggest(1.0) == []  # anything goes: quantize every layer
    leave = qsens.suggest(0.0, verify=False)
    # Unverified: layers leave in rank order until the remaining drops sum to <= 0.
    positive = [r for r in qsens.rows if r["drop"][0] > 0]
    assert leave == [n for r in positive for n in r["layers"]]
    assert qsens.suggestions[-1]["metric"] is None


def _noise_floor_sensitivity(all_compressed):
    """30 units that each alone cost one sample of 359, like MobileNet's at 8 bits.

    `all_compressed` is the accuracy with every unit compressed; a unit left in float
    takes its sample back. Returns the Sensitivity and the list of measured `leave`s.
    """
    from tfopt.report._evaluation import resolve_metric

    baseline, sample = 0.8524, 1 / 359
    rows = [
        {"layer": f"unit_{i}", "class": "Conv2D", "layers": [f"unit_{i}"],
         "metric": [baseline - sample], "drop": [sample]}
        for i in range(30)
    ]  # fmt: skip
    calls = []

    def measure(leave, _setting):
        calls.append(list(leave))
        return min(baseline, all_compressed + sample * len(leave))

    sensitivity = report.Sensitivity(
        "quantization", resolve_metric(None), baseline, ["w8a8"], rows, [], measure
    )
    return sensitivity, calls


def test_suggestion_measures_the_whole_model_first():
    # The drops add up to 30 samples (8.4 points) > max_drop, but the model with every
    # unit compressed loses 1 sample: nothing stays float, after one measured model
    # (the greedy start alone would leave 27 units out and measure 28 models).
    sensitivity, calls = _noise_floor_sensitivity(all_compressed=0.8524 - 1 / 359)
    assert sensitivity.suggest(0.01) == []
    assert calls == [[]]
    assert sensitivity.suggestions[-1]["drop"] == pytest.approx(1 / 359)
    # Unverified, nothing is measured: the sum-of-drops guess stands.
    assert len(sensitivity.suggest(0.01, verify=False)) == 27
    assert calls == [[]]


def test_suggestion_beyond_the_whole_model_takes_the_greedy_route():
    # Every unit compressed loses 10 samples (2.8 points): some must stay float.
    sensitivity, calls = _noise_floor_sensitivity(all_compressed=0.8524 - 10 / 359)
    leave = sensitivity.suggest(0.01)
    assert calls[0] == []
    assert 0 < len(leave) < 30
    assert sensitivity.baseline - sensitivity.suggestions[-1]["metric"] <= 0.01


def test_plot_title_fits_beside_long_layer_names():
    # MobileNet's names ("global_average_pooling2d") narrow the axes: on one line the
    # title ran past both edges of the figure.
    sensitivity, _ = _noise_floor_sensitivity(all_compressed=0.85)
    sensitivity.rows[0]["layer"] = "global_average_pooling2d"
    figure = sensitivity.plot()
    figure.savefig(io.BytesIO(), format="png")  # as a notebook shows it (lays it out)
    title = figure.axes[0].title.get_window_extent()
    assert title.x0 >= 0 and title.x1 <= figure.bbox.x1


def test_pruning_rows_match_numpy(psens, trained_bn_cnn, val):
    x, y = val
    assert psens.settings == [0.5, 0.75, 0.9]  # sorted
    by_layer = {row["layer"]: row for row in psens.rows}
    assert {name: row["weights"] for name, row in by_layer.items()} == {
        "conv": 72, "conv2": 1152, "fc": 4608, "logits": 320,  # kernels: 3*3*1*8, ...
    }  # fmt: skip
    for name in ("conv", "fc"):
        for j, sparsity in enumerate(psens.settings):
            expected = accuracy(_pruned_copy(trained_bn_cnn, [name], sparsity), x, y)
            # Same predictions; 1.5 samples of slack for a tie flipped by batching.
            assert by_layer[name]["metric"][j] == pytest.approx(expected, abs=1.5 / len(y))
    last = [row["drop"][-1] for row in psens.rows]
    assert last == sorted(last, reverse=True)  # ranked by the drop at 90%


def test_pruning_leaves_the_model_as_it_was(trained_bn_cnn, val):
    before = trained_bn_cnn.get_weights()
    report.pruning_sensitivity(trained_bn_cnn, val, sparsities=0.5).suggest(0.0)
    for a, b in zip(before, trained_bn_cnn.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_pruning_suggestion_holds_and_plugs_into_prune_low_magnitude(psens, trained_bn_cnn, val):
    x, y = val
    max_drop = 0.02
    leave = psens.suggest(max_drop, sparsity=0.75)
    others = [r["layer"] for r in psens.rows if r["layer"] not in leave]
    assert leave and others  # measured: logits (and conv) cannot take 75% without retraining
    measured = accuracy(_pruned_copy(trained_bn_cnn, others, 0.75), x, y)
    assert psens.baseline - measured <= max_drop + 1.5 / len(y)
    assert psens.suggestions[-1]["sparsity"] == 0.75
    pruned = pruning.prune_low_magnitude(
        trained_bn_cnn, pruning.ConstantSparsity(0.75, 0), leave_dense=leave
    )
    wrapped = {layer.layer.name for layer in pruned.layers
               if isinstance(layer, pruning.PruneLowMagnitude)}  # fmt: skip
    assert wrapped == set(others)


def test_metric_choices_agree(psens, trained_bn_cnn, val):
    def error_rate(y_true, y_pred):
        return np.mean(np.argmax(y_pred, axis=-1) != y_true)

    errors = report.pruning_sensitivity(
        trained_bn_cnn, val, sparsities=(0.5, 0.75, 0.9), metric=error_rate, mode="min"
    )
    assert errors.baseline == pytest.approx(1 - psens.baseline, abs=1e-12)
    for a, b in zip(errors.rows, psens.rows):
        assert a["layer"] == b["layer"]
        np.testing.assert_allclose(a["drop"], b["drop"], atol=1e-12)  # worse is worse
    keras_metric = report.pruning_sensitivity(
        trained_bn_cnn, val, sparsities=0.5, metric=keras.metrics.SparseCategoricalAccuracy()
    )
    assert keras_metric.maximize and keras_metric.baseline == pytest.approx(psens.baseline)
    with pytest.raises(ValueError, match="mode='max'"):
        report.pruning_sensitivity(trained_bn_cnn, val, metric=error_rate)


def test_outputs_table_dict_plot(psens, qsens):
    text = psens.table()
    assert text.splitlines()[0].startswith("pruning sensitivity: baseline accuracy")
    assert "drop @50%" in text and "drop @90%" in text
    assert f"1  {psens.rows[0]['layer']}" in text
    data = json.loads(json.dumps(psens.to_dict()))
    assert data["kind"] == "pruning" and data["layers"][0]["rank"] == 1
    assert [row["layer"] for row in data["layers"]] == [row["layer"] for row in psens.rows]
    qsens.suggest(0.5)  # recorded in to_dict (not left to another test's call: xdist order)
    assert json.loads(json.dumps(qsens.to_dict()))["suggestions"]
    ax = psens.plot().axes[0]
    for j in range(3):
        bars = [p for p in ax.patches if p.get_gid() == f"drop_{j}"]
        np.testing.assert_allclose([b.get_width() for b in bars],
                                   [row["drop"][j] for row in psens.rows])  # fmt: skip
    assert [t.get_text() for t in ax.get_yticklabels()] == [r["layer"] for r in psens.rows]
    conv_line = next(line for line in qsens.table().splitlines() if " conv " in line)
    assert conv_line.split()[1:5] == ["conv", "Conv2D", "bn,", "relu"]


def test_bad_input(psens, qsens, trained_bn_cnn, val):
    x, y = val
    with pytest.raises(ValueError, match=r"`data` must be a pair `\(x, y\)`"):
        report.pruning_sensitivity(trained_bn_cnn, x)
    with pytest.raises(ValueError, match="same number of samples"):
        report.pruning_sensitivity(trained_bn_cnn, (x, y[:10]))
    with pytest.raises(ValueError, match="`sparsities`"):
        report.pruning_sensitivity(trained_bn_cnn, val, sparsities=(0.5, 1.0))
    with pytest.raises(ValueError, match="`max_drop` must be a number >= 0"):
        psens.suggest(-0.1)
    with pytest.raises(ValueError, match=r"one of the sparsities measured, \[0.5, 0.75, 0.9\]"):
        psens.suggest(0.01, sparsity=0.6)
    with pytest.raises(ValueError, match="leave_dense=sensitivity.suggest"):
        psens.annotated_model()
    with pytest.raises(ValueError, match="is for a pruning sensitivity"):
        qsens.suggest(0.01, sparsity=0.5)
    with pytest.raises(ValueError, match="did not measure: \\['flatten'\\]"):
        qsens.annotated_model(leave_float=["flatten"])
    with pytest.raises(ValueError, match="nothing would be quantized"):
        qsens.annotated_model(leave_float=[n for r in qsens.rows for n in r["layers"]])
    with pytest.raises(TypeError, match="subclassed"):

        class Sub(keras.Model):
            def call(self, inputs):
                return inputs

        report.quantization_sensitivity(Sub(), val)
    with pytest.raises(ValueError, match="unknown metric name 'acuracy'"):
        report.quantization_sensitivity(trained_bn_cnn, val, metric="acuracy")


def test_plot_of_drops_that_are_all_zero_says_so():
    """Every layer alone leaves the metric as it was: the bars have no length; the plot
    says so rather than showing an empty frame."""
    sensitivity, _ = _noise_floor_sensitivity(all_compressed=0.85)
    for row in sensitivity.rows:
        row["drop"] = [0.0 for _ in row["drop"]]
    ax = sensitivity.plot().axes[0]
    assert [t.get_text() for t in ax.texts if t.get_gid() == "no_drop"] == [
        "no layer changes accuracy"
    ]
    sensitivity.rows[0]["drop"] = [0.01 for _ in sensitivity.rows[0]["drop"]]
    assert not [t for t in sensitivity.plot().axes[0].texts if t.get_gid() == "no_drop"]
