"""Shared fixtures of the report tests: a small trained digits CNN with a folded BatchNorm."""

import keras
import numpy as np
import pytest

import tfopt

L = keras.layers


@pytest.fixture(scope="session")
def digits():
    return tfopt.datasets.load_digits()


def bn_cnn(name="bn_cnn") -> keras.Model:
    """Conv+BN+ReLU (one int8 op after folding), Conv+ReLU, pooling, two Dense: 8x8x1 -> 10."""
    inp = keras.Input((8, 8, 1), name="image")
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    x = L.Conv2D(16, 3, activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(32, activation="relu", name="fc")(x)
    x = L.Dense(10, name="logits")(x)
    return keras.Model(inp, x, name=name)


@pytest.fixture(scope="session")
def trained_bn_cnn(digits):
    """bn_cnn after 6 epochs on digits (seed 0): ~96% test accuracy, in about 5 s."""
    keras.utils.set_random_seed(0)
    model = bn_cnn()
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(digits.x_train, digits.y_train, epochs=6, batch_size=32, verbose=0)
    return model


def accuracy(model, x, y) -> float:
    """Top-1 accuracy computed here with NumPy, independently of tfopt.report."""
    logits = np.asarray(model(x, training=False))
    return float(np.mean(np.argmax(logits, axis=-1) == y))
