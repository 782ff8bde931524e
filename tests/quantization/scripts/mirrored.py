"""QAT under tf.distribute.MirroredStrategy on 2 logical CPUs; prints JSON.

Run in a subprocess by test_distribute.py: logical devices must be configured
before TensorFlow initializes, which the pytest process has already done.
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, sys.argv[1])
from tests.quantization import helpers  # noqa: E402
from tfopt import quantization as tq  # noqa: E402

keras.utils.set_random_seed(0)
data = helpers.digits()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    qat = tq.quantize_model(helpers.small_cnn())
    qat.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
history = qat.fit(data.x_train[:512], data.y_train[:512], batch_size=64, epochs=3, verbose=0)

report = {"replicas": strategy.num_replicas_in_sync, "ranges": 0, "max_replica_gap": 0.0}
for w in qat.non_trainable_weights:
    if not w.name.endswith(("_min", "_max", "_count")):
        continue
    per_replica = [np.asarray(v) for v in w.value.values]
    report["ranges"] += 1
    gap = max(float(np.abs(p - per_replica[0]).max()) for p in per_replica)
    report["max_replica_gap"] = max(report["max_replica_gap"], gap)
counts = [
    float(np.asarray(w.value.values[0]))
    for w in qat.non_trainable_weights
    if w.name.endswith("_count")
]
report["min_count"] = min(counts)
report["loss"] = [float(v) for v in history.history["loss"]]
print("JSON" + json.dumps(report))
