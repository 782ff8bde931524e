import numpy as np
import pytest

import tfopt
from tests.quantization import helpers
from tfopt import quantization as tq


@pytest.fixture(scope="module")
def exported(qat_cnn, data, tmp_path_factory):
    path = tmp_path_factory.mktemp("qat") / "cnn_int8.tflite"
    return tfopt.export.to_tflite(qat_cnn, path, verify_data=data.x_test)


def test_fully_int8_no_float_compute(exported):
    census = tfopt.export.op_census(exported.path)
    assert exported.quantization == "int8-qat"
    assert not census.float_compute_ops(), census.table()
    counts = census.counts()
    assert counts["CONV_2D"] == 4 and counts["DEPTHWISE_CONV_2D"] == 1
    assert counts["FULLY_CONNECTED"] == 1
    # One QUANTIZE (the float input) and one DEQUANTIZE (the output): nothing in between.
    assert counts.get("QUANTIZE") == 1 and counts.get("DEQUANTIZE") == 1
    kernels = census.of_type("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    assert all(op.input_dtypes[:2] == ("int8", "int8") for op in kernels)


def test_parity_within_one_step(exported, qat_cnn, data):
    parity = exported.parity
    within, worst = helpers.parity_in_steps(parity, qat_cnn, data.x_test)
    assert within >= 0.999, (within, worst)
    assert worst <= 2.0 + helpers.STEP_SLACK
    assert parity.top1_agreement >= 0.995


def test_int8_io(qat_cnn, data, tmp_path):
    result = tfopt.export.to_tflite(
        qat_cnn, tmp_path / "io.tflite", "int8", int8_io=True, verify_data=data.x_test[:64]
    )
    census = tfopt.export.op_census(result.path)
    assert "QUANTIZE" not in census.counts() and "DEQUANTIZE" not in census.counts()
    within, _ = helpers.parity_in_steps(result.parity, qat_cnn, data.x_test[:64])
    assert within >= 0.999


def test_int8_accuracy_matches_qat(exported, qat_cnn, data):
    tflite_acc = np.mean(exported.parity.outputs[0].argmax(1) == data.y_test)
    keras_acc = np.mean(qat_cnn.predict(data.x_test, verbose=0).argmax(1) == data.y_test)
    assert abs(tflite_acc - keras_acc) <= 0.005


def test_unobserved_ranges_refused(float_cnn, tmp_path):
    qat = tq.quantize_model(float_cnn)
    with pytest.raises(ValueError, match="never observed"):
        tfopt.export.to_tflite(qat, tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()


def test_float_export_of_qat_model_refused(qat_cnn, tmp_path):
    with pytest.raises(ValueError, match="quantization='float16'"):
        tfopt.export.to_tflite(qat_cnn, tmp_path / "x.tflite", quantization="float16")


def test_float_export_unchanged(float_cnn, data, tmp_path):
    result = tfopt.export.to_tflite(float_cnn, tmp_path / "f.tflite", verify_data=data.x_test[:32])
    assert result.quantization == "float32" and result.parity.max_abs_error < 1e-4
