"""`import tfopt` is cheap and never switches the process to tf_keras."""

import json
import os
import subprocess
import sys

HEAVY = ["tensorflow_model_optimization", "tf_keras", "tf2onnx", "onnxruntime"]


def _modules_after(statement):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    code = (
        f"{statement}\n"
        "import json, os, sys\n"
        "print(json.dumps({'modules': sorted(sys.modules), "
        "'legacy': os.environ.get('TF_USE_LEGACY_KERAS')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_tfopt_loads_nothing_heavy():
    state = _modules_after("import tfopt")
    loaded = set(state["modules"])
    assert not loaded & set(HEAVY)
    assert "tensorflow" not in loaded  # not even TensorFlow until a subpackage is used
    assert state["legacy"] is None


def test_export_imports_no_tfmot_and_no_runtime():
    state = _modules_after("import tfopt.export")
    assert not set(state["modules"]) & set(HEAVY)
    assert state["legacy"] is None


def test_subpackages_load_lazily():
    state = _modules_after("import tfopt; tfopt.datasets")
    assert "tfopt.datasets" in state["modules"]
    assert "tfopt.export" not in state["modules"]
