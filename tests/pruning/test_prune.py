import warnings

import keras
import numpy as np
import pytest

from tests.pruning.conftest import compile_for_digits, small_cnn
from tfopt import pruning
from tfopt.pruning import ConstantSparsity, PruneLowMagnitude, UpdatePruningStep


def _functional_with_nested():
    keras.utils.set_random_seed(1)
    inner = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="inner_fc"),
         keras.layers.BatchNormalization(name="inner_bn")],
        name="inner",
    )  # fmt: skip
    inputs = keras.Input((6,))
    a = inner(inputs)
    b = keras.layers.Dense(8, name="side")(inputs)
    x = keras.layers.Add(name="add")([a, b])
    x = keras.layers.Dropout(0.1, name="drop")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x), name="outer")


def _wrapped_names(model):
    return sorted(w.layer.name for w in pruning.pruning_callbacks.collect_pruning_layers(model))


@pytest.mark.parametrize("build", [small_cnn, _functional_with_nested])
def test_prune_clones_and_leaves_the_model_untouched(build):
    model = build()
    before = [w.numpy().copy() for w in model.weights]
    x = np.random.default_rng(0).normal(size=(5, *model.input_shape[1:])).astype("float32")
    expected = np.asarray(model(x))
    pruned = pruning.prune_low_magnitude(model, ConstantSparsity(0.5, 0))
    assert not pruning.pruning_callbacks.collect_pruning_layers(model)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights))
    # Same weights, masks all ones before training: the same function.
    np.testing.assert_allclose(np.asarray(pruned(x)), expected, rtol=1e-6, atol=1e-6)
    kernels = [w for w in model.weights if "kernel" in w.path]
    assert len(_wrapped_names(pruned)) == len(kernels)
    # The clone owns its variables: training it cannot move the original's.
    assert not {id(v) for v in model.weights} & {id(v) for v in pruned.weights}


def test_nested_model_is_pruned_inside():
    pruned = pruning.prune_low_magnitude(_functional_with_nested(), ConstantSparsity(0.5, 0))
    assert _wrapped_names(pruned) == ["head", "inner_fc", "side"]
    inner = pruned.get_layer("inner")
    assert isinstance(inner.layers[0], PruneLowMagnitude)
    assert isinstance(inner.layers[1], keras.layers.BatchNormalization)  # passes through


def test_list_of_layers():
    wrapped = pruning.prune_low_magnitude([keras.layers.Dense(2), keras.layers.Conv2D(2, 3)])
    assert [type(w) for w in wrapped] == [PruneLowMagnitude, PruneLowMagnitude]


class _Sub(keras.Model):
    def __init__(self):
        super().__init__()
        self.fc = keras.layers.Dense(2)

    def call(self, x):
        return self.fc(x)


class _Custom(keras.layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.w


def test_subclassed_model_gets_a_message():
    model = _Sub()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match=r"subclassed.*inner layers.*prune_low_magnitude\("):
        pruning.prune_low_magnitude(model)


def test_unknown_layer_error_and_leave_dense():
    inputs = keras.Input((4,))
    x = _Custom(name="mine")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="fc")(x))
    with pytest.raises(ValueError, match=r"'mine'.*_Custom.*leave_dense=\['mine'\]"):
        pruning.prune_low_magnitude(model)
    pruned = pruning.prune_low_magnitude(model, leave_dense=["mine"])
    assert _wrapped_names(pruned) == ["fc"]
    pruned = pruning.prune_low_magnitude(model, leave_dense=[_Custom])
    assert _wrapped_names(pruned) == ["fc"]


def test_already_pruned_model_and_bad_input():
    pruned = pruning.prune_low_magnitude(small_cnn())
    with pytest.raises(ValueError, match="already pruned"):
        pruning.prune_low_magnitude(pruned)
    with pytest.raises(TypeError, match="to_prune"):
        pruning.prune_low_magnitude("model")
    with pytest.raises(ValueError, match="sparsity_m_by_n"):
        pruning.prune_low_magnitude(small_cnn(), sparsity_m_by_n=(4, 2))


def test_strip_pruning(digits):
    model = small_cnn()
    pruned = compile_for_digits(pruning.prune_low_magnitude(model, ConstantSparsity(0.7, 2)))
    pruned.fit(digits.x_train[:256], digits.y_train[:256], batch_size=32, epochs=1, verbose=0,
               callbacks=[UpdatePruningStep()])  # fmt: skip
    stripped = pruning.strip_pruning(pruned)
    assert [type(layer) for layer in stripped.layers] == [type(layer) for layer in model.layers]
    assert [layer.name for layer in stripped.layers] == [layer.name for layer in model.layers]
    assert not pruning.pruning_callbacks.collect_pruning_layers(stripped)
    x = digits.x_test[:20]
    np.testing.assert_allclose(
        np.asarray(stripped(x)), np.asarray(pruned(x)), rtol=1e-6, atol=1e-6
    )
    for layer in pruned.layers:
        if isinstance(layer, PruneLowMagnitude):
            kernel = stripped.get_layer(layer.layer.name).kernel.numpy()
            np.testing.assert_array_equal(kernel == 0, layer.masks[0].numpy() == 0)
            assert layer.masks[0].numpy().mean() < 0.35
            # Pruned zeros are +0.0, in the training weights and after strip: -0.0 (what
            # w * mask gives for negative w) differs in its bytes and costs gzip size.
            assert not np.signbit(kernel[kernel == 0]).any()
            inner = layer.layer.kernel.numpy()
            assert (inner == 0).sum() >= (layer.masks[0].numpy() == 0).sum()
            assert not np.signbit(inner[inner == 0]).any()
    report = pruning.sparsity_report(stripped)
    # 0.7 of each kernel: round-half-even counts (72*0.3=21.6 -> 22 kept of conv_a's 72, ...)
    assert [round(r["sparsity"], 2) for r in report.rows] == [0.69, 0.7, 0.7, 0.7]
    with pytest.raises(ValueError, match="no pruning to strip"):
        pruning.strip_pruning(stripped)
    with pytest.raises(TypeError, match="model"):
        pruning.strip_pruning("pruned")


def test_sparsity_report_counts_and_table():
    model = small_cnn()
    kernel = model.get_layer("fc").kernel
    values = kernel.numpy()
    values[:, ::2] = 0.0  # half the columns -> 50% zeros, and 2:4 along the input axis fails
    kernel.assign(values)
    report = pruning.sparsity_report(model, m_by_n=(2, 4))
    row = next(r for r in report.rows if r["layer"] == "fc")
    assert row["size"] == 256 * 32 and row["zeros"] == 256 * 16 and row["sparsity"] == 0.5
    assert row["m_by_n_conformance"] == 0.5  # zero columns: half the groups of 4 are all zero
    data = report.to_dict()
    assert data["total"]["size"] == sum(r["size"] for r in data["layers"])
    table = report.table()
    assert "fc" in table and "50.0%" in table and "2:4 50%" in table


def test_sequence_model_with_embedding_attention_and_rnns():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(30, 8, name="emb")(tokens)
    x = keras.layers.MultiHeadAttention(2, 4, name="mha")(x, x)
    x = keras.layers.LSTM(8, return_sequences=True, name="lstm")(x)
    x = keras.layers.GRU(8, name="gru")(x)
    model = keras.Model(tokens, keras.layers.Dense(3, name="out")(x))
    pruned = pruning.prune_low_magnitude(model, ConstantSparsity(0.5, 1, frequency=2))
    pruned.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 30, (32, 6)), rng.integers(0, 3, (32,))
    pruned.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[UpdatePruningStep()])
    report = pruning.sparsity_report(pruned)
    labels = [(r["layer"], r["weight"]) for r in report.rows]
    assert labels == [
        ("emb", "embeddings"),
        ("mha", "query/kernel"),
        ("mha", "key/kernel"),
        ("mha", "value/kernel"),
        ("mha", "attention_output/kernel"),
        ("lstm", "lstm_cell/kernel"),
        ("lstm", "lstm_cell/recurrent_kernel"),
        ("gru", "gru_cell/kernel"),
        ("gru", "gru_cell/recurrent_kernel"),
        ("out", "kernel"),
    ]
    assert all(r["sparsity"] == 0.5 for r in report.rows)  # even sizes: exactly half
    stripped = pruning.strip_pruning(pruned)
    np.testing.assert_allclose(np.asarray(stripped(x[:4])), np.asarray(pruned(x[:4])), atol=1e-6)


class _SubWithPruning(keras.Model):
    """What the subclassed-model message tells users to write."""

    def __init__(self):
        super().__init__()
        self.fc = pruning.prune_low_magnitude(keras.layers.Dense(4), ConstantSparsity(0.5, 1))
        self.out = keras.layers.Dense(2)

    def call(self, x, training=None):  # Keras passes `training` on only if call takes it
        return self.out(self.fc(x, training=training))


def test_inner_layers_of_a_subclassed_model_prune():
    model = _SubWithPruning()
    model.compile(optimizer="adam", loss="mse", run_eagerly=True)
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    model.fit(x, x[:, :2], batch_size=8, epochs=1, verbose=0, callbacks=[UpdatePruningStep()])
    rows = pruning.sparsity_report(model).rows
    # The wrapped Dense (24 weights -> 12 zeros), then the plain output Dense.
    assert [r["sparsity"] for r in rows] == [0.5, 0.0]
    assert int(model.fc.pruning_step.numpy()) == 2
    with pytest.raises(ValueError, match="subclassed"):
        pruning.strip_pruning(model)


def test_registration_and_leave_dense_mistakes_are_caught():
    """A typo in leave_dense would prune the layer meant to stay dense; a bad registration
    used to fail deep inside fit or prune nothing."""
    import tfopt

    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(4, name="hidden"),
            keras.layers.Dense(2, name="head"),
        ]
    )
    with pytest.raises(ValueError, match=r"names 'haed', which is no layer"):
        tfopt.pruning.prune_low_magnitude(model, leave_dense=["haed"])
    with pytest.raises(TypeError, match="must be a list of layer names"):
        tfopt.pruning.prune_low_magnitude(model, leave_dense="head")
    with pytest.raises(ValueError, match="class Conv2D, of which"):
        tfopt.pruning.prune_low_magnitude(model, leave_dense=[keras.layers.Conv2D])
    pruned = tfopt.pruning.prune_low_magnitude(model, leave_dense=["head"])
    assert type(pruned.get_layer("head")) is keras.layers.Dense

    class Gated(keras.layers.Dense):
        pass

    for bad in ("kernel", None, 3, [("kernel", -2, 0)], [("kernel", "last")]):
        with pytest.raises(TypeError, match="Argument `weights` must"):
            tfopt.pruning.register_prunable(Gated, bad)
    tfopt.pruning.register_prunable(Gated, {"kernel": -1})
    try:
        from tfopt.pruning import prune_registry

        layer = Gated(3)
        layer.build((None, 5))
        assert prune_registry.prunable_weights(layer)[0][1] == -1  # the dict's axis is kept
        tfopt.pruning.register_prunable(Gated, [("gate", -2)], override=True)
        with pytest.raises(ValueError, match=r"no weight variable at 'gate'"):
            prune_registry.prunable_weights(layer)
        tfopt.pruning.register_prunable(Gated, [("kernel", 5)], override=True)
        with pytest.raises(ValueError, match="m:n axis 5, outside its 2 axes"):
            prune_registry.prunable_weights(layer)
    finally:
        tfopt.pruning.unregister_prunable(Gated)
    with pytest.raises(TypeError, match="layer_class"):
        tfopt.pruning.unregister_prunable("Gated")


def test_model_with_a_masking_embedding_prunes_and_strips():
    """Embedding(mask_zero=True) puts a keras.ops node (NotEqual) in the functional graph;
    cloning passed it to the layer logic and failed with a raw AttributeError."""
    keras.utils.set_random_seed(0)
    tokens = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(20, 8, mask_zero=True, name="emb")(tokens)
    x = keras.layers.LSTM(8, name="lstm")(x)
    model = keras.Model(tokens, keras.layers.Dense(2, name="out")(x))
    x = np.array([[3, 4, 5, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "will therefore destroy the mask information"
        pruned = pruning.prune_low_magnitude(model, ConstantSparsity(0.5, 0))
        pruned(x)
    assert _wrapped_names(pruned) == ["emb", "lstm", "out"]
    np.testing.assert_allclose(np.asarray(pruned(x)), np.asarray(model(x)), atol=1e-6)
    stripped = pruning.strip_pruning(pruned)
    assert [type(op).__name__ for op in stripped.operations] == [
        type(op).__name__ for op in model.operations
    ]
    np.testing.assert_allclose(np.asarray(stripped(x)), np.asarray(model(x)), atol=1e-6)
