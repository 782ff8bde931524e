import keras
import numpy as np
import pytest
import tensorflow as tf

import tfopt
from tfopt.quantization import LastValueQuantizer, MovingAverageQuantizer


class _Holder(keras.layers.Layer):
    pass


def _vars(quantizer, shape):
    holder = _Holder()
    return quantizer.build(shape, "w", holder)


ON, OFF = tf.constant(1.0), tf.constant(0.0)


@pytest.mark.parametrize(
    "quantizer",
    [
        LastValueQuantizer(4, per_axis=True),
        MovingAverageQuantizer(8, symmetric=True, ema_decay=0.9),
    ],
)
def test_round_trip(quantizer):
    config = keras.saving.serialize_keras_object(quantizer)
    assert keras.saving.deserialize_keras_object(config) == quantizer


def test_last_value_per_channel_symmetric_ranges():
    w = np.array([[0.5, -2.0], [-1.0, 1.0]], np.float32)
    q = LastValueQuantizer(8, per_axis=True, symmetric=True, narrow_range=True)
    v = _vars(q, w.shape)
    out = q(tf.constant(w), True, v, quantize_active=ON, ranges_frozen=OFF).numpy()
    np.testing.assert_array_equal(v["max"].numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(v["min"].numpy(), [-1.0, -2.0])
    # Narrow range 8 bits: step = max / 127 per channel, so each value is on that grid.
    steps = out / (np.array([1.0, 2.0]) / 127)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)
    assert np.abs(out - w).max() <= 2.0 / 127 / 2 + 1e-7


def test_moving_average_first_batch_then_ema_then_frozen():
    q = MovingAverageQuantizer(8, ema_decay=0.5)
    v = _vars(q, ())
    q(tf.constant([-1.0, 3.0]), True, v, quantize_active=ON, ranges_frozen=OFF)
    assert (v["min"].numpy(), v["max"].numpy(), v["count"].numpy()) == (-1.0, 3.0, 1.0)
    # Second batch: decay min(0.5, (1 + 1) / (10 + 1)) = 2/11 (TF's ExponentialMovingAverage
    # with num_updates); its min is clipped to 0.
    q(tf.constant([1.0, 5.0]), True, v, quantize_active=ON, ranges_frozen=OFF)
    d = 2.0 / 11.0
    np.testing.assert_allclose(
        [v["min"].numpy(), v["max"].numpy()], [d * -1.0, d * 3.0 + (1 - d) * 5.0], rtol=1e-6
    )
    assert v["count"].numpy() == 2.0
    before = (v["min"].numpy(), v["max"].numpy())
    q(tf.constant([-9.0, 9.0]), True, v, quantize_active=ON, ranges_frozen=ON)  # frozen: no change
    np.testing.assert_allclose((v["min"].numpy(), v["max"].numpy()), before, rtol=1e-6)
    assert v["count"].numpy() == 2.0


def test_moving_average_decay_reaches_ema_decay():
    # The warm-up decay (1 + n) / (10 + n) passes 0.9 at n = 80 batches.
    q = MovingAverageQuantizer(8, ema_decay=0.9)
    v = _vars(q, ())
    for _ in range(100):
        q(tf.constant([0.0, 1.0]), True, v, quantize_active=ON, ranges_frozen=OFF)
    q(tf.constant([0.0, 11.0]), True, v, quantize_active=ON, ranges_frozen=OFF)
    np.testing.assert_allclose(v["max"].numpy(), 0.9 * 1.0 + 0.1 * 11.0, rtol=1e-6)


def test_predict_before_any_training_step_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    qat = tfopt.quantization.quantize_model(model)
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="never observed.*Train the QAT model"):
        qat.predict(x, verbose=0)
    with pytest.raises(ValueError, match="never observed"):
        qat(x)
    qat.compile("adam", "mse")
    qat.fit(x, np.ones((3, 2)), verbose=0)
    assert np.any(qat.predict(x, verbose=0) != 0)


@pytest.mark.parametrize("symmetric", [False, True])
def test_relu_output_shortcut_matches_the_general_update(symmetric):
    # QuantizeWrapper marks the quantizer of a ReLU output `_nonnegative`: the train
    # step then skips the range's low end, with the same ranges, counts and outputs.
    rng = np.random.default_rng(0)
    general, shortcut = (
        MovingAverageQuantizer(8, symmetric=symmetric, ema_decay=0.9) for _ in "ab"
    )
    shortcut._nonnegative = True
    vg, vs = _vars(general, ()), _vars(shortcut, ())
    batches = [np.zeros(6, np.float32)] + [
        np.maximum(rng.normal(size=6), 0).astype(np.float32) for _ in range(4)
    ]
    for i, batch in enumerate(batches):
        frozen = ON if i == 4 else OFF
        out_g = general(
            tf.constant(batch), True, vg, quantize_active=ON, ranges_frozen=frozen
        ).numpy()
        out_s = shortcut(
            tf.constant(batch), True, vs, quantize_active=ON, ranges_frozen=frozen
        ).numpy()
        np.testing.assert_array_equal(out_s, out_g)
        for key in ("min", "max", "count"):
            assert vs[key].numpy() == vg[key].numpy(), (i, key)
    assert vs["count"].numpy() == 4.0 and vs["max"].numpy() > 0  # all-zero batch: no range yet


def test_inactive_is_identity_but_observes():
    q = MovingAverageQuantizer(8)
    v = _vars(q, ())
    x = tf.constant([0.123, 0.777, -0.3])
    out = q(x, True, v, quantize_active=OFF, ranges_frozen=OFF)
    np.testing.assert_array_equal(out.numpy(), x.numpy())
    assert v["count"].numpy() == 1.0
    quantized = q(x, False, v, quantize_active=ON, ranges_frozen=OFF).numpy()
    assert not np.array_equal(quantized, x.numpy())


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_bits=9"):
        LastValueQuantizer(9)
    # Activations also take 16 bits (TFLite's 16x8 mode), nothing in between.
    with pytest.raises(ValueError, match=r"from 2 to 8, or 16\. Received: num_bits=12"):
        MovingAverageQuantizer(12)
    with pytest.raises(ValueError, match="per_axis=True"):
        MovingAverageQuantizer(per_axis=True)
