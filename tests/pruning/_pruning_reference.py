"""The tfmot side of the comparisons, computed once per session in one subprocess.

tfmot must never be imported into the pytest process, so one fresh interpreter
with TF_USE_LEGACY_KERAS=1 computes every tfmot figure the tests compare with:
schedule values over GRID x STEPS, and tfmot's masks on a tf_keras twin of the
tests' small CNN given its weights.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.pruning._pruning_subprocess import run_json

# One grid for both sides: (class name, kwargs). Steps 0..max_step are compared.
GRID = [
    ("ConstantSparsity", {"target_sparsity": 0.5, "begin_step": 0}),
    (
        "ConstantSparsity",
        {"target_sparsity": 0.8, "begin_step": 3, "end_step": 40, "frequency": 7},
    ),
    (
        "ConstantSparsity",
        {"target_sparsity": 0.0, "begin_step": 10, "end_step": -1, "frequency": 1},
    ),
    (
        "PolynomialDecay",
        {
            "initial_sparsity": 0.0,
            "final_sparsity": 0.9,
            "begin_step": 0,
            "end_step": 60,
            "frequency": 5,
        },
    ),
    (
        "PolynomialDecay",
        {
            "initial_sparsity": 0.2,
            "final_sparsity": 0.8,
            "begin_step": 7,
            "end_step": 113,
            "power": 2,
            "frequency": 3,
        },
    ),
    (
        "PolynomialDecay",
        {
            "initial_sparsity": 0.5,
            "final_sparsity": 0.5,
            "begin_step": 1,
            "end_step": 2,
            "power": 1,
            "frequency": 1,
        },
    ),
    (
        "PolynomialDecay",
        {
            "initial_sparsity": 0.9,
            "final_sparsity": 0.1,
            "begin_step": 0,
            "end_step": 97,
            "power": 0.5,
            "frequency": 11,
        },
    ),
    (
        "PolynomialDecay",
        {
            "initial_sparsity": 0.1,
            "final_sparsity": 0.95,
            "begin_step": 13,
            "end_step": 171,
            "power": 3,
            "frequency": 1,
        },
    ),
]
STEPS = list(range(0, 260))

# (key, target sparsity, extra prune_low_magnitude arguments) for the mask comparison.
MASK_CASES = [
    ("s50", 0.5, {}),
    ("s80", 0.8, {}),
    ("s90", 0.9, {}),
    ("m2n4", 0.5, {"sparsity_m_by_n": (2, 4)}),
]

_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
import tf_keras as keras
import tensorflow_model_optimization as tfmot

args = json.load(open(sys.argv[1]))
out = {"schedules": [], "masks": {}}
steps = tf.constant(args["steps"], dtype=tf.int64)
for name, kwargs in args["grid"]:
    schedule = getattr(tfmot.sparsity.keras, name)(**kwargs)
    s, v = schedule(steps)  # elementwise over all steps at once
    s = np.broadcast_to(s.numpy(), (len(args["steps"]),))
    v = np.broadcast_to(np.float32(v.numpy()), (len(args["steps"]),))
    out["schedules"].append([[bool(x) for x in s], [x.item() for x in v]])

weights = [np.asarray(w, np.float32) for w in args["weights"]]
x = np.zeros((4, 8, 8, 1), np.float32)
y = np.zeros((4,), np.int32)
for key, target, extra in args["mask_cases"]:
    base = keras.Sequential([
        keras.layers.InputLayer((8, 8, 1)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10),
    ])
    base.set_weights(weights)
    if "sparsity_m_by_n" in extra:
        extra = {"sparsity_m_by_n": tuple(extra["sparsity_m_by_n"])}
    model = tfmot.sparsity.keras.prune_low_magnitude(
        base, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(
            target, begin_step=0, frequency=1), **extra)
    model.compile(optimizer=keras.optimizers.SGD(0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  run_eagerly=True)
    # One step with learning rate 0: tfmot prunes at step 1 and the weights stay put.
    model.fit(x, y, batch_size=4, epochs=1, verbose=0,
              callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    out["masks"][key] = [v.numpy().astype(int).ravel().tolist()
                         for layer in model.layers for v in layer.weights if "mask" in v.name]
print(json.dumps(out))
"""


def run_tfmot_reference(weights, workdir: Path) -> dict:
    """{"schedules": [[should, sparsity] per GRID entry], "masks": {key: [mask per layer]}}."""
    args = workdir / "tfmot_args.json"
    args.write_text(json.dumps({
        "grid": GRID, "steps": STEPS, "mask_cases": MASK_CASES,
        "weights": [w.tolist() for w in weights],
    }))  # fmt: skip
    script = workdir / "tfmot_reference.py"
    script.write_text(_SCRIPT)
    return run_json(
        f"import sys, runpy; sys.argv = ['x', {str(args)!r}]; "
        f"runpy.run_path({str(script)!r}, run_name='__main__')"
    )
