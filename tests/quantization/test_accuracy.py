"""Digits: the int8 TFLite model from QAT keeps the float model's test accuracy."""

import dataclasses

import keras
import numpy as np
import pytest

import tfopt
from tests.quantization import helpers
from tfopt import quantization as tq

L = keras.layers


def _cnn():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(16, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(32, 3, padding="same", activation="relu"),
            L.Flatten(),
            L.Dense(64, activation="relu", name="hidden"),
            L.Dense(10),
        ]
    )


@pytest.fixture(scope="module")
def trained(data):
    keras.utils.set_random_seed(1234)
    model = helpers.compile_fit(_cnn(), data, epochs=15)
    return model, float(np.mean(model.predict(data.x_test, verbose=0).argmax(1) == data.y_test))


def _int8_accuracy(qat, data, path):
    result = tfopt.export.to_tflite(qat, path, verify_data=data.x_test)
    return float(np.mean(result.parity.outputs[0].argmax(1) == data.y_test))


def test_int8_qat_within_0_3_points_of_float(trained, data, tmp_path):
    model, float_acc = trained
    keras.utils.set_random_seed(1234)
    qat = helpers.compile_fit(tq.quantize_model(model), data, epochs=3, lr=3e-4)
    int8_acc = _int8_accuracy(qat, data, tmp_path / "w8.tflite")
    assert float_acc >= 0.9  # the float model learned the task
    assert int8_acc >= float_acc - 0.003, (int8_acc, float_acc)


def test_4bit_weights_qat_converts_and_stays_close(trained, data, tmp_path):
    model, float_acc = trained
    keras.utils.set_random_seed(1234)
    config = dataclasses.replace(tq.QuantizationConfig.from_preset("tflite"), weight_bits=4)
    qat = helpers.compile_fit(tq.quantize_model(model, config=config), data, epochs=3, lr=3e-4)
    kernel = {layer.name: layer for layer in qat.layers}["quant_hidden"]
    assert kernel._weight_quantizers[0][1].num_bits == 4
    int8_acc = _int8_accuracy(qat, data, tmp_path / "w4.tflite")
    # 4-bit weights cost accuracy; the benchmark reports it. Here: within 3 points.
    assert int8_acc >= float_acc - 0.03, (int8_acc, float_acc)
