"""Exports are checked, not only measured: data checks, NaN weights, parity bars."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.export import models
from tfopt import export

RNG = np.random.default_rng(0)
X = RNG.standard_normal((64, 16)).astype("float32")


def _old_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"the user's previous file")
    return path


def _untouched(path):
    assert path.read_bytes() == b"the user's previous file"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("argument", ["representative_data", "verify_data"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_data_is_refused(tmp_path, argument, bad):
    path = _old_file(tmp_path, "m.tflite")
    data = X.copy()
    data[3, 5] = bad
    kwargs = {"representative_data": X, argument: data}
    with pytest.raises(ValueError, match=rf"Argument `{argument}` holds 1 NaN or infinite"):
        export.to_tflite(models.mlp(), path, "int8", **kwargs)
    _untouched(path)
    with pytest.raises(ValueError, match="holds 1 NaN or infinite"):
        export.verify(tmp_path / "m.tflite", models.mlp(), data)


def test_calibration_on_another_scale_is_refused(tmp_path):
    """Digit pixels 0..16 (sklearn's raw scale) against the 0..1 the model sees."""
    path = _old_file(tmp_path, "m.tflite")
    pixels = RNG.integers(0, 17, (64, 16)).astype("float32")
    with pytest.raises(ValueError, match=r"different scales for input .*\(16\.0x\)"):
        export.to_tflite(
            models.mlp(), path, "int8", representative_data=pixels, verify_data=pixels / 16
        )
    _untouched(path)
    # Same scale (a subset with a smaller range, within 8x) is fine.
    export.to_tflite(models.mlp(), tmp_path / "ok.tflite", "int8", representative_data=X,
                     verify_data=X[:16] * 0.5)  # fmt: skip


@pytest.mark.parametrize("to", ["tflite", "onnx"])
def test_non_finite_weights_are_refused(tmp_path, to):
    model = models.mlp()
    kernel = model.layers[1].kernel
    kernel.assign(np.where(np.eye(*kernel.shape) > 0, np.nan, kernel.numpy()))
    path = _old_file(tmp_path, f"m.{to}")
    exporter = export.to_tflite if to == "tflite" else export.to_onnx
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 weights: .*kernel \(16 of"):
        exporter(model, path)
    _untouched(path)


def _wide_inputs_model():
    """Reads only a small input next to a huge one: per-tensor int8 input quantization
    (step 10000/255) rounds the small one to zero, so the int8 file outputs ~0."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.layers[0].set_weights([np.array([[0.0], [1000.0]], "float32"), np.zeros(1, "float32")])
    x = np.stack([RNG.uniform(0, 1e4, 256), RNG.uniform(0.2, 1, 256)], axis=1)
    return model, x.astype("float32")


def test_a_file_below_its_default_bar_is_not_published(tmp_path):
    model, x = _wide_inputs_model()
    path = _old_file(tmp_path, "m.tflite")
    with pytest.raises(export.ParityError, match=r"int8 file .* is not published.*max abs error"):
        export.to_tflite(model, path, "int8", representative_data=x)
    _untouched(path)
    # The documented way out publishes it anyway, and says so in the result.
    result = export.to_tflite(model, path, "int8", representative_data=x, parity_bar=False)
    assert result.parity_bar is None and result.parity.max_abs_error > 100


def test_a_custom_bar_and_the_default_bars(tmp_path):
    model = models.mlp()
    result = export.to_tflite(model, tmp_path / "f.tflite")
    assert result.parity_bar == export.acceptance.DEFAULT_BARS["float32"]
    assert result.as_dict()["parity_bar"]["max_rel_error"] == 1e-4
    impossible = export.ParityBar(max_rel_error=0.0)
    with pytest.raises(export.ParityError, match=r"max abs error .* > 0"):
        export.to_tflite(model, tmp_path / "i.tflite", "int8", representative_data=X,
                         parity_bar=impossible)  # fmt: skip
    assert not (tmp_path / "i.tflite").exists()
    with pytest.raises(TypeError, match="Argument `parity_bar` must be None"):
        export.to_onnx(model, tmp_path / "m.onnx", parity_bar=0.5)
    with pytest.raises(ValueError, match="min_top1_agreement"):
        export.ParityBar(min_top1_agreement=1.5)
    nan = export.verify(tmp_path / "f.tflite", model, X)
    nan = type(nan)(**{**nan.as_dict(), "max_abs_error": float("nan")})
    assert export.ParityBar(max_rel_error=1.0).failures(nan)  # NaN never passes
