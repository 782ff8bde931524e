"""One worker of a 2-worker MultiWorkerMirroredStrategy run on 127.0.0.1 (or the
single-device reference with INDEX -1); writes every model variable to OUT.npz.

    python multiworker.py KIND INDEX PORT0,PORT1 OUT.npz [BACKUP_DIR [--kill-at E B]]
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
kind, index, ports, out = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4]
backup = sys.argv[5] if len(sys.argv) > 5 else None
kill_at = tuple(int(v) for v in sys.argv[7:9]) if "--kill-at" in sys.argv else None
if index >= 0:
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfopt  # noqa: E402
import tfopt.distribute  # noqa: E402
from tests.scripts import _training  # noqa: E402

if index >= 0:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
else:
    strategy = tf.distribute.get_strategy()
L = keras.layers
data = tfopt.datasets.load_digits()
x, y = data.x_train[:256], data.y_train[:256]


def cnn(name, filters):
    """With BatchNormalization only for the *_bn kinds: each replica normalizes by its own
    batch statistics, so those runs differ from one device by design."""
    return _training.cnn(name, filters, batchnorm=kind.endswith("_bn"))


callbacks = []
with strategy.scope():
    keras.utils.set_random_seed(0)
    if kind.startswith("pruning"):
        schedule = tfopt.pruning.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=12, frequency=2)
        model = tfopt.pruning.prune_low_magnitude(cnn("pruned", 8), schedule)
        callbacks.append(tfopt.pruning.UpdatePruningStep())
    elif kind == "qat":
        model = tfopt.quantization.quantize_model(cnn("qat", 8))
        callbacks.append(tfopt.quantization.QATCallback(quant_delay_steps=4, freeze_bn_step=8))
    else:
        from tfopt import distillation

        model = distillation.Distiller(cnn("teacher", 16), cnn("student", 4), "soft", alpha=0.5)
        callbacks += [
            distillation.DistillationScheduler(
                temperature=distillation.LinearSchedule(4.0, 2.0, transition_epochs=1)
            ),
            keras.callbacks.ModelCheckpoint(out + ".weights.h5", save_weights_only=True),
            keras.callbacks.TensorBoard(out + "_logs"),
        ]
    model.compile(
        keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
if backup:  # one backup directory per worker
    callbacks.append(keras.callbacks.BackupAndRestore(f"{backup}/worker_{max(index, 0)}"))
if kill_at:
    callbacks.append(_training.KillAt(kill_at))
history = tfopt.distribute.fit(
    model,
    x,
    y,
    batch_size=32,
    epochs=2,
    verbose=0,
    callbacks=callbacks,
    strategy=strategy,
    shuffle=False,  # the single-device reference sees the same batches
)
np.savez(out, **{v.path: np.asarray(v) for v in model.variables})
print(json.dumps({"loss": history.history["loss"]}))
