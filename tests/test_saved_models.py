"""A model saved with tfopt layers loads in a new process after `import tfopt` alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import tfopt

L = keras.layers
X = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
Y = np.random.default_rng(1).integers(0, 10, 16)


def _cnn(name, filters=4):
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = L.Conv2D(filters, 3, activation="relu")(inp)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10)(x), name=name)


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _pruned():
    model = tfopt.pruning.prune_low_magnitude(
        _cnn("pruned"), tfopt.pruning.PolynomialDecay(0.0, 0.5, 0, 4, frequency=1)
    )
    model.compile("adam", _loss())
    model.fit(
        X, Y, epochs=1, batch_size=8, verbose=0, callbacks=[tfopt.pruning.UpdatePruningStep()]
    )
    return model


def _qat():
    model = tfopt.quantization.quantize_model(_cnn("qat"))
    model.compile("adam", _loss())
    model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    return model


def _qat_attention():
    """Attention taken apart by QAT: HeadsReshape, a float MaskedSoftmax (causal mask)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = L.Reshape((8, 8))(inp)
    x = L.MultiHeadAttention(2, 4)(x, x, use_causal_mask=True)
    model = keras.Model(inp, L.Dense(10)(L.GlobalAveragePooling1D()(x)), name="attention")
    model = tfopt.quantization.quantize_model(model)
    model.compile("adam", _loss())
    model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    return model


def _distiller():
    from tfopt import distillation

    distiller = distillation.Distiller(
        _cnn("teacher", 8),
        _cnn("student", 2),
        [distillation.SoftDistillation(2.0), "mse"],
        distillation_loss_weights=[1.0, 0.5],
    )
    distiller.compile("adam", _loss())
    distiller.fit(
        X,
        Y,
        epochs=1,
        verbose=0,
        callbacks=[
            distillation.DistillationScheduler(temperature=distillation.LinearSchedule(4.0, 2.0))
        ],
    )
    return distiller


_LOAD = """
import json, sys
{imports}
import numpy as np
model = keras.saving.load_model(sys.argv[1])
x = np.load(sys.argv[2])
print(json.dumps({{"class": type(model).__name__,
                   "out": np.asarray(model.predict(x, verbose=0)).tolist(),
                   "tf_keras_env": __import__("os").environ.get("TF_USE_LEGACY_KERAS")}}))
"""


@pytest.mark.parametrize("imports", ["import tfopt\nimport keras", "import keras\nimport tfopt"])
@pytest.mark.parametrize(
    "make",
    [_pruned, _qat, _qat_attention, _distiller],
    ids=["pruned", "qat", "qat_attention", "distiller"],
)
def test_saved_model_loads_in_a_new_process_after_import_tfopt(make, imports, tmp_path):
    model = make()
    path, x = tmp_path / "model.keras", tmp_path / "x.npy"
    model.save(path)
    np.save(x, X)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    run = subprocess.run(
        [sys.executable, "-c", _LOAD.format(imports=imports), str(path), str(x)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert loaded["class"] == type(model).__name__
    assert loaded["tf_keras_env"] is None
    np.testing.assert_allclose(loaded["out"], model.predict(X, verbose=0), rtol=1e-6, atol=1e-6)


def test_without_tfopt_the_error_names_the_class(tmp_path):
    """Control: the same file in a process that never imports tfopt fails to load."""
    path = tmp_path / "model.keras"
    _qat().save(path)
    code = "import keras, sys; keras.saving.load_model(sys.argv[1])"
    run = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode != 0 and "QuantizeLayer" in run.stderr
