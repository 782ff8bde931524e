"""Helpers shared by the distillation tests (models and the student's loss)."""

import keras
import numpy as np

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def make_mlp(width: int, name: str, dropout: bool = False, batchnorm: bool = False):
    """Functional MLP on (64,) digits vectors with a hidden layer named `<name>_hidden`."""
    inputs = keras.Input((64,), name=f"{name}_in")
    h = keras.layers.Dense(width, activation="relu", name=f"{name}_hidden")(inputs)
    if batchnorm:
        h = keras.layers.BatchNormalization(name=f"{name}_bn")(h)
    if dropout:
        h = keras.layers.Dropout(0.5, name=f"{name}_dropout")(h)
    outputs = keras.layers.Dense(10, name=f"{name}_logits")(h)
    return keras.Model(inputs, outputs, name=name)


def weights_of(model):
    return [np.array(w) for w in model.get_weights()]


def tflite_weight_arrays(path) -> dict[str, np.ndarray]:
    """The weight tensors (input 1) of every CONV_2D/DEPTHWISE_CONV_2D/FULLY_CONNECTED op.

    Read back from the `.tflite` file with LiteRT, keyed by tensor name, in the file's
    stored dtype (int8 for a full-integer file, where 0 is exactly a zero weight since
    int8 weights are symmetric).
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    weights = {}
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            index = int(op["inputs"][1])
            weights[names[index]] = np.array(interpreter.get_tensor(index))
    return weights
