"""Exports a small model to PATH and SIGKILLs itself halfway through writing the file.

python kill_export.py PATH
"""

import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras

from tfopt.export import _staging, to_tflite


def write_half_then_die(path, data):
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


_staging.write_bytes = write_half_then_die
model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(4)])
to_tflite(model, sys.argv[1])
