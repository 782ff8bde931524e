"""Structured pruning that cannot apply is refused, and never reported as applied (issue #12)."""

import keras
import numpy as np
import pytest

from tfopt import pruning
from tfopt.pruning import ConstantSparsity, PruneLowMagnitude, UpdatePruningStep


def _depthwise_on_one_channel():
    """The issue's model: DepthwiseConv2D's 3x3x1x1 kernel has 1 weight on its m:n axis."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.DepthwiseConv2D(3, name="depthwise_conv2d")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="dense")(x))


def test_m_by_n_without_a_whole_group_is_refused_when_wrapping():
    model = _depthwise_on_one_channel()
    with pytest.raises(ValueError) as err:
        pruning.prune_low_magnitude(model, sparsity_m_by_n=(2, 4))
    message = str(err.value)
    for part in ("`sparsity_m_by_n`", "'depthwise_conv2d'", "(3, 3, 1, 1)", "1 weight",
                 "fewer than n=4", "leave_dense=['depthwise_conv2d']",
                 "Received: sparsity_m_by_n=(2, 4)"):  # fmt: skip
        assert part in message, (part, message)
    # What the message offers works: the layer stays a plain DepthwiseConv2D.
    pruned = pruning.prune_low_magnitude(
        model, sparsity_m_by_n=(2, 4), leave_dense=["depthwise_conv2d"]
    )
    assert type(pruned.get_layer("depthwise_conv2d")) is keras.layers.DepthwiseConv2D
    assert isinstance(pruned.get_layer("prune_low_magnitude_dense"), PruneLowMagnitude)


def test_every_misfit_layer_is_named_at_once():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((5,), dtype="int32")
    x = keras.layers.Embedding(20, 3, name="emb")(tokens)  # embeddings' m:n axis: 3 wide
    x = keras.layers.LSTM(8, name="lstm")(x)  # kernel (3, 32): 3 inputs on its m:n axis
    model = keras.Model(tokens, keras.layers.Dense(2, name="out")(x))
    with pytest.raises(ValueError, match=r"leave_dense=\['emb', 'lstm'\]"):
        pruning.prune_low_magnitude(model, sparsity_m_by_n=(2, 4))
    pruned = pruning.prune_low_magnitude(
        model, sparsity_m_by_n=(2, 4), leave_dense=["emb", "lstm"]
    )
    assert [w.layer.name for w in pruning.pruning_callbacks.collect_pruning_layers(pruned)] == [
        "out"
    ]


def test_m_by_n_misfit_of_a_lazily_built_layer_is_refused_at_build():
    conv = keras.layers.Conv2D(4, 3, name="c")
    wrapper = pruning.prune_low_magnitude(conv, sparsity_m_by_n=(2, 4))
    with pytest.raises(ValueError, match=r"'c'.*\(3, 3, 2, 4\).*2 weights.*fewer than n=4"):
        wrapper.build((None, 8, 8, 2))
    built = keras.layers.Dense(3, name="d")
    built.build((None, 3))
    with pytest.raises(ValueError, match=r"'d'.*\(3, 3\)"):
        PruneLowMagnitude(built, sparsity_m_by_n=(2, 4))
    # One whole group is enough; the partial group after it keeps at most n - m (tfmot's rule).
    ok = pruning.prune_low_magnitude(keras.layers.Dense(3), sparsity_m_by_n=(2, 4))
    ok.build((None, 6))


def test_partial_groups_match_tfmot():
    """tfmot 0.8.1, measured on tf_keras (Dense(4) under ConstantSparsity m:n (2, 4), one fit
    step): 6 inputs -> 8 zeros of 24 (a group of 4 loses 2, the trailing pair keeps both)."""
    from tfopt.pruning import masks

    w = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    mask = np.asarray(masks.m_by_n_mask(w, 2, 4, axis=-2))
    assert int((mask == 0).sum()) == 8
    assert np.all(mask[4:] == 1)


def test_report_says_n_a_for_a_weight_without_a_whole_group():
    model = _depthwise_on_one_channel()
    report = pruning.sparsity_report(model, m_by_n=(2, 4))
    rows = {r["layer"]: r for r in report.rows}
    assert rows["depthwise_conv2d"]["m_by_n"] == [2, 4]
    assert rows["depthwise_conv2d"]["m_by_n_conformance"] is None
    assert rows["dense"]["m_by_n_conformance"] == 0.0  # dense weights: no group has 2 zeros
    line = next(x for x in report.table().splitlines() if x.startswith("depthwise_conv2d"))
    assert line.endswith("2:4 n/a"), line
    assert report.to_dict()["layers"][0]["m_by_n_conformance"] is None


def test_random_m_by_n_ranks_by_the_random_scores():
    """mask_type="random" with sparsity_m_by_n used to rank by magnitude silently."""
    keras.utils.set_random_seed(0)
    wrapper = PruneLowMagnitude(
        keras.layers.Dense(6), ConstantSparsity(0.5, 0, frequency=1), sparsity_m_by_n=(2, 4),
        mask_type="random", seed=1,
    )  # fmt: skip
    model = keras.Sequential([keras.Input((8,)), wrapper])
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    x = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    model.fit(x, x[:, :6], batch_size=4, verbose=0, callbacks=[UpdatePruningStep()])
    mask, scores = wrapper.masks[0].numpy(), wrapper.scores[0].numpy()
    groups = mask.T.reshape(-1, 4)  # groups of 4 along the input axis (axis 0)
    ranked = scores.T.reshape(-1, 4)
    assert np.all(groups.sum(axis=1) == 2)
    kept = np.where(groups == 1, ranked, np.inf).min(axis=1)
    dropped = np.where(groups == 0, ranked, -np.inf).max(axis=1)
    assert np.all(kept > dropped)
