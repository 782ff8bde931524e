"""Layers Keras 3 calls with `mask=None` (GlobalAveragePooling1D, BatchNormalization...)
and annotated BatchNormalization go through QAT and export fully int8."""

from __future__ import annotations

import warnings

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


def _masked_text_model(consumer, masked):
    """Token ids (0 = padding) -> Embedding -> `consumer` -> Dense(3); for "masking",
    feature rows (zeros = padding) -> Masking(0.0) -> Dense -> pooling. `masked=False`
    builds the same layers without the mask (Embedding(mask_zero=False), no Masking):
    the reference for how much the mask changes the output."""
    keras.utils.set_random_seed(3)
    if consumer == "masking":
        inp = keras.Input((12, 8))
        x = L.Masking(0.0, name="masking")(inp) if masked else inp
    else:
        inp = keras.Input((12,), dtype="int32")
        normal = keras.initializers.RandomNormal(0.0, 1.0)
        x = L.Embedding(40, 8, mask_zero=masked, embeddings_initializer=normal)(inp)
    if consumer in ("average", "masking"):
        x = L.GlobalAveragePooling1D(name="pool")(L.Dense(8, activation="relu", name="fc")(x))
    elif consumer == "lstm":
        x = L.LSTM(8, name="lstm")(x)
    else:
        x = L.GlobalAveragePooling1D(name="pool")(L.MultiHeadAttention(2, 4, name="mha")(x, x))
    return keras.Model(inp, L.Dense(3, name="logits")(x))


@pytest.mark.parametrize("consumer", ["average", "lstm", "attention", "masking"])
def test_a_padding_mask_reaches_its_layers_through_qat_and_export(consumer, tmp_path):
    """Embedding(mask_zero=True) records its mask as an `ops.not_equal` node feeding the
    layers' `mask=` argument. QAT fed that bool tensor to a quantizer (TypeError on
    training) and the QuantizeWrapper dropped Keras's mask propagation; now the mask is
    passed as it is and no bool tensor is quantized or listed as float compute."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 40, size=(96, 12))
    for row, length in zip(tokens, rng.integers(3, 12, size=96)):
        row[length:] = 0
    if consumer == "masking":
        tokens = rng.normal(size=(96, 12, 8)).astype("float32") * (tokens != 0)[..., None]
    model = _masked_text_model(consumer, masked=True)
    unmasked = _masked_text_model(consumer, masked=False)
    unmasked.set_weights(model.get_weights())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        qat = tq.quantize_model(model)
        for start in range(0, 96, 32):
            qat(tokens[start : start + 32], training=True)
        got = qat.predict(tokens, verbose=0)
    wrong = [
        str(w.message)
        for w in caught
        if "(NotEqual)" in str(w.message) or "destroy the mask" in str(w.message)
    ]
    assert not wrong, wrong
    reference = model.predict(tokens, verbose=0)
    mask_effect = np.abs(unmasked.predict(tokens, verbose=0) - reference).mean()
    quant_error = np.abs(got - reference).mean()
    assert quant_error < mask_effect / 4, (quant_error, mask_effect)
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(tokens, rng.integers(0, 3, size=96), epochs=1, verbose=0)  # trains (TypeError before)
    result = tfopt.export.to_tflite(qat, tmp_path / "masked.tflite", verify_data=tokens)
    assert result.parity.top1_agreement >= 0.95
