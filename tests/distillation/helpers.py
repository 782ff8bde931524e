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
