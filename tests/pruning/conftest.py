"""Small shared pieces for the pruning tests: digits data and a tiny CNN."""

import keras
import numpy as np
import pytest

import tfopt


@pytest.fixture(scope="session")
def digits():
    return tfopt.datasets.load_digits()


def small_cnn(seed: int = 0) -> keras.Model:
    """The tiny digits CNN the pruning tests share (8x8x1 -> 10 logits)."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv_a"),
            keras.layers.Conv2D(16, 3, activation="relu", name="conv_b"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(32, activation="relu", name="fc"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="small_cnn",
    )


def compile_for_digits(model: keras.Model, lr: float = 1e-3) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


@pytest.fixture(scope="session")
def trained_cnn(digits):
    """The small CNN after 4 epochs on digits (float baseline, ~90% test accuracy)."""
    model = compile_for_digits(small_cnn())
    model.fit(digits.x_train, digits.y_train, epochs=4, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def tfmot_reference(trained_cnn, tmp_path_factory):
    """tfmot's schedule values and masks (on trained_cnn's weights), from one subprocess."""
    from tests.pruning._pruning_reference import run_tfmot_reference

    return run_tfmot_reference(trained_cnn.get_weights(), tmp_path_factory.mktemp("tfmot"))


def masked_positions_are_zero(wrapper) -> bool:
    return all(np.all(w.numpy()[m.numpy() == 0] == 0) for w, m in wrapper.pruning_vars())
