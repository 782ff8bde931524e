"""Fixtures of the tfopt.optimize tests: digits subsets, small CNNs, a spy on fit."""

import keras
import pytest

import tfopt

L = keras.layers


@pytest.fixture(scope="session")
def digits():
    return tfopt.datasets.load_digits()


@pytest.fixture(scope="session")
def small(digits):
    """(train, val): 256 training and 128 validation digits keep each stage to a few steps."""
    return (digits.x_train[:256], digits.y_train[:256]), (digits.x_test[:128], digits.y_test[:128])


def cnn(filters=8, name="cnn", softmax=False) -> keras.Model:
    """Conv (1 input channel) -> Conv -> pool -> Dense(10): 8x8x1 digits -> 10 classes."""
    inp = keras.Input((8, 8, 1), name="image")
    x = L.Conv2D(filters, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.Conv2D(filters * 2, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(10, activation="softmax" if softmax else None, name="classes")(x)
    return keras.Model(inp, x, name=name)


def trained_cnn(digits, filters=8, name="cnn", softmax=False, epochs=3) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = cnn(filters, name, softmax)
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax),
        metrics=["accuracy"],
    )
    model.fit(digits.x_train, digits.y_train, epochs=epochs, batch_size=64, verbose=0)
    return model


@pytest.fixture
def fits(monkeypatch):
    """Every keras.Model.fit call of the test, recorded (and still run)."""
    calls = []
    original = keras.Model.fit

    def spy(self, *args, **kwargs):
        calls.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    return calls
