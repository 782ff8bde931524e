"""OpCensus: inputs and outputs with their dtypes, and "fully integer, I/O included"."""

import keras
import numpy as np
import pytest

from tfopt import export
from tfopt import quantization as tq

L = keras.layers


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    float_model = keras.Sequential(
        [keras.Input((6,), name="features"), L.Dense(8, activation="relu"), L.Dense(3)]
    )
    qat = tq.quantize_model(float_model)
    qat.compile("adam", "mse")
    x = np.random.default_rng(0).standard_normal((64, 6)).astype("float32")
    qat.fit(x, np.zeros((64, 3), "float32"), epochs=1, batch_size=16, verbose=0)
    return float_model, qat, x


@pytest.fixture(scope="module")
def files(models, tmp_path_factory):
    float_model, qat, x = models
    out = tmp_path_factory.mktemp("census")
    return {
        "float": export.to_tflite(float_model, out / "float.tflite", verify_data=x).path,
        "qat": export.to_tflite(qat, out / "qat.tflite", verify_data=x).path,
        "int8_io": export.to_tflite(
            qat, out / "io.tflite", "int8", int8_io=True, verify_data=x
        ).path,
        "onnx": export.to_onnx(float_model, out / "float.onnx", verify_data=x).path,
        "qdq": export.to_onnx(qat, out / "qdq.onnx", verify_data=x).path,
    }


def test_float_file_is_not_fully_integer(files):
    census = export.op_census(files["float"])
    assert census.inputs == (export.TensorInfo("features", "float32"),)
    assert [t.dtype for t in census.outputs] == ["float32"]
    assert not census.is_fully_integer()
    assert census.integer_summary() == (
        "no — ops left in float: FULLY_CONNECTED x2; float input/output (float32)"
    )


def test_int8_qat_with_float_io_is_not_fully_integer(files):
    census = export.op_census(files["qat"])
    assert not census.float_ops()  # every kernel is int8 ...
    assert [t.dtype for t in census.float_io()] == ["float32", "float32"]  # ... not the I/O
    assert not census.is_fully_integer()
    assert census.integer_summary() == (
        "no — float input/output (float32); compute ops all integer"
    )


def test_int8_io_file_is_fully_integer(files):
    census = export.op_census(files["int8_io"])
    assert census.is_fully_integer()
    assert census.integer_summary() == "yes (int8 input, int8 output)"
    assert census.inputs[0].name == "features"  # the signature's name, not a tensor path


def test_qat_model_takes_int8_io_without_naming_int8(models, tmp_path):
    # quantization=None exports a QAT model to int8 ("int8-qat"): int8 I/O applies as
    # with "int8" (it was refused with "needs a full-integer model ... 'float32'").
    _, qat, x = models
    result = export.to_tflite(qat, tmp_path / "io.tflite", int8_io=True, verify_data=x)
    assert result.quantization == "int8-qat"
    assert export.op_census(result.path).integer_summary() == "yes (int8 input, int8 output)"


def test_onnx_files(files):
    census = export.op_census(files["onnx"])
    assert census.inputs == (export.TensorInfo("features", "float32"),)
    assert not census.is_fully_integer()
    assert census.integer_summary().startswith("no — ops left in float: MatMul x2")
    qdq = export.op_census(files["qdq"])
    assert not qdq.is_fully_integer()  # a QDQ file takes and gives float
    assert "float input/output (float32)" in qdq.integer_summary()


def test_a_census_without_io_knows_it_does_not_know():
    census = export.OpCensus("x.tflite", "tflite", ())
    assert not census.is_fully_integer()
    assert census.integer_summary().startswith("unknown")


def test_onnx_loop_bodies_are_read(tmp_path):
    """Compute ops inside an ONNX Loop's body are in `nested`, and float ones count in
    float_compute_ops(); the main graph's ops stay in `ops`."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def value(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [2, 2])

    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "x"], ["y"]),
            helper.make_node("Gemm", ["y", "y"], ["z"]),
        ],
        "body",
        [value("x")],
        [value("z")],
    )
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["a", "a"], ["b"]),
            helper.make_node("Loop", ["", "", "b"], ["c"], body=body),
        ],
        "main",
        [value("a")],
        [value("c")],
    )
    path = tmp_path / "loop.onnx"
    onnx.save(helper.make_model(graph), str(path))
    census = export.op_census(path)
    assert [o.op for o in census.ops] == ["MatMul", "Loop"]
    assert [(o.op, o.graph) for o in census.nested] == [("MatMul", 1), ("Gemm", 1)]
    assert [(o.op, o.graph) for o in census.float_compute_ops()] == [
        ("MatMul", 0), ("MatMul", 1), ("Gemm", 1)
    ]  # fmt: skip
