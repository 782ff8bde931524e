import keras
import numpy as np
import pytest

from tests.pruning.conftest import masked_positions_are_zero, small_cnn
from tfopt import pruning
from tfopt.pruning import ConstantSparsity, PruneLowMagnitude, UpdatePruningStep


def _pruned_dense_model(schedule, run_eagerly=False, **kwargs):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,))
    hidden = PruneLowMagnitude(keras.layers.Dense(12, activation="relu"), schedule, **kwargs)
    out = keras.layers.Dense(3)(hidden(inputs))
    model = keras.Model(inputs, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", run_eagerly=run_eagerly)
    return model, hidden


def _data(n=64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 16)).astype("float32"), rng.normal(size=(n, 3)).astype("float32")


class _ZeroCheck(keras.callbacks.Callback):
    """After every batch: pruned positions hold exactly 0."""

    def __init__(self, wrapper):
        super().__init__()
        self.wrapper, self.checked, self.ok = wrapper, 0, True

    def on_train_batch_end(self, batch, logs=None):
        self.checked += 1
        self.ok &= masked_positions_are_zero(self.wrapper)


def test_pruned_weights_stay_exactly_zero_after_every_update():
    # Prune at steps 1, 4, 7, ... (begin 1, frequency 3) with Adam moving every weight.
    model, wrapper = _pruned_dense_model(ConstantSparsity(0.75, begin_step=1, frequency=3))
    check = _ZeroCheck(wrapper)
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[UpdatePruningStep(), check])
    assert check.checked == 16 and check.ok
    kernel = wrapper.layer.kernel.numpy()
    # 16 * 12 = 192 weights, 75% pruned -> 48 kept (the reference count of tfmot's rule).
    assert int(np.count_nonzero(kernel)) == 48
    assert int(wrapper.pruning_step.numpy()) == 16  # one per batch, first batch is step 1


def test_training_without_callback_says_to_add_it():
    model, wrapper = _pruned_dense_model(ConstantSparsity(0.5, 1))
    x, y = _data()
    for _ in range(2):  # a failed run leaves the step alone, so the next fails too
        with pytest.raises(ValueError, match="UpdatePruningStep"):
            model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        assert int(wrapper.pruning_step.numpy()) == -1
    # Then adding the callback to the same compiled model works.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[UpdatePruningStep()])
    assert int(wrapper.pruning_step.numpy()) == 8 and wrapper.masks[0].numpy().mean() == 0.5


def test_inference_does_not_touch_the_step_or_masks():
    model, wrapper = _pruned_dense_model(ConstantSparsity(0.5, 0, frequency=1))
    x, _ = _data()
    model.predict(x, verbose=0)
    assert int(wrapper.pruning_step.numpy()) == -1
    assert all(np.all(m.numpy() == 1) for m in wrapper.masks)


def test_block_and_m_by_n_and_random_masks_in_training():
    x, y = _data()
    for kwargs, check in [
        ({"block_size": (4, 3)}, "block"),
        ({"sparsity_m_by_n": (2, 4)}, "m_by_n"),
        ({"mask_type": "random", "seed": 3}, "random"),
    ]:
        # Eager: the mask rules are the same code as in graph mode, and eager is faster here.
        model, wrapper = _pruned_dense_model(
            ConstantSparsity(0.5, 0, frequency=2), run_eagerly=True, **kwargs
        )
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[UpdatePruningStep()])
        mask = wrapper.masks[0].numpy()
        assert masked_positions_are_zero(wrapper)
        if check == "block":  # 16x12 in 4x3 blocks: each block all kept or all pruned
            blocks = mask.reshape(4, 4, 4, 3).transpose(0, 2, 1, 3).reshape(16, 12)
            assert set(blocks.mean(axis=1).tolist()) <= {0.0, 1.0}
            assert mask.mean() == 0.5
        elif check == "m_by_n":  # 2 of every 4 along the input axis (axis 0 of the kernel)
            assert np.all(mask.T.reshape(-1, 4).sum(axis=1) == 2)
        else:  # ranked by the fixed random scores, not by magnitude
            scores = wrapper.scores[0].numpy()
            assert scores[mask == 1].min() > scores[mask == 0].max()
            assert mask.mean() == 0.5


def test_get_config_round_trip():
    wrapper = PruneLowMagnitude(
        keras.layers.Dense(4, name="d"),
        pruning_schedule=pruning.PolynomialDecay(0.1, 0.7, 0, 50, frequency=5),
        sparsity_m_by_n=(2, 4),
        name="pruned_d",
    )
    config = wrapper.get_config()
    again = PruneLowMagnitude.from_config(config)
    assert again.get_config() == config
    assert again.pruning_schedule == wrapper.pruning_schedule
    assert again.sparsity_m_by_n == (2, 4) and again.layer.name == "d"


class _Scale(keras.layers.Layer, pruning.PrunableLayer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")
        self.b = self.add_weight(shape=(), initializer="zeros", name="b")

    def call(self, x):
        return x * self.w + self.b

    def get_prunable_weights(self):
        return [self.w]


class _Unknown(keras.layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return x * self.w


def test_prunable_layer_and_unknown_layer():
    wrapper = PruneLowMagnitude(_Scale(), ConstantSparsity(0.5, 0))
    wrapper.build((None, 6))
    assert [w.name for w in wrapper.pruned_weights] == ["w"]
    unknown = PruneLowMagnitude(_Unknown(name="_unknown"))
    with pytest.raises(ValueError, match=r"_unknown.*_Unknown.*PrunableLayer.*leave_dense"):
        unknown.build((None, 6))
    built = _Unknown(name="_built")
    built.build((None, 6))
    with pytest.raises(ValueError, match=r"_built.*_Unknown"):
        PruneLowMagnitude(built)
    flatten = PruneLowMagnitude(keras.layers.Flatten())  # no weights: nothing to prune
    flatten.build((None, 2, 3))
    assert flatten.pruned_weights == []


@pytest.mark.parametrize(
    ("layer", "input_shape", "expected"),
    [
        (keras.layers.Conv1D(4, 3), (None, 10, 3), ["kernel"]),
        (keras.layers.Conv3D(4, 2), (None, 4, 4, 4, 2), ["kernel"]),
        (keras.layers.Conv2DTranspose(4, 3), (None, 5, 5, 2), ["kernel"]),
        (keras.layers.DepthwiseConv2D(3), (None, 5, 5, 2), ["kernel"]),
        (
            keras.layers.SeparableConv2D(4, 3),
            (None, 5, 5, 2),
            ["depthwise_kernel", "pointwise_kernel"],
        ),
        (keras.layers.Embedding(20, 4), (None, 5), ["embeddings"]),
        (keras.layers.EinsumDense("ab,bc->ac", output_shape=4), (None, 3), ["kernel"]),
        (keras.layers.LSTM(4), (None, 5, 3), ["kernel", "recurrent_kernel"]),
        (keras.layers.GRU(4), (None, 5, 3), ["kernel", "recurrent_kernel"]),
        (keras.layers.BatchNormalization(), (None, 3), []),
    ],
)
def test_registry_prunes_the_listed_weights(layer, input_shape, expected):
    wrapper = PruneLowMagnitude(layer, ConstantSparsity(0.5, 0))
    wrapper.build(input_shape)
    assert [w.name for w in wrapper.pruned_weights] == expected
    assert len(wrapper.masks) == len(expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"sparsity_m_by_n": (4, 4)},
            r"sparsity_m_by_n.*0 < m < n.*Received: sparsity_m_by_n=\(4, 4\)",
        ),
        ({"sparsity_m_by_n": (3, 2)}, "sparsity_m_by_n"),
        ({"block_size": (0, 1)}, "block_size"),
        ({"block_pooling_type": "MEAN"}, "block_pooling_type"),
        ({"mask_type": "l1"}, "mask_type"),
        ({"block_size": (2, 2), "sparsity_m_by_n": (2, 4)}, "either"),
    ],
)
def test_bad_wrapper_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PruneLowMagnitude(keras.layers.Dense(3), ConstantSparsity(0.5, 0), **kwargs)


def test_block_size_that_does_not_fit():
    wrapper = PruneLowMagnitude(keras.layers.Conv2D(4, 3), block_size=(2, 2))
    with pytest.raises(ValueError, match=r"block_size.*does not fit.*kernel.*\(3, 3, 2, 4\)"):
        wrapper.build((None, 8, 8, 2))
    wrapper = PruneLowMagnitude(keras.layers.Dense(3), block_size=(8, 1))
    with pytest.raises(ValueError, match="block_size"):
        wrapper.build((None, 4))


def test_already_pruned_layer():
    wrapper = PruneLowMagnitude(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="already pruned"):
        PruneLowMagnitude(wrapper)


def test_tfmot_step_convention_in_a_cnn(digits):
    # tfmot counts the first batch as step 1: ConstantSparsity(begin_step=3, frequency=100)
    # prunes once, at the third batch (6 batches of 32 in 192 samples).
    # Eager: the same code as in graph mode, without a trace.
    model = pruning.prune_low_magnitude(small_cnn(), ConstantSparsity(0.6, 3))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(float(model.layers[0].masks[0].numpy().mean()))

    model.fit(digits.x_train[:192], digits.y_train[:192], batch_size=32, epochs=1, verbose=0,
              callbacks=[UpdatePruningStep(), Watch()])  # fmt: skip
    assert seen[:2] == [1.0, 1.0] and seen[2] < 1.0  # batch index 2 is step 3
    assert len(set(seen[2:])) == 1  # no pruning after step 3 (next would be 103)


def test_xla_training_and_the_missing_callback_message():
    x, y = _data()
    model, wrapper = _pruned_dense_model(ConstantSparsity(0.5, 1, frequency=2))
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    with pytest.raises(ValueError, match="UpdatePruningStep"):  # XLA drops graph asserts
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[UpdatePruningStep()])
    assert int(wrapper.pruning_step.numpy()) == 4
    assert wrapper.masks[0].numpy().mean() == 0.5 and masked_positions_are_zero(wrapper)
