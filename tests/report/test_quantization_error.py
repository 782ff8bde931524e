"""Per-layer SQNR between a float model and its QAT model, checked against NumPy by hand."""

import math

import keras
import numpy as np
import pytest

from tfopt import quantization as tq
from tfopt import report
from tfopt.report._compress import calibrate
from tfopt.report.quantization_error import _float_twin


def test_sqnr_formula():
    # signal power 1, noise power (0.1^2 + 0) / 2 = 0.005: 10*log10(200) = 23.0103 dB.
    assert report.sqnr_db([1.0, -1.0], [1.1, -1.0]) == pytest.approx(23.0103, abs=1e-4)
    assert report.sqnr_db(np.ones((2, 3)), np.ones((2, 3))) == math.inf
    assert report.sqnr_db([0.0, 0.0], [0.0, 0.5]) == -math.inf
    # Uniform noise of one 8-bit step over a full-range uniform signal: ~6.02 * 8 dB.
    rng = np.random.default_rng(0)
    signal = rng.uniform(-1, 1, 200_000)
    step = 2 / 256
    quantized = np.round(signal / step) * step
    assert report.sqnr_db(signal, quantized) == pytest.approx(6.02 * 8, abs=0.1)
    with pytest.raises(ValueError, match="same shape"):
        report.sqnr_db([1.0], [1.0, 2.0])


@pytest.fixture(scope="module")
def calibrated_qat(trained_bn_cnn, digits):
    """The QAT model straight from the trained float model, ranges observed on 8 batches."""
    qat = tq.quantize_model(trained_bn_cnn)
    calibrate(qat, digits.x_train, batch_size=64, steps=8)
    return qat


def _outputs(model, layer_name, x):
    probe = keras.Model(model.inputs[0], model.get_layer(layer_name).output)
    return np.asarray(probe(x, training=False), np.float64)


def test_records_match_numpy(trained_bn_cnn, calibrated_qat, digits):
    x = digits.x_test[:200]
    records = report.quantization_error(trained_bn_cnn, calibrated_qat, (x, digits.y_test[:200]))
    # BN is folded into conv: quant_conv computes conv + BN, compared with the BN output.
    assert [(r["layer"], r["float_layer"], r["folded_batchnorm"]) for r in records] == [
        ("quant_conv", "bn", "bn"),
        ("quant_relu", "relu", None),
        ("quant_conv2", "conv2", None),
        ("quant_fc", "fc", None),
        ("quant_logits", "logits", None),
    ]
    for record in records:
        ref = _outputs(trained_bn_cnn, record["float_layer"], x)
        got = _outputs(calibrated_qat, record["layer"], x)
        signal, noise = np.mean(ref**2), np.mean((got - ref) ** 2)
        # The same float64 arithmetic on the same float32 outputs.
        assert record["sqnr_db"] == pytest.approx(10 * np.log10(signal / noise), rel=1e-9)
        assert record["noise_power"] == pytest.approx(noise, rel=1e-9)
        assert record["max_abs_error"] == pytest.approx(np.max(np.abs(got - ref)), rel=1e-9)
        # 8-bit weights and activations, before any QAT training: measured 35 to 45 dB
        # on this model; 20 dB would mean a broken range, 60 dB no quantization at all.
        assert 25.0 < record["sqnr_db"] < 55.0


def test_after_training_weights_qat_isolates_the_quantization(trained_bn_cnn, digits):
    keras.utils.set_random_seed(1)
    qat = tq.quantize_model(trained_bn_cnn)
    qat.compile(keras.optimizers.Adam(1e-3),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))  # fmt: skip
    qat.fit(digits.x_train[:512], digits.y_train[:512], epochs=1, verbose=0)
    x = digits.x_test[:200]
    against_float = report.quantization_error(trained_bn_cnn, qat, x)
    against_twin = report.quantization_error(trained_bn_cnn, qat, x, weights="qat")
    # Training moved the weights: against the original float model the logits differ by
    # more than the quantization alone does.
    assert against_twin[-1]["sqnr_db"] > against_float[-1]["sqnr_db"] + 3.0
    # The twin holds the QAT model's trained kernels and folded BN's statistics; the
    # float model keeps its own.
    twin = _float_twin(trained_bn_cnn, qat)
    for name, source in (("conv", qat.get_layer("quant_conv").layer),
                         ("bn", qat.get_layer("quant_conv").batchnorm),
                         ("logits", qat.get_layer("quant_logits").layer)):  # fmt: skip
        mine, theirs = twin.get_layer(name).get_weights(), source.get_weights()
        for a, b in zip(mine, theirs):
            np.testing.assert_array_equal(a, b)
        # The first weight (a kernel; BN's gamma) moved in training.
        assert not np.array_equal(mine[0], trained_bn_cnn.get_layer(name).get_weights()[0])
    with pytest.raises(ValueError, match="`weights`"):
        report.quantization_error(trained_bn_cnn, qat, x, weights="int8")


def test_plot_shows_one_bar_per_record(trained_bn_cnn, calibrated_qat, digits):
    x = digits.x_test[:100]
    records = report.quantization_error(trained_bn_cnn, calibrated_qat, x)
    ax = report.plot_quantization_error(trained_bn_cnn, calibrated_qat, x).axes[0]
    np.testing.assert_allclose([p.get_width() for p in ax.patches],
                               [r["sqnr_db"] for r in records])  # fmt: skip
    assert ax.get_yticklabels()[0].get_text() == "quant_conv (+bn)"
    assert ax.get_xlabel().startswith("SQNR (dB")


def test_bad_models(trained_bn_cnn, calibrated_qat, digits):
    x = digits.x_test[:8]
    with pytest.raises(ValueError, match="`float_model`.*is a QAT model"):
        report.quantization_error(calibrated_qat, calibrated_qat, x)
    with pytest.raises(ValueError, match="`qat_model`.*is not a QAT model"):
        report.quantization_error(trained_bn_cnn, trained_bn_cnn, x)
    with pytest.raises(TypeError, match="`float_model` must be a Keras model"):
        report.quantization_error("model.keras", calibrated_qat, x)
    other = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, name="other")])  # fmt: skip
    with pytest.raises(ValueError, match="has a layer of the same name"):
        report.quantization_error(other, calibrated_qat, x)
