"""Bad input: a clear error naming the argument, and nothing left on disk."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.export import models
from tfopt import export


@pytest.fixture(scope="module")
def cnn():
    keras.utils.set_random_seed(0)
    return models.cnn_bn()


def _listing(directory):
    return sorted(p.name for p in directory.iterdir())


def test_non_keras_object(tmp_path):
    with pytest.raises(TypeError, match=r"Argument `model` must be a Keras 3 model.*dict"):
        export.to_tflite({"not": "a model"}, tmp_path / "m.tflite")
    with pytest.raises(TypeError, match=r"Argument `model`"):
        export.to_onnx(lambda x: x, tmp_path / "m.onnx")
    assert _listing(tmp_path) == []


def test_unbuilt_model(tmp_path):
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"Argument `model` is not built.*build"):
        export.to_tflite(model, tmp_path / "m.tflite")
    with pytest.raises(ValueError, match=r"Argument `model` is not built"):
        export.to_onnx(model, tmp_path / "m.onnx")
    assert _listing(tmp_path) == []


def test_wrong_suffix(cnn, tmp_path):
    with pytest.raises(ValueError, match=r"Argument `path` must end in '\.tflite'.*m\.tflite"):
        export.to_tflite(cnn, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"Argument `path` must end in '\.onnx'"):
        export.to_onnx(cnn, tmp_path / "m.tflite")
    assert _listing(tmp_path) == []


def test_unknown_quantization(cnn, tmp_path):
    with pytest.raises(ValueError, match=r"Received: quantization='int4'"):
        export.to_tflite(cnn, tmp_path / "m.tflite", quantization="int4")


def test_int8_without_data(cnn, tmp_path):
    with pytest.raises(ValueError, match=r"pass `representative_data`"):
        export.to_tflite(cnn, tmp_path / "m.tflite", quantization="int8")
    with pytest.raises(ValueError, match=r"pass `representative_data`"):
        export.to_tflite(cnn, tmp_path / "m.tflite", quantization="int16x8")
    assert _listing(tmp_path) == []


def test_int8_io_needs_full_integer(cnn, tmp_path):
    with pytest.raises(ValueError, match=r"`int8_io=True` needs a full-integer model"):
        export.to_tflite(cnn, tmp_path / "m.tflite", quantization="dynamic", int8_io=True)


@pytest.mark.parametrize(
    "data, message",
    [
        (np.zeros((10, 8, 8, 3), "float32"), r"expected samples of shape \(12, 12, 3\)"),
        (np.zeros((0, 12, 12, 3), "float32"), r"is empty"),
        (tf.data.Dataset.from_tensor_slices(np.zeros((4, 5, 5, 3), "float32")), r"\(12, 12, 3\)"),
        (tf.data.Dataset.from_tensor_slices(np.zeros((0, 12, 12, 3), "float32")), r"is empty"),
        (lambda: iter([]), r"is empty"),
        ("images.npy", r"must be a numpy array.*tf.data.Dataset.*generator"),
    ],
    ids=["wrong-shape", "empty", "dataset-wrong-shape", "dataset-empty", "gen-empty", "string"],
)
def test_bad_representative_data(cnn, tmp_path, data, message):
    with pytest.raises((ValueError, TypeError), match=message) as info:
        export.to_tflite(cnn, tmp_path / "m.tflite", "int8", representative_data=data)
    assert "representative_data" in str(info.value)
    assert _listing(tmp_path) == []


def test_missing_directory(cnn, tmp_path):
    with pytest.raises(ValueError, match=r"directory .*nowhere.* does not exist"):
        export.to_tflite(cnn, tmp_path / "nowhere" / "m.tflite")
    assert _listing(tmp_path) == []


def test_unwritable_directory(cnn, tmp_path):
    if os.geteuid() == 0:
        # root writes through permission bits; /proc refuses new files even to root.
        target = "/proc/tfopt-test.tflite"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "m.tflite"
    with pytest.raises(PermissionError, match=r"Argument `path`: cannot write to directory"):
        export.to_tflite(cnn, target)
    assert not os.path.exists(target)


def test_failed_conversion_keeps_previous_file(cnn, tmp_path, monkeypatch):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"previous complete file")

    class Broken:
        def __init__(self, *args, **kwargs):
            self.target_spec = tf.lite.TargetSpec()

        @classmethod
        def from_keras_model(cls, model):
            return cls()

        def convert(self):
            raise RuntimeError("converter exploded")

    monkeypatch.setattr(tf.lite, "TFLiteConverter", Broken)
    with pytest.raises(RuntimeError, match=r"TFLite conversion of model 'cnn_bn'.*exploded"):
        export.to_tflite(cnn, target)
    assert target.read_bytes() == b"previous complete file"
    assert _listing(tmp_path) == ["m.tflite"]


def test_failed_verification_publishes_nothing(cnn, tmp_path, monkeypatch):
    import tfopt.export.tflite as tflite_module

    def broken_verify(*args, **kwargs):
        raise RuntimeError("runtime crashed")

    monkeypatch.setattr(tflite_module, "verify", broken_verify)
    with pytest.raises(RuntimeError, match="runtime crashed"):
        export.to_tflite(cnn, tmp_path / "m.tflite")
    assert _listing(tmp_path) == []


def test_tf_keras_model_is_named(tmp_path):
    """A tf_keras model that cannot be exported (here: unbuilt) gets a message that says what
    it is (checked without importing tfmot; tests/test_compat.py exports real ones)."""

    class FakeTfKerasModel:
        pass

    FakeTfKerasModel.__module__ = "tf_keras.src.engine.sequential"
    with pytest.raises(ValueError, match=r"tf_keras \(Keras 2\) model that is not built"):
        export.to_tflite(FakeTfKerasModel(), tmp_path / "m.tflite")


def test_verify_rejects_a_file_from_another_model(cnn, tmp_path):
    export.to_tflite(models.mlp(), tmp_path / "mlp.tflite")
    with pytest.raises(ValueError, match="exported from this model"):
        export.verify(tmp_path / "mlp.tflite", models.conv1d(), np.zeros((2, 20, 4), "float32"))


def test_inspect_tools_reject_unknown_files(cnn, tmp_path):
    (tmp_path / "m.pb").write_bytes(b"x")
    known = r"Received: path='.*m\.pb'\. Known endings: '\.tflite' \(tflite\), '\.onnx' \(onnx\)"
    with pytest.raises(ValueError, match=known):
        export.op_census(tmp_path / "m.pb")
    with pytest.raises(ValueError, match=known):
        export.verify(tmp_path / "m.pb", cnn, np.zeros((1, 12, 12, 3), "float32"))
    with pytest.raises(FileNotFoundError):
        export.benchmark_latency(tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match=r"Argument `num_threads` must be an int >= 1"):
        export.benchmark_latency(tmp_path / "m.pb", num_threads=0)


def test_bad_opset(cnn, tmp_path):
    with pytest.raises(ValueError, match=r"Argument `opset`.*Received: opset=42"):
        export.to_onnx(cnn, tmp_path / "m.onnx", opset=42)


def test_raw_errors_seen_by_users_are_clear_now(tmp_path):
    """Each once surfaced as a raw error from deep inside TensorFlow, LiteRT or Keras."""
    import tfopt

    x = np.random.default_rng(0).standard_normal((64, 32)).astype("float32")
    mlp = keras.Sequential([keras.Input((32,)), keras.layers.Dense(8), keras.layers.Dense(2)])
    # A list of single samples: the message says to stack it.
    with pytest.raises(ValueError, match=r"list of 64 single samples: stack them"):
        export.to_tflite(mlp, tmp_path / "l.tflite", "int8", representative_data=list(x))
    # sparsity_report of an array.
    with pytest.raises(TypeError, match="Argument `model` must be a Keras model or layer"):
        tfopt.pruning.sparsity_report(np.zeros(3))

    # An unbuilt subclassed model with its input_signature is built from the signature.
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, inputs):
            return self.dense(inputs)

    result = export.to_tflite(Sub(), tmp_path / "u.tflite", input_signature=(None, 32))
    assert result.parity.max_abs_error < 1e-5


def test_sparse_int8_dense_runs_without_xnnpack_and_says_so(tmp_path):
    """LiteRT's default XNNPACK delegate cannot prepare an int8 FULLY_CONNECTED with
    sparse weights; verify ran into 'failed to delegate' before."""
    import tfopt

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((64, 32)).astype("float32")
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(256, "relu"),
                              keras.layers.Dense(10)])  # fmt: skip
    for layer in model.layers:  # 80% zeros, as a stripped pruned model has
        kernel = layer.kernel.numpy()
        kernel[np.abs(kernel) < np.quantile(np.abs(kernel), 0.8)] = 0.0
        layer.kernel.assign(kernel)
    result = tfopt.export.to_tflite(
        model, tmp_path / "s.tflite", "int8", representative_data=x, sparse=True
    )
    assert any("XNNPACK delegate cannot prepare" in n for n in result.notes)
    assert result.parity.top1_agreement >= 0.9
