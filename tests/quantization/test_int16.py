"""QAT for TFLite's 16x8 mode: int16 activations (symmetric, zero-point 0), int8 weights."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfopt
from tests.quantization import helpers
from tfopt import quantization as tq
from tfopt.quantization import QuantizationConfig
from tfopt.quantization.grid import nudged
from tfopt.quantization.quantizers import LastValueQuantizer, MovingAverageQuantizer

L = keras.layers

# One output step of a 16-bit output, in float32: Keras' fake-quant computes
# code * scale + min over 65535 codes, and the runtime's dequantize code * scale, each
# rounding once at up to 2^16 steps x float32 epsilon (2^-23), i.e. < 0.008 steps each:
# 1/64 of a step covers both and is nowhere near a second step. (The int8 slack,
# helpers.STEP_SLACK = 1e-4, assumes 255 codes.)
INT16_STEP_SLACK = 1.0 / 64


def tiny_cnn():
    """The issue's test model: Conv+BN+ReLU, max pooling, Dense."""
    inp = keras.Input((8, 8, 1), name="image")
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="conv")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.Flatten(name="flat")(x)
    x = L.Dense(10, name="logits")(x)
    return keras.Model(inp, x, name="tiny_cnn")


@pytest.fixture(scope="module")
def float16x8(data):
    keras.utils.set_random_seed(0)
    return helpers.compile_fit(tiny_cnn(), data, epochs=10, lr=3e-3)


@pytest.fixture(scope="module")
def qat16(float16x8, data):
    keras.utils.set_random_seed(1)
    qat = tq.quantize_model(float16x8, config="tflite16x8")
    return helpers.compile_fit(qat, data, epochs=1, lr=3e-4)


@pytest.fixture(scope="module")
def exported16(qat16, data, tmp_path_factory):
    path = tmp_path_factory.mktemp("int16") / "cnn_16x8.tflite"
    return tfopt.export.to_tflite(qat16, path, verify_data=data.x_test)


def _steps(parity, model, x):
    expected = np.asarray(model.predict(x, verbose=0, batch_size=256), np.float64)
    return np.abs(np.asarray(parity.outputs[0], np.float64) - expected) / parity.output_step


def _calibrated(model, x):
    """Runs `model` in training mode over `x` so every activation range is observed."""
    for start in range(0, len(x), 64):
        model(x[start : start + 64], training=True)
    return model


# --- config and quantizers


def test_preset_is_tflite_16x8_spec():
    config = QuantizationConfig.from_preset("tflite16x8")
    assert (config.weight_bits, config.activation_bits) == (8, 16)
    assert config.symmetric_activations and config.symmetric_weights and config.narrow_range
    assert config.per_channel and not config.dense_per_channel  # as the "tflite" preset
    assert QuantizationConfig.from_config(config.get_config()) == config


@pytest.mark.parametrize("bits", [4, 12, 32, 16.0, True])
def test_activation_bits_must_be_8_or_16(bits):
    with pytest.raises(ValueError, match=rf"`activation_bits` must be 8 .* or 16 .*={bits!r}"):
        QuantizationConfig(activation_bits=bits, symmetric_activations=True)


@pytest.mark.parametrize("flag", ["symmetric_activations", "symmetric_weights", "narrow_range"])
def test_16_bits_outside_the_16x8_spec_refused(flag):
    config = QuantizationConfig.from_preset("tflite16x8")
    with pytest.raises(ValueError, match=rf"`{flag}` must be True with activation_bits=16"):
        dataclasses.replace(config, **{flag: False})


def test_16_bit_activation_grid_is_symmetric_int16():
    # TFLite's 16x8 spec: int16 activations symmetric, zero-point 0, codes -32767..32767
    # (what the converter wrote for these quantizers: scale = max / 32767, zero-point 0).
    q = MovingAverageQuantizer(num_bits=16, symmetric=True)
    assert q.narrow_range
    scale, zero = nudged(-3.0, 3.0, 16, q.narrow_range)
    assert zero == 0 and scale == np.float32(3.0 / 32767)
    x = tf.constant([-4.0, -3.0, 1e-5, 2.5, 3.0, 4.0])
    out = tq.quantizers.fake_quant(x, -3.0, 3.0, 16, True, False).numpy()
    codes = np.round(out / scale)
    np.testing.assert_array_equal(codes, np.round(np.clip(x.numpy(), -3, 3) / scale))
    assert codes.min() == -32767 and codes.max() == 32767


def test_weights_stay_at_most_8_bits():
    with pytest.raises(ValueError, match="num_bits=16"):
        LastValueQuantizer(num_bits=16)


def test_qat_model_quantizers_are_16_bit(qat16):
    info = tq.export_info(qat16)
    ranges = info.activations
    assert len(ranges) == 3  # the input, conv+bn+relu (fused), logits
    assert all(r.num_bits == 16 and r.symmetric for r in ranges)
    assert info.activation_bits == 16
    assert [w.num_bits for w in info.weights()] == [8, 8]


# --- TFLite export


def test_exports_16x8_without_float_compute(exported16):
    assert exported16.quantization == "int16x8-qat"
    census = tfopt.export.op_census(exported16.path)
    assert not census.float_compute_ops(), census.table()
    counts = census.counts()
    assert counts["CONV_2D"] == 1 and counts["FULLY_CONNECTED"] == 1
    # The float input is quantized once and the output dequantized once.
    assert counts["QUANTIZE"] == 1 and counts["DEQUANTIZE"] == 1
    kernels = census.of_type("CONV_2D", "FULLY_CONNECTED")
    assert all(op.input_dtypes == ("int16", "int8", "int64") for op in kernels), census.table()


def test_activation_tensors_are_int16_with_zero_point_0(exported16):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=exported16.path)
    tensors = interpreter.get_tensor_details()
    quantized = [t for t in tensors if t["quantization_parameters"]["scales"].size]
    activations = [t for t in quantized if t["dtype"] not in (np.int8, np.int64)]
    # The quantized input, conv+relu, max pool, flatten, logits.
    assert len(activations) >= 5
    assert all(t["dtype"] == np.int16 for t in activations), [
        (t["name"], t["dtype"]) for t in activations
    ]
    assert all(not t["quantization_parameters"]["zero_points"].any() for t in quantized)
    assert {t["dtype"] for t in quantized} == {np.int16, np.int8, np.int64}


def test_16x8_parity_within_one_step(exported16, qat16, data):
    parity = exported16.parity
    steps = _steps(parity, qat16, data.x_test)
    within = float(np.mean(steps <= 1.0 + INT16_STEP_SLACK))
    assert within >= 0.999, (within, steps.max())
    assert steps.max() <= 2.0 + INT16_STEP_SLACK
    assert parity.top1_agreement >= 0.995
    # The exporter's own figure allows for int16's float32 rounding too (it read 97.8%
    # here while it allowed only 1e-4 of a step).
    assert parity.within_one_step >= 0.999, parity.within_one_step
    # The output step is the trained 16-bit grid of the logits: range / 32767.
    logits = qat16.get_layer("quant_logits")
    top = float(np.asarray(logits._output_vars[0]["max"]))
    assert parity.output_step == pytest.approx(top / 32767, rel=1e-6)


def test_16x8_accuracy_close_to_float(exported16, float16x8, data):
    # The bar for the int8 file, 0.3 points of test accuracy (one test image of
    # 359 is 0.28 points); the int16 activations lose less than int8 ones.
    file_acc = np.mean(exported16.parity.outputs[0].argmax(1) == data.y_test)
    float_acc = np.mean(float16x8.predict(data.x_test, verbose=0).argmax(1) == data.y_test)
    assert abs(file_acc - float_acc) <= 0.003, (file_acc, float_acc)


def _layers_model(kind):
    inp = keras.Input((8, 8, 1), name="image")
    if kind == "residual":  # depthwise + ReLU6, Add, global pooling, softmax
        x = L.Conv2D(8, 1, activation="relu")(inp)
        y = L.ReLU(6.0)(L.DepthwiseConv2D(3, padding="same")(x))
        x = L.GlobalAveragePooling2D()(L.Add()([x, y]))
        out = L.Dense(10, activation="softmax")(x)
    elif kind == "transpose":  # Conv2DTranspose, padding, average pooling
        x = L.Conv2DTranspose(4, 3, strides=2, padding="same")(inp)
        out = L.AveragePooling2D(2)(L.ZeroPadding2D()(x))
    elif kind == "arithmetic":  # Multiply, Subtract
        a, b = L.Conv2D(4, 1)(inp), L.Conv2D(4, 3, padding="same", activation="relu")(inp)
        out = L.Subtract()([L.Multiply()([a, b]), a])
    else:  # "leaky": LeakyReLU (requantizes its input to its own range)
        out = L.LeakyReLU(0.1)(L.Conv2D(4, 3, padding="same")(inp))
    return keras.Model(inp, out, name=kind)


# One test per kind of op rather than one long chain: Keras computes the 16-bit grid in
# float32, which leaves 8 bits below a step, so a requantizing op (LeakyReLU, Add...)
# rounds a few elements in 10^3 the other way than LiteRT's integer kernels; a chain
# compounds these (Conv, LeakyReLU, Conv1D measured 99.896% within one step).
@pytest.mark.parametrize("kind", ["residual", "transpose", "arithmetic", "leaky"])
def test_16x8_layers_parity(kind, data, tmp_path):
    keras.utils.set_random_seed(0)
    qat = tq.quantize_model(_layers_model(kind), config="tflite16x8")
    qat = _calibrated(qat, data.x_train[:256])
    x = data.x_test[:128]
    result = tfopt.export.to_tflite(qat, tmp_path / f"{kind}.tflite", verify_data=x)
    assert not tfopt.export.op_census(result.path).float_compute_ops()
    steps = _steps(result.parity, qat, x)
    assert np.mean(steps <= 1.0 + INT16_STEP_SLACK) >= 0.999, steps.max()
    assert steps.max() <= 2.0 + INT16_STEP_SLACK


def test_16x8_concat_and_upsampling_through_tflite_quantizer(data, tmp_path):
    # The converter refuses int16 CONCATENATION / TILE from fake-quant ops: these go
    # through TFLite's 16x8 quantizer with the trained ranges (_tflite16x8.py).
    keras.utils.set_random_seed(0)  # before the layers: their weights must not depend
    inp = keras.Input((8, 8, 1))  # on which tests ran first in this worker
    x = L.Concatenate(name="joined")([L.Conv2D(2, 1)(inp), L.Conv2D(2, 3, padding="same")(inp)])
    out = L.Conv2D(3, 3, padding="same")(L.UpSampling2D(name="up")(x))
    qat = tq.quantize_model(keras.Model(inp, out), config="tflite16x8")
    qat = _calibrated(qat, data.x_train[:256])
    x = data.x_test[:128]
    result = tfopt.export.to_tflite(qat, tmp_path / "joined.tflite", verify_data=x)
    census = tfopt.export.op_census(result.path)
    assert not census.float_compute_ops(), census.table()
    assert census.of_type("CONCATENATION")[0].input_dtypes == ("int16", "int16")
    kernels = census.of_type("CONV_2D")
    assert all(op.input_dtypes == ("int16", "int8", "int64") for op in kernels)
    steps = _steps(result.parity, qat, x)
    assert np.mean(steps <= 1.0 + INT16_STEP_SLACK) >= 0.999, steps.max()
    assert steps.max() <= 2.0 + INT16_STEP_SLACK


def test_16x8_sigmoid_and_tanh_are_a_few_steps_off(data, tmp_path):
    # LiteRT's int16 LOGISTIC and TANH kernels approximate the functions (lookup
    # tables with interpolation), so they miss Keras' exactly-rounded values by a few
    # output steps of 1/32768 (measured, TF 2.21: tanh 89.8% to 90.5% of elements within
    # one step, worst 3.0 to 4.0 depending on the trained input range; sigmoid 99.84%,
    # worst 2.0). The error is reported, not hidden:
    # verify shows it and this test bounds it.
    keras.utils.set_random_seed(0)  # before the layers, as above
    inp = keras.Input((8, 8, 1))
    flat = L.Flatten()(inp)
    heads = [L.Dense(10, activation="tanh")(flat), L.Dense(10, activation="sigmoid")(flat)]
    qat = tq.quantize_model(keras.Model(inp, heads), config="tflite16x8")
    qat = _calibrated(qat, data.x_train[:256])
    x = data.x_test[:128]
    result = tfopt.export.to_tflite(qat, tmp_path / "heads.tflite", verify_data=x)
    assert result.parity.output_step == 1.0 / 32768  # the int16 kernels' fixed output grid
    expected = qat.predict(x, verbose=0)
    for got, want in zip(result.parity.outputs, expected):
        steps = np.abs(np.asarray(got, np.float64) - want) * 32768
        assert steps.max() <= 4.0 + INT16_STEP_SLACK


def test_16x8_quantizer_route_with_conv1d(data, tmp_path):
    # Concatenate takes TFLite's 16x8 quantizer route, which re-derives conv scales per
    # channel: the Conv1D kernels, trained per channel, land on their trained grid.
    inp = keras.Input((8, 8))
    x = L.Concatenate()([L.Conv1D(2, 1, name="c1d")(inp), L.Conv1D(2, 3, padding="same")(inp)])
    qat = tq.quantize_model(keras.Model(inp, x), config="tflite16x8")
    qat = _calibrated(qat, data.x_train[:64, :, :, 0])
    x_test = data.x_test[:64, :, :, 0]
    result = tfopt.export.to_tflite(qat, tmp_path / "c1d.tflite", verify_data=x_test)
    steps = _steps(result.parity, qat, x_test)
    assert np.mean(steps <= 1.0 + INT16_STEP_SLACK) >= 0.999


def test_16x8_quantizer_route_needs_per_channel_conv_weights(data, tmp_path):
    # Conv kernels trained per tensor would land on another grid, so the export is
    # refused up front.
    config = dataclasses.replace(QuantizationConfig.from_preset("tflite16x8"), per_channel=False)
    inp = keras.Input((8, 8))
    x = L.Concatenate()([L.Conv1D(2, 1, name="c1d")(inp), L.Conv1D(2, 3, padding="same")(inp)])
    qat = tq.quantize_model(keras.Model(inp, x), config=config)
    qat = _calibrated(qat, data.x_train[:64, :, :, 0])
    with pytest.raises(ValueError, match=r"these weights were trained otherwise: 'c1d'"):
        tfopt.export.to_tflite(qat, tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()


def test_int16_io(qat16, data, tmp_path):
    result = tfopt.export.to_tflite(
        qat16, tmp_path / "io.tflite", "int16x8", int8_io=True, verify_data=data.x_test[:64]
    )
    census = tfopt.export.op_census(result.path)
    assert "QUANTIZE" not in census.counts() and "DEQUANTIZE" not in census.counts()
    steps = _steps(result.parity, qat16, data.x_test[:64])
    assert np.mean(steps <= 1.0 + INT16_STEP_SLACK) >= 0.999


def test_int8_export_of_16_bit_model_refused(qat16, tmp_path):
    with pytest.raises(ValueError, match=r"Pass quantization=None or 'int16x8'"):
        tfopt.export.to_tflite(qat16, tmp_path / "x.tflite", quantization="int8")
    assert not (tmp_path / "x.tflite").exists()


def test_16x8_export_of_8_bit_model_refused(float16x8, tmp_path):
    qat8 = tq.quantize_model(float16x8)  # the mode is checked before the ranges
    with pytest.raises(ValueError, match=r"Pass quantization=None or 'int8'"):
        tfopt.export.to_tflite(qat8, tmp_path / "x.tflite", quantization="int16x8")


def test_onnx_export_refused_with_the_way_out(qat16, tmp_path):
    with pytest.raises(ValueError, match=r"16-bit activations .* export to TFLite only"):
        tfopt.export.to_onnx(qat16, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


# --- serialization


def test_keras_round_trip_keeps_16_bit_config(qat16, data, tmp_path):
    path = tmp_path / "qat16.keras"
    qat16.save(path)
    loaded = keras.saving.load_model(path)
    assert tq.export_info(loaded).activations == tq.export_info(qat16).activations
    config = loaded.get_layer("quant_conv").quantize_config.config
    assert config == QuantizationConfig.from_preset("tflite16x8")
    np.testing.assert_array_equal(
        loaded.predict(data.x_test[:32], verbose=0), qat16.predict(data.x_test[:32], verbose=0)
    )
