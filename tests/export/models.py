"""Small Keras 3 models covering the layer families the exporters must handle."""

import keras
import numpy as np
from keras import layers


def _randomize_batchnorm(model, seed=0):
    """Gives BatchNormalization non-trivial statistics, as a trained model has."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.1, beta.shape).astype("float32"),
                    rng.normal(0, 0.1, mean.shape).astype("float32"),
                    rng.uniform(0.5, 1.5, var.shape).astype("float32"),
                ]
            )
    return model


def mlp():
    return keras.Sequential(
        [
            keras.Input((16,), name="features"),
            layers.Dense(32, activation="relu"),
            layers.Dense(16, activation="tanh"),
            layers.Dense(4),
        ],
        name="mlp",
    )


def cnn_bn():
    return _randomize_batchnorm(
        keras.Sequential(
            [
                keras.Input((12, 12, 3), name="image"),
                layers.Conv2D(8, 3, padding="same", use_bias=False),
                layers.BatchNormalization(),
                layers.ReLU(),
                layers.MaxPooling2D(),
                layers.Conv2D(8, 3),
                layers.BatchNormalization(),
                layers.Activation("relu"),
                layers.Flatten(),
                layers.Dense(5, activation="softmax"),
            ],
            name="cnn_bn",
        )
    )


def separable_residual():
    inputs = keras.Input((10, 10, 8), name="image")
    x = layers.DepthwiseConv2D(3, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.Conv2D(8, 1)(x)
    x = layers.Add()([x, inputs])
    x = layers.SeparableConv2D(12, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(3)(x)
    return _randomize_batchnorm(keras.Model(inputs, outputs, name="separable_residual"))


def conv1d():
    return keras.Sequential(
        [
            keras.Input((20, 4), name="signal"),
            layers.Conv1D(8, 5, padding="same", activation="relu"),
            layers.MaxPooling1D(2),
            layers.Conv1D(8, 3, activation="relu"),
            layers.GlobalAveragePooling1D(),
            layers.Dense(2),
        ],
        name="conv1d",
    )


def recurrent():
    return keras.Sequential(
        [
            keras.Input((6, 5), name="sequence"),
            layers.LSTM(8, return_sequences=True),
            layers.GRU(6),
            layers.Dense(3),
        ],
        name="recurrent",
    )


def two_inputs():
    image = keras.Input((8, 8, 1), name="image")
    meta = keras.Input((3,), name="meta")
    x = layers.Conv2D(4, 3, activation="relu")(image)
    x = layers.Flatten()(x)
    x = layers.Concatenate()([x, layers.Dense(4, activation="relu")(meta)])
    outputs = layers.Dense(4)(x)
    return keras.Model([image, meta], outputs, name="two_inputs")


def two_outputs():
    inputs = keras.Input((12,), name="features")
    x = layers.Dense(16, activation="relu")(inputs)
    label = layers.Dense(4, activation="softmax", name="label")(x)
    score = layers.Dense(1, name="score")(x)
    return keras.Model(inputs, [label, score], name="two_outputs")


class Subclassed(keras.Model):
    """A subclassed model: no functional graph, known only through its calls."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(8, activation="relu")
        self.out = layers.Dense(3)

    def build(self, input_shape):
        self.hidden.build(input_shape)
        self.out.build((input_shape[0], 8))

    def call(self, inputs):
        return self.out(self.hidden(inputs))


FACTORIES = {
    "mlp": mlp,
    "cnn_bn": cnn_bn,
    "separable_residual": separable_residual,
    "conv1d": conv1d,
    "recurrent": recurrent,
    "two_inputs": two_inputs,
    "two_outputs": two_outputs,
}


def sample_inputs(model, n=24, seed=1):
    """Standard normal inputs matching the model's inputs (a list when it has several)."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((n, *t.shape[1:])).astype("float32") for t in model.inputs]
    return arrays[0] if len(arrays) == 1 else arrays
