"""Distillation test fixtures: digits as 64-vectors, a trained teacher, a fresh student."""

import keras
import numpy as np
import pytest

from tfopt.datasets import load_digits

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


@pytest.fixture(scope="session")
def digits():
    data = load_digits(flatten=True)
    # 512 training samples keep every fit in these tests well under a second.
    return data.x_train[:512], data.y_train[:512], data.x_test, data.y_test


@pytest.fixture(scope="session")
def teacher(digits):
    """A trained teacher with BatchNormalization and Dropout (both must stay inert)."""
    x, y, _, _ = digits
    keras.utils.set_random_seed(0)
    model = make_mlp(64, "teacher", dropout=True, batchnorm=True)
    model.compile("adam", CE, metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=64, verbose=0)
    return model


@pytest.fixture
def student():
    keras.utils.set_random_seed(1)
    return make_mlp(16, "student")


def weights_of(model):
    return [np.array(w) for w in model.get_weights()]
