"""Pruned layers inside subclassed models: trained like any other, stripped by a route that
works (issue #12)."""

import keras
import numpy as np
import pytest

from tfopt import pruning
from tfopt.pruning import ConstantSparsity, PruneLowMagnitude, UpdatePruningStep

_SEEN = []


class _Probe(keras.layers.Layer):
    """Records the `training` value Keras gives a plain layer of the model."""

    def call(self, x, training=None):
        _SEEN.append(training)
        return x


class _NoTraining(keras.Model):
    """The issue's model: `call` takes no `training`, so Keras's fit passes none down."""

    def __init__(self, prune=True):
        super().__init__(name="no_training")
        dense = keras.layers.Dense(4, name="fc")
        schedule = ConstantSparsity(0.5, 1, frequency=1)
        self.fc = pruning.prune_low_magnitude(dense, schedule) if prune else dense
        self.probe = _Probe()
        self.head = keras.layers.Dense(2, name="head")

    def call(self, x):
        return self.head(self.probe(self.fc(x)))


class _TakesTrainingButDropsIt(_NoTraining):
    def call(self, x, training=None):  # Keras's call context carries it to the layers
        return self.head(self.probe(self.fc(x)))


class _CustomTrainStep(_NoTraining):
    """A train_step of its own that calls the model without `training`."""

    def train_step(self, data):
        import tensorflow as tf

        x, y = data
        with tf.GradientTape() as tape:
            loss = self.compute_loss(x, y, self(x))
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(grads, self.trainable_weights)
        return {"loss": loss}


def _data(n=32):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 6)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


@pytest.mark.parametrize("cls", [_NoTraining, _TakesTrainingButDropsIt, _CustomTrainStep])
def test_wrapped_layer_of_a_subclassed_model_prunes_in_fit(cls):
    keras.utils.set_random_seed(0)
    model = cls()
    model.compile(optimizer="adam", loss="mse")
    x, y = _data()
    _SEEN.clear()
    # 4 training batches of 8; validation (2 batches) must not advance the step.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, validation_data=(x[:16], y[:16]),
              callbacks=[UpdatePruningStep()])  # fmt: skip
    assert int(model.fc.pruning_step.numpy()) == 4
    kernel = model.fc.layer.kernel.numpy()
    assert (kernel == 0).mean() == 0.5  # 6x4 kernel, 12 zeros: the schedule's 0.5
    assert np.all(kernel[model.fc.masks[0].numpy() == 0] == 0)
    # Only the pruning wrapper is told it trains: the model's other layers get what Keras
    # gives them without tfopt (never True when call() takes no `training`).
    assert (True in _SEEN) == (cls is _TakesTrainingButDropsIt), _SEEN
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    model(x)
    assert int(model.fc.pruning_step.numpy()) == 4
    # A second fit goes on from where the first stopped.
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[UpdatePruningStep()])
    assert int(model.fc.pruning_step.numpy()) == 6


def test_strip_pruning_of_a_subclassed_model_gives_the_route_that_works():
    keras.utils.set_random_seed(0)
    model = _NoTraining()
    model.compile(optimizer="adam", loss="mse")
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[UpdatePruningStep()])
    with pytest.raises(ValueError) as err:
        pruning.strip_pruning(model)
    message = str(err.value)
    assert "subclassed" in message and "model.fc" in message
    assert "strip_pruning(keras.layers" not in message  # the old, impossible advice
    assert "plain.fc.set_weights(tfopt.pruning.strip_pruning(model.fc).get_weights())" in message
    assert "plain.head.set_weights(model.head.get_weights())" in message
    # The route, as the message gives it: a plain instance, then each layer's weights.
    plain = _NoTraining(prune=False)
    plain(x[:1])
    plain.fc.set_weights(pruning.strip_pruning(model.fc).get_weights())
    plain.head.set_weights(model.head.get_weights())
    assert type(plain.fc) is keras.layers.Dense
    np.testing.assert_allclose(np.asarray(plain(x)), np.asarray(model(x)), rtol=1e-6, atol=1e-6)
    rows = pruning.sparsity_report(plain).rows
    assert [(r["layer"], r["sparsity"]) for r in rows] == [("fc", 0.5), ("head", 0.0)]


class _Nested(keras.Model):
    """Wrappers one level down and in a list: the message finds their paths."""

    def __init__(self):
        super().__init__(name="nested")
        self.body = _NoTraining()
        self.extra = [pruning.prune_low_magnitude(keras.layers.Dense(6, name="e"))]

    def call(self, x):
        return self.body(self.extra[0](x))


def test_strip_message_names_nested_and_listed_wrappers():
    model = _Nested()
    model(_data(2)[0])
    with pytest.raises(ValueError, match=r"model\.body\.fc.*model\.extra\[0\]"):
        pruning.strip_pruning(model)
    assert isinstance(model.extra[0], PruneLowMagnitude)
