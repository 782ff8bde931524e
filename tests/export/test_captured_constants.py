"""Layers that keep constant tensors (not variables) export with the model's inputs only."""

import keras
import numpy as np
import pytest

import tfopt

L = keras.layers


@pytest.mark.parametrize("normalization", ["given", "unadapted"])
def test_normalization_constants_are_not_file_inputs(normalization, tmp_path):
    # Keras's Normalization keeps its mean and variance as tensors; tf2onnx made every
    # captured tensor an input of the ONNX file (3 inputs, and verify could not run it).
    layer = (
        L.Normalization(mean=0.5, variance=2.0)
        if normalization == "given"
        else (L.Normalization())
    )
    inp = keras.Input((8, 8, 1))
    model = keras.Model(inp, L.Dense(3)(L.Flatten()(layer(inp))))
    x = np.random.default_rng(0).random((8, 8, 8, 1)).astype(np.float32)
    for export, name in ((tfopt.export.to_onnx, "n.onnx"), (tfopt.export.to_tflite, "n.tflite")):
        result = export(model, tmp_path / name, verify_data=x)
        census = tfopt.export.op_census(result.path)
        assert len(census.inputs) == 1, census.inputs
        assert result.parity.max_abs_error <= 1e-5
