"""Layers Keras 3 calls with `mask=None` (GlobalAveragePooling1D, BatchNormalization...)
and annotated BatchNormalization go through QAT and export fully int8."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tfopt
from tests.quantization import helpers
from tfopt import quantization as tq

L = keras.layers


def _sequence_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8))  # a digit's 8 rows as a sequence of 8 features
    x = L.Conv1D(16, 3, padding="same", activation="relu")(inp)
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(inp, L.Dense(10)(x))


def _bn_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = L.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10)(x))


@pytest.mark.parametrize(
    "make, route",
    [
        (_sequence_model, "quantize_model"),
        (_sequence_model, "annotate_apply"),
        (_bn_model, "annotate_apply"),
    ],
)
def test_masked_call_layers_quantize_and_export_fully_int8(data, tmp_path, make, route):
    model = make()
    shape = model.inputs[0].shape[1:]
    x_train, x_test = data.x_train.reshape((-1, *shape)), data.x_test.reshape((-1, *shape))
    if route == "quantize_model":
        qat = tq.quantize_model(model)
    else:
        qat = tq.quantize_apply(tq.quantize_annotate_model(model))
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x_train, data.y_train, epochs=1, verbose=0)
    result = tfopt.export.to_tflite(qat, tmp_path / "m.tflite", verify_data=x_test)
    assert not tfopt.export.op_census(result.path).float_compute_ops()
    within, _ = helpers.parity_in_steps(result.parity, qat, x_test)
    assert within >= 0.999


def test_annotating_every_layer_is_quantize_model(data):
    """quantize_annotate_model + quantize_apply folds BatchNormalization as quantize_model
    does: the two QAT models have the same layers and compute the same outputs."""
    by_model = tq.quantize_model(_bn_model())
    by_annotation = tq.quantize_apply(tq.quantize_annotate_model(_bn_model()))
    assert [type(layer).__name__ for layer in by_model.layers] == [
        type(layer).__name__ for layer in by_annotation.layers
    ]
    assert by_annotation.layers[2].batchnorm is not None
    x = data.x_train[:64]
    np.testing.assert_array_equal(by_model(x, training=True), by_annotation(x, training=True))
