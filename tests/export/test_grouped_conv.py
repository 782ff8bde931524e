"""Grouped convolutions (Conv2D/Conv1D `groups=`) in ONNX files, float and QDQ.

Keras 3 runs them in an XLA-compiled function that tf2onnx could not convert: the
ONNX export of keras.applications.ConvNeXt failed. Each kind of group here: one
input channel per group (ConvNeXt's 7x7 depthwise convs), several channels per
group, strided, and a 1-D grouped conv.
"""

import keras
import numpy as np
import pytest

import tfopt
from tfopt import quantization as tq

L = keras.layers


def _grouped_model():
    inp = keras.Input((8, 8, 8), name="image")
    x = L.Conv2D(8, 7, padding="same", groups=8, name="depthwise")(inp)
    x = L.Conv2D(16, 3, padding="same", groups=4, activation="relu", name="four_groups")(x)
    x = L.Conv2D(16, 3, strides=2, padding="same", groups=16, name="strided")(x)
    x = L.Reshape((16, 16))(x)
    x = L.Conv1D(8, 3, padding="same", groups=2, name="grouped_1d")(x)
    return keras.Model(inp, L.Dense(4, name="logits")(L.GlobalAveragePooling1D()(x)))


@pytest.fixture(scope="module")
def grouped():
    keras.utils.set_random_seed(0)
    return _grouped_model(), np.random.default_rng(0).normal(size=(32, 8, 8, 8)).astype("f4")


def test_float_onnx_of_grouped_convs(grouped, tmp_path):
    model, x = grouped
    result = tfopt.export.to_onnx(model, tmp_path / "g.onnx", verify_data=x)
    assert result.parity.max_abs_error < 1e-4, result.parity
    census = tfopt.export.op_census(result.path)
    assert len(census.of_type("Conv")) >= 4  # no opaque function call left


def test_qdq_onnx_of_grouped_convs(grouped, tmp_path):
    model, x = grouped
    qat = tq.quantize_model(model)
    for start in range(0, 32, 8):
        qat(x[start : start + 8], training=True)
    result = tfopt.export.to_onnx(qat, tmp_path / "gq.onnx", verify_data=x)
    assert result.quantization.startswith("qdq")
    census = tfopt.export.op_census(result.path)
    assert not census.float_compute_ops(), census.float_compute_ops()
    assert result.parity.within_one_step >= 0.99 and result.parity.max_error_steps <= 2.0001
    # The TFLite file of the same model is unchanged by the ONNX route.
    tfl = tfopt.export.to_tflite(qat, tmp_path / "gq.tflite", verify_data=x)
    assert not tfopt.export.op_census(tfl.path).float_compute_ops()


def test_keras_grouped_conv_outside_an_export_is_keras_own(grouped):
    """The ONNX trace's grouped conv is installed only while the trace runs."""
    from keras.src.backend.tensorflow import nn as tf_nn

    from tfopt.export import _grouped_conv

    original = tf_nn.conv
    with _grouped_conv.onnx_trace():
        assert tf_nn.conv is not original
    assert tf_nn.conv is original
    model, x = grouped
    np.testing.assert_allclose(model.predict(x[:4], verbose=0), model(x[:4]), atol=1e-5)


def test_grouped_conv3d_to_onnx(tmp_path):
    """tf2onnx writes a grouped Conv3D without its groups: one conv per group instead."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((4, 8, 8, 4))
    model = keras.Model(inp, L.Conv3D(4, 3, padding="same", groups=2)(inp))
    x = np.random.default_rng(0).normal(size=(4, 4, 8, 8, 4)).astype("f4")
    result = tfopt.export.to_onnx(model, tmp_path / "g3.onnx", verify_data=x)
    assert result.parity.max_abs_error < 1e-4, result.parity


def test_dilated_convs_stay_float_in_qat_and_say_so():
    """The converter splits a dilated conv around SPACE_TO_BATCH_ND, leaving its CONV_2D
    float inside an int8 file: QAT leaves it float on purpose and warns, naming it."""
    inp = keras.Input((8, 8, 4))
    x = L.Conv2D(8, 3, padding="same", dilation_rate=2, name="dilated")(inp)
    y = L.Conv1D(4, 3, padding="same", groups=2, dilation_rate=2, name="dilated_1d")(
        L.Reshape((64, 8))(x)
    )
    model = keras.Model(inp, L.Dense(2)(L.Flatten()(y)))
    with pytest.warns(UserWarning, match=r"dilated \(Conv2D\), dilated_1d \(Conv1D\)"):
        tq.quantize_model(model)
