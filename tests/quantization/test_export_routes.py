"""Which QAT models export where, and what an integer file says it left in float."""

from __future__ import annotations

import keras
import pytest

import tfopt
from tfopt import quantization as tq

L = keras.layers


def test_a_nested_qat_model_exports_as_int8_and_names_its_float_head(qat_cnn, data, tmp_path):
    """A QAT model used inside another model (here with a float ELU on top, which QAT
    does not know) is a QAT model: its layers export int8 (before, the whole file came
    out float32), and the result names the op left in float."""
    inp = keras.Input((8, 8, 1))
    outer = keras.Model(inp, L.Activation("elu")(qat_cnn(inp)))
    assert tq.is_qat_model(outer)
    result = tfopt.export.to_tflite(outer, tmp_path / "outer.tflite", verify_data=data.x_test)
    assert result.quantization == "int8-qat"
    census = tfopt.export.op_census(result.path)
    assert not census.float_compute_ops()
    assert [op.op for op in census.float_ops()] == ["ELU"]
    assert "ops left in float: ELU" in result.notes
    qdq = tfopt.export.to_onnx(outer, tmp_path / "outer.onnx", verify_data=data.x_test)
    assert qdq.quantization.startswith("qdq-")
    assert not tfopt.export.op_census(qdq.path).float_compute_ops()  # every Conv/MatMul QDQ


def test_top1_agreement_counts_ties_of_a_quantized_softmax(qat_cnn, data, tmp_path):
    """An int8 SOFTMAX writes steps of 1/256: classes the float model tells apart can tie
    in the file. The model's class among the file's top scores agrees."""
    inp = keras.Input((8, 8, 1))
    outer = keras.Model(inp, L.Softmax()(qat_cnn(inp)))
    result = tfopt.export.to_tflite(outer, tmp_path / "p.tflite", verify_data=data.x_test)
    assert "SOFTMAX" in tfopt.export.op_census(result.path).counts()
    assert result.parity.max_error_steps <= 1.0 + 1e-3
    assert result.parity.top1_agreement >= 0.99


def test_a_fully_int8_file_has_no_float_ops_and_no_note(qat_cnn, data, tmp_path):
    result = tfopt.export.to_tflite(qat_cnn, tmp_path / "m.tflite", verify_data=data.x_test)
    assert tfopt.export.op_census(result.path).float_ops() == []
    assert not any(n.startswith("ops left in float") for n in result.notes)


def test_the_tensorrt_preset_is_refused_by_tflite_before_converting(float_cnn, data, tmp_path):
    keras.utils.set_random_seed(0)
    qat = tq.quantize_model(float_cnn, config="tensorrt")
    qat(data.x_train[:64], training=True)
    with pytest.raises(ValueError, match=r"per-channel Dense kernels \('logits'.*to_onnx"):
        tfopt.export.to_tflite(qat, tmp_path / "trt.tflite")
    assert not list(tmp_path.iterdir())


def test_a_float_weight_in_a_qdq_file_shows_in_the_census(float_cnn, data, tmp_path):
    """The ONNX census reads a DequantizeLinear input as the integer type it stores, so
    a float ONNX file lists its Conv/MatMul as float and a QDQ file does not."""
    fp = tfopt.export.to_onnx(float_cnn, tmp_path / "f.onnx")
    assert {op.op for op in tfopt.export.op_census(fp.path).float_compute_ops()} >= {"Conv"}
