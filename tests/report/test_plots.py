"""The plots show what they claim: points, labels, the Pareto front, schedules, sparsity bars."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfopt import pruning, report

# Sizes and accuracies of the README's demo table (float32, float16, dynamic, int8).
ARTIFACTS = [
    {"name": "float32", "accuracy": 0.9777, "size_bytes": 195024, "gzip_bytes": 178104,
     "latency_ms": 0.015},
    {"name": "float16", "accuracy": 0.9777, "size_bytes": 101740, "gzip_bytes": 89910,
     "latency_ms": 0.0199},
    {"name": "dynamic", "accuracy": 0.9777, "size_bytes": 56896, "gzip_bytes": 50163,
     "latency_ms": 0.0143},
    {"name": "int8", "accuracy": 0.9750, "size_bytes": 57496, "gzip_bytes": 48847,
     "latency_ms": 0.0182},
]  # fmt: skip


def _line(ax, gid):
    (line,) = [line for line in ax.get_lines() if line.get_gid() == gid]
    return line


def test_pareto_front_indices():
    # x: cost, y: accuracy. (1, 0.9) and (3, 0.95) are on the front; (2, 0.8) is beaten
    # by (1, 0.9); of the two at x=4 only the better one could count, and it is beaten.
    assert report.pareto_front([1, 2, 3, 4, 4], [0.9, 0.8, 0.95, 0.7, 0.94]) == [0, 2]
    assert report.pareto_front([1, 2], [0.5, 0.4], maximize=False) == [0, 1]
    assert report.pareto_front([5.0], [0.1]) == [0]


def test_pareto_plot_by_size():
    figure = report.plot_pareto(ARTIFACTS)
    (ax,) = figure.axes
    raw, gzipped = ax.collections  # filled raw-size markers, hollow gzipped markers
    kib = [a["size_bytes"] / 1024 for a in ARTIFACTS]
    np.testing.assert_allclose(raw.get_offsets()[:, 0], kib)
    np.testing.assert_allclose(raw.get_offsets()[:, 1], [a["accuracy"] for a in ARTIFACTS])
    np.testing.assert_allclose(
        gzipped.get_offsets()[:, 0], [a["gzip_bytes"] / 1024 for a in ARTIFACTS]
    )
    assert [t.get_text() for t in ax.texts] == [a["name"] for a in ARTIFACTS]
    # Front on raw size: dynamic (55.6 KiB, 0.9777) beats int8 (56.1 KiB, 0.975), float16
    # and float32 (same accuracy, bigger). The step line runs on to the largest size.
    front = _line(ax, "pareto_front")
    assert front.get_drawstyle() == "steps-post"
    np.testing.assert_allclose(front.get_xdata(), [56896 / 1024, 195024 / 1024])
    np.testing.assert_allclose(front.get_ydata(), [0.9777, 0.9777])
    assert "KiB" in ax.get_xlabel() and ax.get_ylabel() == "accuracy"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["raw size", "gzipped size", "Pareto front (raw size)"]


def test_pareto_plot_by_latency_and_gzip_size():
    ax = report.plot_pareto(ARTIFACTS, x="latency").axes[0]
    assert ax.get_xlabel() == "latency (ms)"
    assert len(ax.collections) == 1  # no gzip markers on a latency axis
    front = _line(ax, "pareto_front")
    # Fastest first: dynamic 0.0143 ms (0.9777) is the best at every latency after it.
    np.testing.assert_allclose(front.get_xdata(), [0.0143, 0.0199])
    np.testing.assert_allclose(front.get_ydata(), [0.9777, 0.9777])
    ax = report.plot_pareto(ARTIFACTS, x="gzip_size").axes[0]
    front = _line(ax, "pareto_front")
    # int8 is the smallest gzipped (47.7 KiB, 0.975), dynamic (49.0 KiB) is better.
    np.testing.assert_allclose(front.get_xdata(), [48847 / 1024, 50163 / 1024, 178104 / 1024])
    np.testing.assert_allclose(front.get_ydata(), [0.975, 0.9777, 0.9777])


def test_pareto_by_latency_leaves_out_rows_without_one():
    """report.json's .keras rows have latency_ms None: left out of the latency plot."""
    rows = [{"name": "baseline.keras", "accuracy": 0.98, "size_bytes": 240181,
             "latency_ms": None}, *ARTIFACTS]  # fmt: skip
    ax = report.plot_pareto(rows, x="latency").axes[0]
    assert len(ax.collections[0].get_offsets()) == len(ARTIFACTS)
    assert "baseline.keras" not in [t.get_text() for t in ax.texts]
    with pytest.raises(ValueError, match=r"no artifact has a `latency_ms`"):
        report.plot_pareto(rows[:1], x="latency")


class _Result:  # an object with attributes instead of a dict
    def __init__(self, name, accuracy, size_bytes):
        self.name, self.accuracy, self.size_bytes = name, accuracy, size_bytes


def test_pareto_plot_of_objects_and_another_metric():
    ax = report.plot_pareto(
        [_Result("a", 0.5, 2048), _Result("b", 0.2, 4096)], metric="accuracy"
    ).axes[0]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[2.0, 0.5], [4.0, 0.2]])
    losses = [{"name": "a", "loss": 0.3, "size_bytes": 1024},
              {"name": "b", "loss": 0.1, "size_bytes": 2048}]  # fmt: skip
    ax = report.plot_pareto(losses, metric="loss", maximize=False).axes[0]
    np.testing.assert_allclose(_line(ax, "pareto_front").get_xdata(), [1.0, 2.0])


def test_pareto_plot_bad_input():
    with pytest.raises(ValueError, match=r"Argument `x` must be one of .*Received: x='bytes'"):
        report.plot_pareto(ARTIFACTS, x="bytes")
    with pytest.raises(ValueError, match="`artifacts` is empty"):
        report.plot_pareto([])
    with pytest.raises(ValueError, match=r"artifact 1 \('b'\) has no `size_bytes`"):
        report.plot_pareto([{"name": "a", "accuracy": 1, "size_bytes": 1},
                            {"name": "b", "accuracy": 1}])  # fmt: skip
    with pytest.raises(ValueError, match=r"no artifact has a `latency_ms`"):
        report.plot_pareto([{"name": "a", "accuracy": 1, "size_bytes": 1}], x="latency")
    with pytest.raises(ValueError, match=r"has no `top1`"):
        report.plot_pareto(ARTIFACTS, metric="top1")
    with pytest.raises(ValueError, match="`size_bytes` > 0"):
        report.plot_pareto([{"name": "a", "accuracy": 1, "size_bytes": 0}])
    with pytest.raises(ValueError, match="needs a `name`"):
        report.plot_pareto([{"accuracy": 1, "size_bytes": 1}])
    with pytest.raises(TypeError, match="must be a list"):
        report.plot_pareto(ARTIFACTS[0])


def test_sparsity_schedule_polynomial():
    schedule = pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=100, frequency=20)
    ax = report.plot_sparsity_schedule(schedule, steps=150).axes[0]
    target, effective = _line(ax, "target"), _line(ax, "effective")
    updates = _line(ax, "updates")
    # Default range: the later of steps=150 and end_step + frequency = 120.
    np.testing.assert_array_equal(target.get_xdata(), np.arange(0, 151))
    # Zhu & Gupta: s(t) = 0.8 + (0 - 0.8) * (1 - t/100)^3; at t=50: 0.8 - 0.8/8 = 0.7.
    assert target.get_ydata()[50] == pytest.approx(0.7, abs=1e-6)
    assert target.get_ydata()[100] == pytest.approx(0.8, abs=1e-6)
    # Masks update every 20 steps in [0, 100]: 6 updates, at the schedule's values.
    np.testing.assert_array_equal(updates.get_xdata(), [0, 20, 40, 60, 80, 100])
    expected = [0.8 - 0.8 * (1 - t / 100) ** 3 for t in (0, 20, 40, 60, 80, 100)]
    np.testing.assert_allclose(updates.get_ydata(), expected, atol=1e-6)
    # The weights hold the last update's sparsity until the next one.
    eff = effective.get_ydata()
    assert eff[19] == pytest.approx(0.0) and eff[20] == pytest.approx(expected[1], abs=1e-6)
    assert eff[59] == pytest.approx(expected[2], abs=1e-6)
    assert eff[150] == pytest.approx(0.8, abs=1e-6)
    assert _line(ax, "training_end").get_xdata()[0] == 150
    assert "step" in ax.get_xlabel() and "sparsity" in ax.get_ylabel()


def test_sparsity_schedule_constant_forever_and_range():
    schedule = pruning.ConstantSparsity(0.5, begin_step=10, frequency=10)
    ax = report.plot_sparsity_schedule(schedule).axes[0]
    # end_step=-1 prunes forever: the plot shows begin_step + 10 frequencies.
    np.testing.assert_array_equal(_line(ax, "updates").get_xdata(), np.arange(10, 111, 10))
    assert _line(ax, "effective").get_ydata()[9] == 0.0
    assert not [line for line in ax.get_lines() if line.get_gid() == "training_end"]
    ax = report.plot_sparsity_schedule(schedule, begin_step=30, end_step=60).axes[0]
    np.testing.assert_array_equal(_line(ax, "updates").get_xdata(), [30, 40, 50, 60])
    with pytest.raises(ValueError, match="end_step"):
        report.plot_sparsity_schedule(schedule, begin_step=60, end_step=30)
    with pytest.raises(ValueError, match="steps"):
        report.plot_sparsity_schedule(schedule, steps=-1)
    with pytest.raises(TypeError, match="schedule"):
        report.plot_sparsity_schedule(None)


def test_layer_sparsity_bars():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, name="a"), keras.layers.Dense(2, name="b")]
    )
    kernel_a, bias_a, kernel_b, bias_b = model.get_weights()
    kernel_a.reshape(-1)[:8] = 0.0  # 8 of 32 weights: 25%
    kernel_b[:, :] = 0.0  # 16 of 16: 100%
    model.set_weights([kernel_a, bias_a, kernel_b, bias_b])
    ax = report.plot_layer_sparsity(model).axes[0]
    bars = ax.patches
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    np.testing.assert_allclose([b.get_width() for b in bars], [0.25, 1.0])
    total = _line(ax, "total")
    assert total.get_xdata()[0] == pytest.approx(24 / 48)
    assert [t.get_text() for t in ax.texts] == ["25% of 32", "100% of 16"]
    # The legend sits below the axes, not over the bars and their labels.
    (legend,) = ax.figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["whole model 50.0%"]
    assert ax.get_legend() is None


def test_layer_sparsity_of_a_pruned_model_and_no_prunable_weights():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5, 6)), keras.layers.LSTM(4, name="lstm")])
    pruned = pruning.prune_low_magnitude(model, pruning.ConstantSparsity(0.5, 0))
    ax = report.plot_layer_sparsity(pruned).axes[0]
    # Two prunable weights in one layer: one bar each, named by weight.
    assert [t.get_text() for t in ax.get_yticklabels()] == ["lstm/kernel", "lstm/recurrent_kernel"]
    with pytest.raises(ValueError, match="no prunable weights"):
        report.plot_layer_sparsity(keras.Sequential([keras.Input((3,)), keras.layers.ReLU()]))


def test_plots_import_matplotlib_lazily_and_never_pyplot():
    code = (
        "import sys, json\n"
        "import tfopt.report as r\n"
        "before = 'matplotlib' in sys.modules\n"
        f"figure = r.plot_pareto({ARTIFACTS!r})\n"
        "figure.savefig(sys.argv[1])\n"
        "from matplotlib.figure import Figure\n"
        "png = figure._repr_png_()\n"  # what Jupyter shows, with or without pyplot's backend
        "print(json.dumps([before, 'matplotlib.pyplot' in sys.modules,\n"
        "                  isinstance(figure, Figure), png[:8] == b'\\x89PNG\\r\\n\\x1a\\n']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "/dev/null"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, False, True, True]
