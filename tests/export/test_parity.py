"""Float, float16 and ONNX exports compute what the Keras model computes."""

import os
import stat

import keras
import numpy as np
import pytest

from tests.export import models
from tfopt import export

# The bars: float TFLite and ONNX within 1e-5 of Keras, float16 within 1e-2.
FLOAT_TOL = 1e-5
FLOAT16_TOL = 1e-2


@pytest.fixture(scope="module", params=sorted(models.FACTORIES))
def model_and_inputs(request):
    keras.utils.set_random_seed(0)
    model = models.FACTORIES[request.param]()
    return model, models.sample_inputs(model)


def test_float_tflite_matches_keras(model_and_inputs, tmp_path):
    model, x = model_and_inputs
    result = export.to_tflite(model, tmp_path / "m.tflite", verify_data=x)
    assert result.parity.max_abs_error <= FLOAT_TOL, result
    assert result.parity.runtime == "litert"
    assert result.verified_on == "data"
    assert result.bytes == (tmp_path / "m.tflite").stat().st_size
    assert result.gzip_bytes > 0
    # verify() on the published file agrees with the figures the exporter returned.
    again = export.verify(tmp_path / "m.tflite", model, x)
    assert again.max_abs_error == pytest.approx(result.parity.max_abs_error, abs=1e-12)


def test_float16_tflite_close_to_keras(model_and_inputs, tmp_path):
    model, x = model_and_inputs
    result = export.to_tflite(model, tmp_path / "f16.tflite", "float16", verify_data=x)
    assert result.parity.max_abs_error <= FLOAT16_TOL, result
    assert result.parity.max_abs_error > 0  # float16 weights do round


def test_onnx_matches_keras(model_and_inputs, tmp_path):
    model, x = model_and_inputs
    result = export.to_onnx(model, tmp_path / "m.onnx", verify_data=x)
    assert result.parity.max_abs_error <= FLOAT_TOL, result
    assert result.parity.runtime == "onnxruntime"
    assert result.format == "onnx"


def test_onnx_keeps_input_names(tmp_path):
    import onnx

    model = models.two_inputs()
    export.to_onnx(model, tmp_path / "m.onnx")
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert [i.name for i in graph.input] == ["image", "meta"]


def test_outputs_keep_their_order_and_names(tmp_path):
    import onnx

    model = models.two_outputs()
    x = models.sample_inputs(model)
    _, score = model(x)
    for result in (
        export.to_tflite(model, tmp_path / "m.tflite", verify_data=x),
        export.to_onnx(model, tmp_path / "m.onnx", verify_data=x),
    ):
        assert [o.shape for o in result.parity.outputs] == [(24, 4), (24, 1)]
        np.testing.assert_allclose(result.parity.outputs[1], score, atol=FLOAT_TOL)
        assert result.parity.top1_agreement == 1.0  # taken from the softmax output
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert [o.name for o in graph.output] == ["label", "score"]


def test_two_inputs_accept_dict_and_list(tmp_path):
    model = models.two_inputs()
    image, meta = models.sample_inputs(model)
    export.to_tflite(model, tmp_path / "m.tflite")
    by_list = export.verify(tmp_path / "m.tflite", model, [image, meta])
    by_dict = export.verify(tmp_path / "m.tflite", model, {"meta": meta, "image": image})
    assert by_list.max_abs_error <= FLOAT_TOL
    np.testing.assert_array_equal(by_list.outputs[0], by_dict.outputs[0])


def test_subclassed_model_with_input_signature(tmp_path):
    model = models.Subclassed()
    model(np.zeros((2, 5), "float32"))
    x = np.random.default_rng(0).standard_normal((16, 5)).astype("float32")
    tfl = export.to_tflite(model, tmp_path / "s.tflite", input_signature=(None, 5), verify_data=x)
    onx = export.to_onnx(model, tmp_path / "s.onnx", input_signature=(None, 5), verify_data=x)
    assert tfl.parity.max_abs_error <= FLOAT_TOL
    assert onx.parity.max_abs_error <= FLOAT_TOL


def test_subclassed_model_built_with_one_shape_needs_no_signature(tmp_path):
    model = models.Subclassed()
    model.build((None, 5))
    result = export.to_tflite(model, tmp_path / "s.tflite")
    assert result.verified_on == "random"
    assert result.parity.max_abs_error <= FLOAT_TOL


def test_existing_file_is_replaced_by_the_new_export(tmp_path):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old")
    export.to_tflite(models.mlp(), target)
    assert target.read_bytes()[4:8] == b"TFL3"  # the flatbuffer file identifier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_exported_files_follow_the_users_umask(tmp_path, umask):
    """Like any file the user writes: 0666 less the umask (a staged temp file is 0600)."""
    old = os.umask(umask)
    try:
        lite = export.to_tflite(models.mlp(), tmp_path / "m.tflite")
        onnx = export.to_onnx(models.mlp(), tmp_path / "m.onnx")
        plain = tmp_path / "plain.bin"
        plain.write_bytes(b"x")
    finally:
        os.umask(old)
    expected = stat.S_IMODE(plain.stat().st_mode)
    assert expected == 0o666 & ~umask
    for result in (lite, onnx):
        assert stat.S_IMODE(os.stat(result.path).st_mode) == expected
