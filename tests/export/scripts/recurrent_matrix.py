"""Exports recurrent models in every quantization mode; prints one JSON line per case.

Run in a child process by tests/export/test_recurrent.py: TFLite's calibrator can
kill a process with a segmentation fault, and the test must survive to say so.
"""

import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import tfopt

L = keras.layers
STEPS, FEATURES = 12, 8
KINDS = {
    "LSTM": lambda: L.LSTM(16),
    "GRU": lambda: L.GRU(16),
    "SimpleRNN": lambda: L.SimpleRNN(16),
    "Bidirectional(LSTM)": lambda: L.Bidirectional(L.LSTM(8)),
}
MODES = (None, "float16", "dynamic", "int8", "int16x8")


def model_of(kind, steps=STEPS):
    keras.utils.set_random_seed(0)
    inp = keras.Input((steps, FEATURES))
    return keras.Model(inp, L.Dense(4)(KINDS[kind]()(inp)))


class Looping(L.Layer):
    """A custom layer with its own tf.while_loop (a cumulative sum over time)."""

    def call(self, x):
        steps = tf.shape(x)[1]

        def body(i, acc):
            return i + 1, acc + x[:, i]

        _, total = tf.while_loop(lambda i, _: i < steps, body, (0, tf.zeros_like(x[:, 0])))
        return total


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.rnn, self.out = L.GRU(8), L.Dense(4)

    def call(self, x):
        return self.out(self.rnn(x))


def case(name, model, mode, data, **kwargs):
    out = tempfile.mkdtemp()
    row = {"case": name, "mode": mode or "float32"}
    try:
        calibration = data if mode in ("int8", "int16x8") else None
        result = tfopt.export.to_tflite(
            model,
            os.path.join(out, "m.tflite"),
            mode,
            representative_data=calibration,
            verify_data=data,
            **kwargs,
        )
        census = tfopt.export.op_census(result.path)
        row.update(
            status="exported",
            quantization=result.quantization,
            max_abs_error=result.parity.max_abs_error,
            float_compute=[op.op for op in census.float_compute_ops()],
            notes=list(result.notes),
        )
    except (ValueError, TypeError, RuntimeError) as err:
        row.update(status="refused", error=f"{type(err).__name__}: {err}")
    print(json.dumps(row), flush=True)


data = np.random.default_rng(0).standard_normal((32, STEPS, FEATURES)).astype("float32")
for kind in KINDS:
    for mode in MODES:
        case(kind, model_of(kind), mode, data)
variable = keras.Model(*(lambda i: (i, L.Dense(4)(L.LSTM(8)(i))))(keras.Input((None, FEATURES))))
case("LSTM, variable length", variable, "int8", data)
sub = Subclassed()
sub(data[:1])
case("GRU in a subclassed model", sub, "int8", data, input_signature=(None, STEPS, FEATURES))
inp = keras.Input((STEPS, FEATURES))
case("custom while_loop", keras.Model(inp, L.Dense(4)(Looping()(inp))), "int8", data)
