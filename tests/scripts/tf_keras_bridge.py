"""The same tfopt calls on a tf_keras (Keras 2) model; prints one JSON line of results.

Run in a child process by tests/test_compat.py: it imports tf_keras and tfmot.
"""

import json
import os

os.environ.pop("TF_USE_LEGACY_KERAS", None)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
import tf_keras

import tfopt

out = {}
x = np.random.default_rng(0).random((64, 8, 8, 1)).astype("float32")
y = np.random.default_rng(1).integers(0, 10, 64)
loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def legacy():
    tf_keras.utils.set_random_seed(0)
    inp = tf_keras.Input((8, 8, 1))
    h = tf_keras.layers.Conv2D(8, 3, activation="relu")(inp)
    h = tf_keras.layers.GlobalAveragePooling2D()(h)
    return tf_keras.Model(inp, tf_keras.layers.Dense(10)(h))


# The README's pruning code, unchanged, on a tf_keras model.
pruned = tfopt.pruning.prune_low_magnitude(
    legacy(), tfopt.pruning.ConstantSparsity(0.5, 0, frequency=1)
)
out["pruned_wrapper"] = type(pruned.layers[1]).__module__
pruned.compile("adam", loss)
pruned.fit(x, y, epochs=1, verbose=0, callbacks=[tfopt.pruning.UpdatePruningStep()])
small = tfopt.pruning.strip_pruning(pruned)
out["stripped_class"] = type(small.layers[1]).__name__
out["sparsity"] = float(np.mean(small.layers[1].get_weights()[0] == 0))
lite = tfopt.export.to_tflite(small, "legacy.tflite", verify_data=x)
out["tflite"] = [lite.quantization, lite.parity.max_abs_error]
onnx = tfopt.export.to_onnx(small, "legacy.onnx", verify_data=x)
out["onnx"] = [onnx.quantization, onnx.parity.max_abs_error]
# The README's QAT code on a tf_keras model.
qat = tfopt.quantization.quantize_model(legacy())
qat.compile("adam", loss)
qat.fit(x, y, epochs=1, verbose=0)
int8 = tfopt.export.to_tflite(qat, "legacy_qat.tflite", verify_data=x)
census = tfopt.export.op_census(int8.path)
out["qat"] = [int8.quantization, int8.parity.within_one_step, int8.parity.top1_agreement]
out["qat_float_compute"] = [op.op for op in census.float_compute_ops()]
try:
    tfopt.export.to_onnx(qat, "legacy_qat.onnx")
except ValueError as err:
    out["qat_onnx_error"] = str(err)
try:
    tfopt.quantization.quantize_model(legacy(), config="tensorrt")
except ValueError as err:
    out["tensorrt_error"] = str(err)
out["TF_USE_LEGACY_KERAS"] = os.environ.get("TF_USE_LEGACY_KERAS")
out["tf.keras"] = tf.keras.__name__
print(json.dumps(out))
