"""Distillation test fixtures: digits as 64-vectors, a trained teacher, a fresh student."""

import keras
import pytest

from tests.distillation.helpers import CE, make_mlp
from tfopt.datasets import load_digits


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
    model.compile(keras.optimizers.Adam(0.01), CE, metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=64, verbose=0)
    return model


@pytest.fixture
def student():
    keras.utils.set_random_seed(1)
    return make_mlp(16, "student")
