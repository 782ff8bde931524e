"""Sparse int8 files that LiteRT's XNNPACK delegate prepares at one batch size and not another.

A QAT model with 80% zero Dense kernels exported with `sparse=True` allocates
under XNNPACK, then fails when a new batch size re-prepares it (int8
FULLY_CONNECTED with sparse weights): `verify` and `benchmark_latency` fall back to
LiteRT's built-in kernels, and say so.
"""

import keras
import numpy as np

import tfopt


def _sparse_qat(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((64, 32)).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, 64)
    model = keras.Sequential(
        [keras.Input((32,)), keras.layers.Dense(256, "relu"), keras.layers.Dense(10)]
    )
    for layer in model.layers:  # 80% zeros, as a stripped pruned model has
        kernel = layer.kernel.numpy()
        kernel[np.abs(kernel) < np.quantile(np.abs(kernel), 0.8)] = 0.0
        layer.kernel.assign(kernel)
    qat = tfopt.quantization.quantize_model(model, preserve_sparsity=True)
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x, y, epochs=1, batch_size=32, verbose=0)
    return qat, x


def test_sparse_qat_file_verifies_and_times_on_builtin_kernels(tmp_path):
    qat, x = _sparse_qat(tmp_path)
    result = tfopt.export.to_tflite(qat, tmp_path / "s.tflite", sparse=True, verify_data=x)
    assert result.quantization == "int8-qat"
    assert any("XNNPACK delegate cannot prepare" in n for n in result.notes)
    assert result.parity.num_samples == 64
    assert result.parity.top1_agreement >= 0.9
    latency = tfopt.export.benchmark_latency(result.path, warmup=1, runs=3)
    assert latency.median_ms > 0
    assert any("built-in kernels" in n for n in latency.notes)
    assert latency.as_dict()["notes"] == latency.notes


def test_dense_file_keeps_xnnpack_and_no_notes(tmp_path):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    path = tfopt.export.to_tflite(model, tmp_path / "d.tflite").path
    assert tfopt.export.benchmark_latency(path, warmup=1, runs=3).notes == ()
