"""batch_size=: static shapes for edge compilers (no shape ops), still verified."""

import keras
import numpy as np
import pytest

import tfopt
from tfopt import export
from tfopt import quantization as tq

L = keras.layers
SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK")  # what Flatten leaves with a free batch


def _flatten_cnn():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            L.Conv2D(4, 3, activation="relu"),
            L.Flatten(),
            L.Dense(10),
        ],
        name="flatten_cnn",
    )


@pytest.fixture(scope="module")
def digits():
    return tfopt.datasets.load_digits()


@pytest.fixture(scope="module")
def qat(digits):
    keras.utils.set_random_seed(0)
    model = tq.quantize_model(_flatten_cnn())
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits.x_train[:256], digits.y_train[:256], epochs=1, verbose=0)
    return model


def _input_shape(path):
    from tfopt.export._runtime import open_runner

    return [list(s.shape) for s in open_runner(path).inputs]


def test_qat_flatten_with_batch_1_has_no_shape_ops(qat, digits, tmp_path):
    x = digits.x_test[:30]
    free = export.to_tflite(qat, tmp_path / "free.tflite", verify_data=x)
    counts = export.op_census(free.path).counts()
    assert all(counts.get(op) == 1 for op in SHAPE_OPS), counts  # the finding

    static = export.to_tflite(qat, tmp_path / "static.tflite", verify_data=x, batch_size=1)
    census = export.op_census(static.path)
    assert not set(SHAPE_OPS) & set(census.counts()), census.table()
    assert not census.float_compute_ops()
    assert _input_shape(static.path) == [[1, 8, 8, 1]]
    assert static.quantization == "int8-qat" and static.parity.num_samples == 30
    assert static.parity.within_one_step >= 0.99, static
    # Same kernels, same numbers: the static file computes what the free one does.
    np.testing.assert_array_equal(static.parity.outputs[0], free.parity.outputs[0])
    int8_io = export.to_tflite(qat, tmp_path / "io.tflite", "int8", int8_io=True, batch_size=1)
    assert not set(SHAPE_OPS) & set(export.op_census(int8_io.path).counts())


def test_a_batch_of_4_is_calibrated_and_verified_in_whole_batches(digits, tmp_path):
    keras.utils.set_random_seed(0)
    model = _flatten_cnn()
    x = digits.x_test[:30]  # 7 batches of 4 and a last one of 2, padded to 4
    result = export.to_tflite(
        model,
        tmp_path / "b4.tflite",
        "int8",
        representative_data=digits.x_train[:64],
        verify_data=x,
        batch_size=4,
    )
    assert _input_shape(result.path) == [[4, 8, 8, 1]]
    assert not set(SHAPE_OPS) & set(export.op_census(result.path).counts())
    assert result.parity.outputs[0].shape == (30, 10)
    assert result.parity.top1_agreement >= 0.9, result
    again = export.verify(result.path, model, x, batch_size=7)  # the file's 4 wins
    np.testing.assert_array_equal(again.outputs[0], result.parity.outputs[0])
    assert export.benchmark_latency(result.path, runs=3, warmup=1).median_ms > 0


@pytest.mark.parametrize("source", ["float", "qat"])
def test_onnx_with_batch_1_is_static(qat, digits, tmp_path, source):
    import onnx

    model = qat if source == "qat" else _flatten_cnn()
    result = export.to_onnx(
        model, tmp_path / "m.onnx", verify_data=digits.x_test[:9], batch_size=1
    )
    graph = onnx.load(result.path).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [1, 8, 8, 1]
    assert not {"Shape", "Gather", "Concat"} & {n.op_type for n in graph.node}
    assert result.parity.num_samples == 9
    if source == "float":
        assert result.parity.max_abs_error <= 1e-5, result
    else:
        assert result.parity.within_one_step >= 0.99, result


def test_batch_size_is_checked(digits, tmp_path):
    model = _flatten_cnn()
    with pytest.raises(
        ValueError, match=r"Argument `batch_size` must be .* Received: batch_size=0"
    ):
        export.to_tflite(model, tmp_path / "m.tflite", batch_size=0)
    with pytest.raises(TypeError, match=r"Received: batch_size='1'"):
        export.to_onnx(model, tmp_path / "m.onnx", batch_size="1")
    with pytest.raises(ValueError, match=r"holds 3 samples, fewer than one batch of batch_size=4"):
        export.to_tflite(
            model,
            tmp_path / "m.tflite",
            "int8",
            representative_data=digits.x_train[:3],
            batch_size=4,
        )
    assert not list(tmp_path.iterdir())
