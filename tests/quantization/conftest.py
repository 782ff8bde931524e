"""Session fixtures of the QAT tests: one float digits CNN and its one-epoch QAT model."""

import keras
import pytest

from tests.quantization import helpers
from tfopt import quantization as tq


@pytest.fixture(scope="session")
def data():
    return helpers.digits()


@pytest.fixture(scope="session")
def float_cnn(data):
    keras.utils.set_random_seed(0)
    return helpers.compile_fit(helpers.small_cnn(), data, epochs=3)


@pytest.fixture(scope="session")
def qat_cnn(float_cnn, data):
    keras.utils.set_random_seed(1)
    return helpers.compile_fit(tq.quantize_model(float_cnn), data, epochs=1, lr=3e-4)
