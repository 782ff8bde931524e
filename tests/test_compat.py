"""The tf_keras bridge: tfopt's calls on a legacy Keras 2 model go to tfmot, in a child
process (it imports tf_keras and tfmot), and leave the process's Keras as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow_model_optimization")
pytest.importorskip("tf_keras")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.tfmot
@pytest.mark.slow
def test_the_same_tfopt_calls_run_on_a_tf_keras_model(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "scripts" / "tf_keras_bridge.py")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["pruned_wrapper"].startswith("tensorflow_model_optimization")
    assert out["stripped_class"] == "Conv2D" and out["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert out["tflite"][0] == "float32" and out["tflite"][1] < 1e-5
    assert out["onnx"][0] == "float32" and out["onnx"][1] < 1e-5
    quantization, within, top1 = out["qat"]
    assert quantization == "int8-qat" and within >= 0.99 and top1 >= 0.95
    assert out["qat_float_compute"] == []  # fully int8 from tfmot's trained ranges
    assert "tfmot (tf_keras) QAT model" in out["qat_onnx_error"]
    assert (
        "Argument `config` must be None or 'tflite' for a tf_keras model" in out["tensorrt_error"]
    )
    # tfopt imported tfmot for the user and left the process as it was.
    assert out["TF_USE_LEGACY_KERAS"] is None
    assert out["tf.keras"] == "keras._tf_keras.keras"  # Keras 3's, not tf_keras
