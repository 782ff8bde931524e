"""Extension points: a tfmot-style custom QuantizeConfig and Quantizer, `register_layer`,
`register_prunable`. Each is trained and exported the way a user would."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfopt
from tests.quantization import helpers
from tfopt import quantization as tq
from tfopt.quantization import quantizers

L = keras.layers


# --- a custom quantizer and config written as tfmot's guide writes them ------------------
# (tfmot: `tfmot.quantization.keras.quantizers.Quantizer`, `...keras.QuantizeConfig`; the
# only change is the import.)


class MaxAbsQuantizer(quantizers.Quantizer):
    """Per-tensor symmetric weight quantizer: the range is max |w| of the latest step."""

    def build(self, tensor_shape, name, layer):
        return {
            "max": layer.add_weight(
                name=f"{name}_absmax", shape=(), initializer="zeros", trainable=False
            )
        }

    def __call__(self, inputs, training, weights, **kwargs):
        if training:
            weights["max"].assign(tf.reduce_max(tf.abs(inputs)))
        top = weights["max"]
        return tf.quantization.fake_quant_with_min_max_vars(
            inputs, -top, top, num_bits=8, narrow_range=True
        )

    def get_config(self):
        return {}


class MaxAbsQuantizerWithRange(MaxAbsQuantizer):
    """The same, telling tfopt its grid (what the QDQ ONNX exporter needs)."""

    num_bits, narrow_range = 8, True

    def get_range(self, weights):
        return -weights["max"], weights["max"]


class DenseQuantizeConfig(tq.QuantizeConfig):
    """tfmot's `DefaultDenseQuantizeConfig` pattern: kernel and activation quantizers."""

    def __init__(self, weight_quantizer="plain"):
        self.weight_quantizer = weight_quantizer

    def get_weights_and_quantizers(self, layer):
        cls = MaxAbsQuantizer if self.weight_quantizer == "plain" else MaxAbsQuantizerWithRange
        return [(layer.kernel, cls())]

    def get_activations_and_quantizers(self, layer):
        return [
            (
                layer.activation,
                quantizers.MovingAverageQuantizer(
                    num_bits=8, symmetric=False, narrow_range=False, per_axis=False
                ),
            )
        ]

    def set_quantize_weights(self, layer, quantize_weights):
        pass  # tfmot sets layer.kernel; tfopt substitutes the weights itself

    def set_quantize_activations(self, layer, quantize_activations):
        layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {"weight_quantizer": self.weight_quantizer}


EPOCHS = 5


def _mlp(hidden):
    return keras.Sequential([keras.Input((8, 8, 1)), L.Flatten(), hidden, L.Dense(10)])


def _custom_qat(data, weight_quantizer):
    keras.utils.set_random_seed(0)
    hidden = tq.quantize_annotate_layer(
        L.Dense(32, activation="relu"), DenseQuantizeConfig(weight_quantizer)
    )
    annotated = tq.quantize_annotate_model(_mlp(hidden))
    with tq.quantize_scope(DenseQuantizeConfig, MaxAbsQuantizer, MaxAbsQuantizerWithRange):
        qat = tq.quantize_apply(annotated)
    return helpers.compile_fit(qat, data, epochs=EPOCHS)


def test_tfmot_style_config_and_quantizer_train_and_export_fully_int8(data, tmp_path):
    qat = _custom_qat(data, "plain")
    wrapper = next(
        layer
        for layer in qat.layers
        if isinstance(getattr(layer, "quantize_config", None), DenseQuantizeConfig)
    )
    # The activation quantizer was honoured: it observed ranges in training.
    assert float(wrapper._activation_vars[0]["count"].numpy()) > 0
    assert float(wrapper._activation_vars[0]["max"].numpy()) > 0
    assert float(wrapper._weight_vars[0]["max"].numpy()) > 0
    keras.utils.set_random_seed(0)
    float_mlp = helpers.compile_fit(_mlp(L.Dense(32, activation="relu")), data, epochs=EPOCHS)
    _, float_accuracy = float_mlp.evaluate(data.x_test, data.y_test, verbose=0)
    _, accuracy = qat.evaluate(data.x_test, data.y_test, verbose=0)
    assert accuracy >= float_accuracy - 0.03, (accuracy, float_accuracy)
    result = tfopt.export.to_tflite(qat, tmp_path / "custom.tflite", verify_data=data.x_test)
    census = tfopt.export.op_census(result.path)
    assert not census.float_compute_ops(), census.table()
    fc = census.of_type("FULLY_CONNECTED")
    assert len(fc) == 2 and all(op.input_dtypes[:2] == ("int8", "int8") for op in fc)
    within, worst = helpers.parity_in_steps(result.parity, qat, data.x_test)
    assert within >= 0.999 and worst <= 2.0 + helpers.STEP_SLACK, (within, worst)
    # Without a range the QDQ exporter cannot know the int8 codes: it says so.
    with pytest.raises(ValueError, match=r"get_range.*returned None"):
        tfopt.export.to_onnx(qat, tmp_path / "custom.onnx")
    assert not (tmp_path / "custom.onnx").exists()


def test_custom_quantizer_with_a_range_exports_qdq_onnx(data, tmp_path):
    qat = _custom_qat(data, "ranged")
    result = tfopt.export.to_onnx(qat, tmp_path / "custom.onnx", verify_data=data.x_test)
    within, _ = helpers.parity_in_steps(result.parity, qat, data.x_test)
    assert within >= 0.999
    path = tmp_path / "qat.keras"
    qat.save(path)
    with tq.quantize_scope(DenseQuantizeConfig, MaxAbsQuantizer, MaxAbsQuantizerWithRange):
        loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        loaded.predict(data.x_test[:16], verbose=0), qat.predict(data.x_test[:16], verbose=0)
    )


def test_set_quantize_activations_default_and_its_error():
    config = tq.QuantizeConfig()
    dense = L.Dense(2, activation="relu")
    config.set_quantize_activations(dense, [keras.activations.tanh])
    assert dense.activation is keras.activations.tanh
    with pytest.raises(NotImplementedError, match="implement set_quantize_activations"):
        config.set_quantize_activations(dense, [keras.activations.relu] * 2)
    with pytest.raises(TypeError, match="quantize_scope"):
        tq.quantize_scope(3)


def test_quantizer_defaults_to_quantizing_without_flags():
    """tfmot calls quantizers as q(x, training, weights): quantize, update ranges."""
    layer = L.Layer()
    q = quantizers.MovingAverageQuantizer()
    weights = q.build((), "x", layer)
    q(tf.constant([-1.0, 1.0]), True, weights)
    assert float(weights["count"].numpy()) == 1.0
    assert float(weights["max"].numpy()) == 1.0
    assert q.get_range(weights)[1] is weights["max"]


# --- register_layer ---------------------------------------------------------------------


class MyConv(L.Conv2D):
    """A user's conv subclass: QAT refuses it until it is registered."""


def _my_conv_model():
    inp = keras.Input((8, 8, 1))
    x = MyConv(8, 3, padding="same", use_bias=False, name="my_conv")(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10)(x))


def test_register_layer_makes_a_custom_layer_first_class(data, tmp_path):
    with pytest.raises(ValueError, match=r"'my_conv' \(MyConv\) is not supported"):
        tq.quantize_model(_my_conv_model())
    spec = tq.LayerSpec(
        "weighted", weights={"kernel": "last"}, folds_batchnorm=True, fuses_activation=True
    )
    tq.register_layer(MyConv, spec)
    try:
        assert f"{__name__}.MyConv" in tq.supported_layers()
        keras.utils.set_random_seed(0)
        qat = tq.quantize_model(_my_conv_model())
        wrapper = qat.get_layer("quant_my_conv")
        assert wrapper.batchnorm is not None  # folded, as a built-in Conv2D would be
        assert wrapper._output_quantizers == []  # fused with the ReLU after it
        assert wrapper._weight_quantizers[0][1].per_axis
        helpers.compile_fit(qat, data, epochs=1)
        result = tfopt.export.to_tflite(qat, tmp_path / "my.tflite", verify_data=data.x_test)
        assert not tfopt.export.op_census(result.path).float_compute_ops()
        within, _ = helpers.parity_in_steps(result.parity, qat, data.x_test)
        assert within >= 0.999
        with pytest.raises(ValueError, match="registered already"):
            tq.register_layer(MyConv, spec)
        tq.register_layer(MyConv, lambda layer: None, override=True)  # a rule: "not here"
        with pytest.raises(ValueError, match="is not supported"):
            tq.quantize_model(_my_conv_model())
    finally:
        tq.unregister_layer(MyConv)
    assert f"{__name__}.MyConv" not in tq.supported_layers()


def test_register_layer_and_spec_bad_input():
    with pytest.raises(TypeError, match="layer_class"):
        tq.register_layer(int, tq.LayerSpec("output"))
    with pytest.raises(TypeError, match="spec"):
        tq.register_layer(MyConv, "weighted")
    with pytest.raises(ValueError, match="kind='fancy'"):
        tq.LayerSpec("fancy")
    with pytest.raises(ValueError, match="unknown layout 'rows'"):
        tq.LayerSpec("weighted", weights={"kernel": "rows"})
    with pytest.raises(ValueError, match="only for kind='weighted'"):
        tq.LayerSpec("output", weights={"kernel": "last"})
    # A weighted layer with nothing to quantize would stay float in an "int8" file.
    with pytest.raises(ValueError, match="at least one weight for kind='weighted'"):
        tq.LayerSpec("weighted")
    for bad in ("kernel", ["kernel"], None, {"kernel": 3}):
        with pytest.raises(TypeError, match="Argument `weights` must"):
            tq.LayerSpec("weighted", weights=bad)
    with pytest.raises(TypeError, match="`dense` must be a bool"):
        tq.LayerSpec("weighted", weights={"kernel": "last"}, dense="no")
    with pytest.raises(ValueError, match=r"`folds_batchnorm=True` applies to kind 'weighted'"):
        tq.LayerSpec("passthrough", folds_batchnorm=True)
    with pytest.raises(TypeError, match="spec"):
        tq.register_layer(MyConv, tq.LayerSpec)  # the class, not a spec
    with pytest.raises(TypeError, match="layer_class"):
        tq.unregister_layer(["MyConv"])
    tq.register_layer(MyConv, lambda layer: "weighted")
    try:
        with pytest.raises(TypeError, match="returned str, not a LayerSpec"):
            tq.spec_for(MyConv(2, 1))
    finally:
        tq.unregister_layer(MyConv)

    def exploding(layer):
        raise RuntimeError("rule exploded")

    tq.register_layer(MyConv, exploding)
    try:
        with pytest.raises(RuntimeError, match="rule exploded") as info:
            tq.spec_for(MyConv(2, 1, name="c"))
        assert "registered for MyConv" in "".join(info.value.__notes__)
    finally:
        tq.unregister_layer(MyConv)


def test_a_spec_naming_a_missing_weight_says_so():
    tq.register_layer(MyConv, tq.LayerSpec("weighted", weights={"kern": "last"}))
    try:
        with pytest.raises(ValueError, match=r"no weight variable 'kern'.*'kernel'"):
            tq.quantize_model(_my_conv_model())
    finally:
        tq.unregister_layer(MyConv)


class MyDense(L.Dense):
    """A Dense subclass a user registers (square kernels make layout mistakes silent)."""


def test_a_wrong_layout_cannot_fold_batchnorm_silently():
    """A 'transpose' layout on a square Dense kernel has the right shape and the wrong
    channel axis: folding would scale rows instead of columns. It is refused."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((16,))
    x = L.BatchNormalization()(MyDense(16)(inp))
    model = keras.Model(inp, L.Dense(4)(x))
    from tests.export.models import _randomize_batchnorm

    _randomize_batchnorm(model)
    wrong = tq.LayerSpec("weighted", weights={"kernel": "transpose"}, folds_batchnorm=True)
    tq.register_layer(MyDense, wrong)
    try:
        with pytest.raises(ValueError, match=r"layout 'transpose' of its weight 'kernel'"):
            tq.quantize_model(model)
        right = tq.LayerSpec("weighted", weights={"kernel": "last"}, dense=True,
                             folds_batchnorm=True)  # fmt: skip
        tq.register_layer(MyDense, right, override=True)
        qat = tq.quantize_model(model)
        assert qat.layers[2].batchnorm is not None  # folded, and checked
    finally:
        tq.unregister_layer(MyDense)


_RELOAD = """
import sys, numpy as np, keras, tfopt
sys.path.insert(0, sys.argv[3])
from tests.quantization import test_extension_points  # defines MyConv1D (unregistered)
model = keras.saving.load_model(sys.argv[1])
np.save(sys.argv[2], model.predict(np.load(sys.argv[2]), verbose=0))
"""


@keras.saving.register_keras_serializable(package="tests")
class MyConv1D(L.Conv1D):
    """A Conv1D subclass registered like the built-in Conv1D (run as Conv2D)."""


def test_a_saved_model_keeps_the_spec_it_was_built_with(tmp_path):
    """Loaded where MyConv1D is not registered, the model computes what it computed."""
    import os
    import subprocess
    import sys

    tq.register_layer(MyConv1D, tq.spec_for(L.Conv1D(2, 3)))
    try:
        keras.utils.set_random_seed(0)
        inp = keras.Input((12, 3))
        x = L.GlobalAveragePooling1D()(MyConv1D(4, 3, padding="causal", dilation_rate=2)(inp))
        qat = tq.quantize_model(keras.Model(inp, L.Dense(2)(x)))
        x = np.random.default_rng(0).standard_normal((16, 12, 3)).astype("float32")
        qat(x, training=True)
        expected = qat.predict(x, verbose=0)
        qat.save(tmp_path / "m.keras")
    finally:
        tq.unregister_layer(MyConv1D)
    np.save(tmp_path / "x.npy", x)
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    run = subprocess.run(
        [sys.executable, "-c", _RELOAD, str(tmp_path / "m.keras"), str(tmp_path / "x.npy"), root],
        capture_output=True, text=True, timeout=300, env=dict(os.environ),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), expected)


def test_every_builtin_spec_comes_through_register_layer():
    """The built-ins live in the public registry, in the scheme module, nowhere else."""
    from tfopt.quantization import registry

    assert len(registry._REGISTRY) == len(tq.supported_layers()) >= 30
    assert tq.spec_for(L.Conv1D(2, 3)).conv1d_as_conv2d
    assert not tq.spec_for(L.Conv1D(2, 3, data_format="channels_first")).conv1d_as_conv2d
    assert tq.spec_for(L.ReLU()).kind == "activation"
    assert tq.spec_for(L.ReLU(negative_slope=0.1)).kind == "output"
    assert tq.spec_for(L.UpSampling2D(interpolation="bilinear")).kind == "output"
    assert not tq.spec_for(L.Conv2DTranspose(2, 3)).folds_batchnorm
    assert tq.spec_for(L.Add()).fuses_activation and not tq.spec_for(L.Multiply()).fuses_activation


# --- register_prunable ------------------------------------------------------------------


class Projection(L.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 16), name="w")

    def call(self, x):
        return keras.ops.matmul(x, self.w)


def test_register_prunable_prunes_a_custom_layer():
    model = keras.Sequential([keras.Input((32,)), Projection(), L.Dense(4)])
    with pytest.raises(ValueError, match="not supported for pruning"):
        tfopt.pruning.prune_low_magnitude(model)
    tfopt.pruning.register_prunable(Projection, [("w", -2)])
    try:
        pruned = tfopt.pruning.prune_low_magnitude(
            model, pruning_schedule=tfopt.pruning.ConstantSparsity(0.75, 0, frequency=1)
        )
        pruned.compile("sgd", "mse")
        x = np.random.default_rng(0).standard_normal((64, 32)).astype("float32")
        pruned.fit(
            x,
            np.zeros((64, 4)),
            epochs=1,
            verbose=0,
            callbacks=[tfopt.pruning.UpdatePruningStep()],
        )
        report = tfopt.pruning.sparsity_report(pruned)
        projection = next(r for r in report.rows if "projection" in r["layer"])
        assert projection["sparsity"] == pytest.approx(0.75, abs=1e-3)
        with pytest.raises(ValueError, match="registered already"):
            tfopt.pruning.register_prunable(Projection, ["w"])
    finally:
        tfopt.pruning.unregister_prunable(Projection)
    with pytest.raises(TypeError, match="layer_class"):
        tfopt.pruning.register_prunable("Dense", ["kernel"])
    with pytest.raises(TypeError, match=r"\('kernel', -2\)"):
        tfopt.pruning.register_prunable(Projection, [("w", "last")])
