"""Trains a pruning, QAT or distillation model with BackupAndRestore; can SIGKILL itself.

    python kill_resume.py KIND BACKUP_DIR OUT.npz [--kill-at EPOCH BATCH]

KIND: pruning | qat | distillation. The run is deterministic (fixed data, no
shuffling, op determinism, one thread), so a run killed mid-epoch and run again with
the same BACKUP_DIR must end with exactly the weights (masks, steps, ranges, flags
included) of a run never killed. OUT.npz gets every variable of the final model.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import tfopt
from tests.scripts._training import KillAt, cnn

tf.config.experimental.enable_op_determinism()
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)

kind, backup_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
kill_at = tuple(int(v) for v in sys.argv[5:7]) if "--kill-at" in sys.argv else None
L = keras.layers
EPOCHS = 3


keras.utils.set_random_seed(0)
data = tfopt.datasets.load_digits()
x, y = data.x_train[:256], data.y_train[:256]
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
callbacks = []
if kind == "pruning":
    schedule = tfopt.pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=20, frequency=2)
    model = tfopt.pruning.prune_low_magnitude(cnn("pruned", 8), schedule)
    callbacks.append(tfopt.pruning.UpdatePruningStep())
elif kind == "qat":
    model = tfopt.quantization.quantize_model(cnn("qat", 8))
    callbacks.append(
        tfopt.quantization.QATCallback(
            quant_delay_steps=4, freeze_bn_step=10, freeze_ranges_step=18
        )
    )
elif kind == "distillation":
    from tfopt import distillation

    teacher = cnn("teacher", 16)
    model = distillation.Distiller(teacher, cnn("student", 4), "soft", alpha=0.5)
    callbacks.append(
        distillation.DistillationScheduler(
            temperature=distillation.LinearSchedule(4.0, 1.0, transition_epochs=2)
        )
    )
else:
    raise SystemExit(f"unknown kind {kind!r}")
model.compile(keras.optimizers.Adam(1e-3), loss)
callbacks.append(keras.callbacks.BackupAndRestore(backup_dir))
if kill_at is not None:
    callbacks.append(KillAt(kill_at))
model.fit(x, y, epochs=EPOCHS, batch_size=32, shuffle=False, verbose=0, callbacks=callbacks)
np.savez(out, **{v.path: np.asarray(v) for v in model.variables})
print("done")
