"""Runs one Distiller fit on 1 device and under MirroredStrategy on 2 logical CPUs; prints JSON.

Run as a subprocess: logical devices must be configured before TensorFlow initializes.
"""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfopt.datasets import load_digits  # noqa: E402
from tfopt.distillation import (  # noqa: E402
    DistillationScheduler,
    Distiller,
    FeatureDistillation,
    LinearSchedule,
)

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def mlp(width, name, batchnorm=False):
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(width, activation="relu", name=f"{name}_hidden")(inputs)
    if batchnorm:  # teacher only: a training-mode student BN would see per-replica batches
        hidden = keras.layers.BatchNormalization(name=f"{name}_bn")(hidden)
    return keras.Model(inputs, keras.layers.Dense(10, name=f"{name}_logits")(hidden), name=name)


def build(cache):
    keras.utils.set_random_seed(0)
    hint = FeatureDistillation(
        teacher_layer_name="t_hidden", student_layer_name="s_hidden", projection=True
    )
    teacher, student = mlp(32, "t", batchnorm=True), mlp(8, "s")
    distiller = Distiller(teacher, student, ["soft", hint], alpha=0.6, cache_teacher_outputs=cache)
    distiller.compile(keras.optimizers.SGD(0.5), CE, metrics=["accuracy"])
    return distiller


def train(distiller, initial, x, y):
    distiller.set_weights(initial)
    scheduler = DistillationScheduler(temperature=LinearSchedule(4.0, 2.0, 1))
    history = distiller.fit(
        x, y, epochs=2, batch_size=32, shuffle=False, verbose=0, callbacks=[scheduler]
    )
    return [np.array(w) for w in distiller.student.get_weights()], history.history


data = load_digits(flatten=True)
x, y = data.x_train[:64], data.y_train[:64]
start = time.time()
single = build(cache=False)
initial = single.get_weights()
student_initial = [np.array(w) for w in single.student.get_weights()]
single_weights, single_history = train(single, initial, x, y)
result = {
    "max_weight_change": max(
        float(np.abs(a - b).max()) for a, b in zip(student_initial, single_weights)
    ),
    "single_loss": single_history["loss"],
}
for cache in (False, True):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored = build(cache)
    mirrored_weights, mirrored_history = train(mirrored, initial, x, y)
    result[f"cache={cache}"] = {
        "replicas": strategy.num_replicas_in_sync,
        "max_weight_diff": max(
            float(np.abs(a - b).max()) for a, b in zip(single_weights, mirrored_weights)
        ),
        "mirrored_loss": mirrored_history["loss"],
        "temperature": float(mirrored.temperature),
    }
result["seconds"] = time.time() - start
print(json.dumps(result))
