"""MirroredStrategy over 2 logical CPUs, in a subprocess (logical devices must be set
before TensorFlow initializes, which the pytest process has already done).

steps_per_execution stays 1 here: with Keras 3.15 / TF 2.21, MirroredStrategy with
steps_per_execution > 1 fails inside Keras' own multi-step loop even for a plain model
("You must feed a value for placeholder tensor 'while/cond/Placeholder'"); the step
source itself is tested with steps_per_execution=5 in test_pruning_callbacks.py."""

from tests.pruning._pruning_subprocess import run_json

SCRIPT = """
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import tfopt
from tfopt import pruning
from tfopt.pruning.pruning_callbacks import collect_pruning_layers

keras.utils.set_random_seed(0)
data = tfopt.datasets.load_digits()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    base = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])
    model = pruning.prune_low_magnitude(
        base, pruning.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=12, frequency=4))
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=1)
model.fit(data.x_train[:384], data.y_train[:384], batch_size=64, epochs=3, verbose=0,
          callbacks=[pruning.UpdatePruningStep()])
out = {"replicas": strategy.num_replicas_in_sync, "layers": []}
for layer in collect_pruning_layers(model):
    steps = [int(v.numpy()) for v in layer.pruning_step.value.values]
    masks = [v.numpy() for v in layer.masks[0].value.values]
    weights = [v.numpy() for v in layer.pruned_weights[0].value.values]
    out["layers"].append({
        "steps": steps,
        "masks_equal": all(np.array_equal(masks[0], m) for m in masks),
        "weights_equal": all(np.allclose(weights[0], w, atol=1e-6) for w in weights),
        "zeros_where_pruned": all(bool(np.all(w[m == 0] == 0)) for w, m in zip(weights, masks)),
        "kept": float(masks[0].mean()),
    })
print(json.dumps(out))
"""


def test_mirrored_strategy_two_replicas_same_step_and_masks():
    out = run_json(SCRIPT, legacy_keras=False)
    assert out["replicas"] == 2
    assert len(out["layers"]) == 2
    for layer in out["layers"]:
        # 384 samples / global batch 64 = 6 steps per epoch, 3 epochs.
        assert layer["steps"] == [18, 18]
        assert layer["masks_equal"] and layer["weights_equal"] and layer["zeros_where_pruned"]
        # Final pruning at step 12 (0, 4, 8, 12): 75% pruned, 25% kept.
        assert abs(layer["kept"] - 0.25) < 0.01


SUBCLASSED_SCRIPT = """
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import tfopt
from tfopt import pruning

class NoTraining(keras.Model):  # call() takes no `training`: Keras's fit passes none
    def __init__(self):
        super().__init__()
        self.flatten = keras.layers.Flatten()
        self.fc = pruning.prune_low_magnitude(
            keras.layers.Dense(10), pruning.ConstantSparsity(0.5, 1, frequency=1))

    def call(self, x):
        return self.fc(self.flatten(x))

keras.utils.set_random_seed(0)
data = tfopt.datasets.load_digits()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = NoTraining()
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(data.x_train[:256], data.y_train[:256], batch_size=64, epochs=1, verbose=0,
          callbacks=[pruning.UpdatePruningStep()])
steps = [int(v.numpy()) for v in model.fc.pruning_step.value.values]
masks = [v.numpy() for v in model.fc.masks[0].value.values]
weights = [v.numpy() for v in model.fc.layer.kernel.value.values]
print(json.dumps({
    "steps": steps,
    "kept": [float(m.mean()) for m in masks],
    "zeros_where_pruned": all(bool(np.all(w[m == 0] == 0)) for w, m in zip(weights, masks)),
}))
"""


def test_subclassed_model_without_training_argument_prunes_on_every_replica():
    out = run_json(SUBCLASSED_SCRIPT, legacy_keras=False)
    assert out["steps"] == [4, 4]  # 256 samples / global batch 64
    assert out["kept"] == [0.5, 0.5] and out["zeros_where_pruned"]
