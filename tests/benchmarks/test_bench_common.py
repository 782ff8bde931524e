"""benchmarks/common.py: the shared model, budget, figures and table helpers."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_common():
    spec = importlib.util.spec_from_file_location(
        "_bench_common_under_test", REPO_ROOT / "benchmarks" / "common.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _load_common()


def test_importing_common_imports_no_tensorflow():
    # A fresh interpreter: the pytest process may have TensorFlow loaded by other tests.
    import subprocess

    path = str(REPO_ROOT / "benchmarks" / "common.py")
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('c', {path!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(sorted(k for k in ('tensorflow', 'keras', 'tf_keras', "
        "'tensorflow_model_optimization') if k in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_markdown_table_and_cell_formats():
    table = common.markdown_table(
        [{"v": "int8", "acc": 0.975, "bytes": 2048, "r": 0.5, "n": None}],
        [
            ("v", "Variant", ""),
            ("acc", "Acc", "pct"),
            ("bytes", "Size", "kb"),
            ("r", "Ratio", "x"),
            ("n", "Missing", ".2f"),
        ],
    )
    assert table.splitlines() == [
        "| Variant | Acc | Size | Ratio | Missing |",
        "|---|---|---|---|---|",
        "| int8 | 97.5% | 2.0 KiB | 0.50x | — |",
    ]
    assert common.fmt(math.nan, ".3f") == "—"
    assert common.fmt(1.23456, ".3f") == "1.235"


def test_file_sizes_are_tfopt_exports(tmp_path):
    import gzip

    import tfopt.export

    path = tmp_path / "weights.bin"
    data = bytes(range(256)) * 64  # 16 KiB that gzip shrinks
    path.write_bytes(data)
    # gzip at level 9 without a timestamp: the figure tfopt's ExportResult reports.
    expected = (len(data), len(gzip.compress(data, compresslevel=9, mtime=0)))
    assert common.file_sizes(path) == tfopt.export.file_sizes(path) == expected
    assert expected[1] < expected[0]


def test_ratio():
    assert common.ratio(1.0, 4.0) == 0.25
    assert math.isnan(common.ratio(1.0, 0))
    assert math.isnan(common.ratio(None, 2.0))


def test_budget_and_data():
    assert common.epochs(True) == common.QUICK_EPOCHS < common.epochs(False) == common.EPOCHS
    assert common.seeds(True) == common.SEEDS[:1] and len(common.seeds(False)) > 1
    data = common.load_data()
    # scikit-learn ships 1,797 digits; tfopt.datasets.load_digits holds out 20% of each
    # class (rounded per class, so 359 test samples).
    assert data.x_train.shape == (1438, 8, 8, 1) and data.x_test.shape == (359, 8, 8, 1)


def test_peak_rss_is_positive_and_monotone():
    first = common.peak_rss_mb()
    block = np.ones(16 * 1024 * 1024 // 8)  # 16 MiB touched
    block.sum()
    assert 0 < first <= common.peak_rss_mb()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import keras

    from tfopt.export import to_tflite

    data = common.load_data()
    common.set_seed(keras)
    model = common.build_cnn(keras, filters=(4, 8), dense_units=16)
    common.compile_cnn(model, keras, learning_rate=1e-2)
    timer = common.epoch_times(keras)
    model.fit(data.x_train, data.y_train, epochs=3, batch_size=64, callbacks=[timer], verbose=0)
    d = tmp_path_factory.mktemp("bench_common")
    float_path = to_tflite(model, d / "f.tflite").path
    int8_path = to_tflite(
        model,
        d / "q.tflite",
        quantization="int8",
        representative_data=data.x_train[:100],
        int8_io=True,
    ).path
    return data, model, timer, float_path, int8_path


def test_build_cnn_shapes_and_epoch_times(trained):
    _, model, timer, _, _ = trained
    assert model.input_shape == (None, 8, 8, 1) and model.output_shape == (None, 10)
    assert [layer.name for layer in model.layers] == [
        "conv1",
        "pool",
        "conv2",
        "flatten",
        "dense",
        "logits",
    ]
    assert len(timer.times) == 3 and all(t > 0 for t in timer.times)
    assert timer.steady_s() == float(np.median(timer.times[1:]))
    assert timer.first_s() == timer.times[0]
    assert timer.fastest_s() == min(timer.times[1:])


def test_tflite_accuracy_matches_keras(trained):
    data, model, _, float_path, int8_path = trained
    keras_acc = common.keras_accuracy(model, data.x_test, data.y_test)
    assert keras_acc > 0.5  # 3 epochs learn the digits well past chance (0.1)
    # A float32 file computes what Keras computes (<= 1e-5, tfopt.export's parity
    # contract): the same argmax on all 359 test samples but at most one near-tie.
    assert abs(common.tflite_accuracy(float_path, data.x_test, data.y_test) - keras_acc) <= 1 / 359
    # An int8-in/int8-out file is quantized and dequantized by the runner: accuracy
    # stays near float (the PTQ bar is 1 point on a trained CNN; 3 here).
    int8_acc = common.tflite_accuracy(int8_path, data.x_test, data.y_test, batch_size=7)
    assert abs(int8_acc - keras_acc) <= 0.03


def test_tflite_figures(trained):
    _, _, _, float_path, int8_path = trained
    f = common.tflite_figures(float_path, quick=True)
    q = common.tflite_figures(int8_path, quick=True)
    assert f["bytes"] == Path(float_path).stat().st_size
    assert 0 < f["gzip_bytes"] < f["bytes"]
    assert q["bytes"] < f["bytes"]  # int8 weights take a quarter of float32's
    assert f["latency_ms"] > 0 and q["latency_ms"] > 0


def test_interleaved_latency(trained):
    _, _, _, float_path, int8_path = trained
    latency = common.interleaved_latency({"f": float_path, "q": int8_path}, quick=True, rounds=2)
    assert set(latency) == {"f", "q"}
    assert all(ms > 0 and np.isfinite(ms) for ms in latency.values())
