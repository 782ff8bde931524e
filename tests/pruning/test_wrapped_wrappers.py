"""Keras's layer wrappers (Bidirectional, TimeDistributed) and pruning (issue #12).

A pruning wrapper goes outside them: prune_low_magnitude(Bidirectional(LSTM)) prunes
both directions. Inside them it cannot work (Bidirectional rebuilds its layer from a
config with go_backwards; TimeDistributed calls it once per time step), so it is
refused where the user builds it, with the route that works.
"""

import keras
import numpy as np
import pytest

from tests.pruning.conftest import masked_positions_are_zero
from tfopt import pruning
from tfopt.pruning import ConstantSparsity, PruneLowMagnitude, UpdatePruningStep


def test_bidirectional_around_a_pruning_wrapper_is_refused_with_the_route():
    with pytest.raises(ValueError) as err:
        keras.layers.Bidirectional(pruning.prune_low_magnitude(keras.layers.LSTM(16)))
    message = str(err.value)
    assert "Bidirectional" in message
    assert "prune_low_magnitude(keras.layers.Bidirectional(keras.layers.LSTM(...)))" in message


@pytest.mark.parametrize("nested", [False, True])
def test_time_distributed_around_a_pruning_wrapper_is_refused_with_the_route(nested):
    inner = pruning.prune_low_magnitude(keras.layers.Dense(4))
    if nested:  # the wrapper one level down is run once per time step all the same
        inner = keras.Sequential([inner])
    layer = keras.layers.TimeDistributed(inner, name="td")
    with pytest.raises(ValueError) as err:
        layer(keras.Input((5, 3)))
    message = str(err.value)
    assert "TimeDistributed 'td'" in message and "once per time step" in message
    assert "prune_low_magnitude(keras.layers.TimeDistributed(keras.layers.Dense(...)))" in message


def _sequence_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 3))
    lstm = keras.layers.LSTM(4, return_sequences=True, name="lstm")
    x = keras.layers.Bidirectional(lstm, name="bi")(inputs)
    x = keras.layers.TimeDistributed(keras.layers.Dense(4, name="dense"), name="td")(x)
    return keras.Model(inputs, x)


def _fit(model, steps=2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8 * steps, 5, 3)).astype("float32")
    y = rng.normal(size=(8 * steps, 5, 4)).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[UpdatePruningStep()])
    return x


def test_model_with_bidirectional_and_time_distributed_prunes_and_strips(tmp_path):
    model = _sequence_model()
    pruned = pruning.prune_low_magnitude(model, ConstantSparsity(0.5, 1, frequency=1))
    wrappers = pruning.pruning_callbacks.collect_pruning_layers(pruned)
    assert [w.layer.name for w in wrappers] == ["bi", "td"]
    x = _fit(pruned)
    bi, td = wrappers
    # Both directions: forward and backward kernel and recurrent kernel.
    assert len(bi.pruned_weights) == 4 and len(td.pruned_weights) == 1
    assert int(bi.pruning_step.numpy()) == 2 and int(td.pruning_step.numpy()) == 2
    assert masked_positions_are_zero(bi) and masked_positions_are_zero(td)
    rows = pruning.sparsity_report(pruned).rows
    assert [(r["layer"], r["weight"]) for r in rows] == [
        ("bi", "forward_lstm/lstm_cell/kernel"),
        ("bi", "forward_lstm/lstm_cell/recurrent_kernel"),
        ("bi", "backward_lstm/lstm_cell/kernel"),
        ("bi", "backward_lstm/lstm_cell/recurrent_kernel"),
        ("td", "dense/kernel"),
    ]
    assert all(r["sparsity"] == 0.5 for r in rows)  # even sizes: exactly half

    stripped = pruning.strip_pruning(pruned)
    assert [type(layer) for layer in stripped.layers[1:]] == [
        keras.layers.Bidirectional,
        keras.layers.TimeDistributed,
    ]
    np.testing.assert_allclose(np.asarray(stripped(x)), np.asarray(pruned(x)), atol=1e-6)
    assert [r["sparsity"] for r in pruning.sparsity_report(stripped).rows] == [0.5] * 5

    path = tmp_path / "pruned.keras"
    pruned.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(pruned(x)), atol=1e-6)
    assert [w.masks[0].numpy().mean() for w in
            pruning.pruning_callbacks.collect_pruning_layers(loaded)] == [0.5, 0.5]  # fmt: skip


def test_the_advised_layer_route_works():
    keras.utils.set_random_seed(0)
    layer = pruning.prune_low_magnitude(
        keras.layers.Bidirectional(keras.layers.LSTM(4)), ConstantSparsity(0.5, 1, frequency=1)
    )
    inputs = keras.Input((5, 3))
    x = layer(inputs)
    head = pruning.prune_low_magnitude(
        keras.layers.TimeDistributed(keras.layers.Dense(4)), ConstantSparsity(0.5, 1)
    )
    model = keras.Model(inputs, [x, head(inputs)])
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(16, 5, 3)).astype("float32")
    model.compile(optimizer="adam", loss=["mse", "mse"])
    model.fit(xs, [xs[:, 0, :2].repeat(4, axis=1), xs.repeat(2, axis=2)[..., :4]],
              batch_size=8, verbose=0, callbacks=[UpdatePruningStep()])  # fmt: skip
    assert isinstance(layer, PruneLowMagnitude)
    assert [float(m.numpy().mean()) for m in layer.masks] == [0.5] * 4
    assert int(head.pruning_step.numpy()) == 2
