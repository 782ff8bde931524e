import keras
import numpy as np
import pytest

from tests.quantization import helpers
from tfopt import quantization as tq

L = keras.layers


def _by_name(model):
    return {layer.name: layer for layer in model.layers}


def test_structure_of_quantized_cnn(float_cnn):
    qat = tq.quantize_model(float_cnn)
    layers = _by_name(qat)
    kinds = [type(layer).__name__ for layer in qat.layers]
    assert kinds.count("QuantizeLayer") == 1  # the input is quantized once
    assert "BatchNormalization" not in kinds  # folded into the conv
    conv = layers["quant_conv"]
    assert conv.batchnorm is not None
    assert conv._output_quantizers == []  # ReLU follows: no fake-quant between them
    assert len(layers["quant_relu"]._output_quantizers) == 1
    assert layers["quant_dw"]._output_quantizers == []
    # Both Concatenate inputs share the concat's scale: no quantizer of their own.
    assert layers["quant_left"]._output_quantizers == []
    assert layers["quant_right"]._output_quantizers == []
    assert len(layers["quant_concat"]._output_quantizers) == 1
    # Per-channel conv / depthwise weights, per-tensor Dense weights ("tflite" preset).
    assert conv._weight_quantizers[0][1].per_axis
    assert layers["quant_dw"]._weight_vars[0]["min"].shape == (8,)
    assert not layers["quant_logits"]._weight_quantizers[0][1].per_axis
    assert isinstance(layers["maxpool"], L.MaxPooling2D)  # passthrough, same scale


def test_original_model_untouched(float_cnn, data):
    before = [w.copy() for w in float_cnn.get_weights()]
    qat = tq.quantize_model(float_cnn)
    qat(data.x_test[:8], training=True)
    for a, b in zip(before, float_cnn.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_qat_model_tracks_float_model(float_cnn, data):
    """With ranges observed, the 8-bit QAT model computes nearly what the float model does."""
    qat = tq.quantize_model(float_cnn)
    for start in range(0, 512, 64):  # observe ranges; BN moving stats move a little
        qat(data.x_train[start : start + 64], training=True)
    ref = float_cnn.predict(data.x_test, verbose=0)
    got = qat.predict(data.x_test, verbose=0)
    # 8-bit rounding through 6 quantized layers: argmax agreement, not bit equality.
    assert np.mean(ref.argmax(1) == got.argmax(1)) >= 0.95


def test_sequential_and_tensorrt_preset():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            L.Dense(8, activation="relu", name="hidden"),
            L.Dense(3, activation="softmax", name="probs"),
        ]
    )
    qat = tq.quantize_model(model, config="tensorrt")
    dense = _by_name(qat)["quant_hidden"]
    assert dense._weight_quantizers[0][1].per_axis  # per-channel Dense under "tensorrt"
    out = _by_name(qat)["quant_probs"]
    assert out._pre_quantizer is not None  # softmax: quantized before and after
    assert out._output_quantizers[0].symmetric


def test_quantize_twice_raises(float_cnn):
    qat = tq.quantize_model(float_cnn)
    with pytest.raises(ValueError, match="already quantized"):
        tq.quantize_model(qat)


class _Doubling(L.Layer):
    """A layer tfopt knows nothing about (LSTM used to be the example: it now takes
    the hybrid route)."""

    def call(self, x):
        return x * 2.0


def test_unsupported_layer_names_it_and_shows_how_to_leave_it_float():
    inp = keras.Input((4, 3))
    x = _Doubling(name="my_layer")(inp)
    model = keras.Model(inp, L.Dense(2)(x))
    with pytest.raises(ValueError, match=r"'my_layer' \(_Doubling\) is not supported") as err:
        tq.quantize_model(model)
    assert "quantize_annotate_layer" in str(err.value)


def test_subclassed_and_unbuilt_and_wrong_types():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(2)

        def call(self, x):
            return self.d(x)

    net = Net()
    net(np.zeros((1, 3), np.float32))
    with pytest.raises(TypeError, match="subclassed model"):
        tq.quantize_model(net)
    with pytest.raises(ValueError, match="no input shape"):
        tq.quantize_model(keras.Sequential([L.Dense(2)]))
    with pytest.raises(TypeError, match="Received: to_quantize of type Dense"):
        tq.quantize_model(L.Dense(2))


def test_bn_folding_matches_float_bn_at_inference():
    """Folded conv+BN with 8-bit weights equals conv -> BN in float up to weight rounding."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((6, 6, 2))
    x = L.Conv2D(4, 3, use_bias=True, name="conv")(inp)
    x = L.BatchNormalization()(x)
    model = keras.Model(inp, L.ReLU(name="relu")(x))
    bn = model.layers[2]
    bn.set_weights(
        [
            np.array(w, np.float32)
            for w in ([1.5, 0.5, 2, 1], [0.1, -0.2, 0, 0.3], [0.2, -0.1, 0.05, 0], [4, 0.25, 1, 9])
        ]
    )
    qat = tq.quantize_model(model)
    wrapper = _by_name(qat)["quant_conv"]
    wrapper.bn_frozen.assign(1.0)  # keep the moving statistics as set
    x = np.random.default_rng(0).normal(size=(16, 6, 6, 2)).astype(np.float32)
    qat(x, training=True)
    np.testing.assert_array_equal(wrapper.batchnorm.moving_variance.numpy(), [4, 0.25, 1, 9])
    got = np.asarray(qat(x, training=False))
    ref = np.asarray(model(x, training=False))
    # Error sources: 8-bit weights (relative 1/254 of each channel's max) and the
    # output's 8-bit step; both bound the error by a few output steps.
    step = float(_by_name(qat)["quant_relu"]._output_vars[0]["max"].numpy()) / 255
    assert np.abs(got - ref).max() < 4 * step


def test_preserve_sparsity_keeps_pruned_zeros(data):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(8, 3, activation="relu", name="c"),
            L.Flatten(),
            L.Dense(10, name="d"),
        ]
    )
    pruned = {}
    for layer in (model.layers[0], model.layers[2]):
        kernel = layer.kernel.numpy()
        kernel[np.abs(kernel) < np.quantile(np.abs(kernel), 0.6)] = 0.0  # ~60% pruned
        layer.kernel.assign(kernel)
        pruned[f"quant_{layer.name}"] = kernel == 0.0
    qat = tq.quantize_model(model, preserve_sparsity=True)
    helpers.compile_fit(qat, data, epochs=1)
    for name, zeros in pruned.items():
        (entry,) = _by_name(qat)[name].quantized_weights()
        assert np.all(entry["value"][zeros] == 0.0), name
    plain = helpers.compile_fit(tq.quantize_model(model), data, epochs=1)
    (entry,) = _by_name(plain)["quant_d"].quantized_weights()
    # Without it, training moves most pruned weights off zero.
    assert np.mean(entry["value"][pruned["quant_d"]] == 0.0) < 0.5


def test_quantize_apply_preserves_sparsity_of_annotated_layers(data):
    keras.utils.set_random_seed(0)
    dense = L.Dense(10, name="d")
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), L.Flatten(), tq.quantize_annotate_layer(dense)]
    )
    kernel = dense.kernel.numpy()
    kernel[np.abs(kernel) < np.quantile(np.abs(kernel), 0.6)] = 0.0
    dense.kernel.assign(kernel)
    qat = tq.quantize_apply(model, preserve_sparsity=True)
    helpers.compile_fit(qat, data, epochs=1)
    (entry,) = _by_name(qat)["quant_d"].quantized_weights()
    assert np.all(entry["value"][kernel == 0.0] == 0.0)
    assert np.mean(entry["value"][kernel != 0.0] != 0.0) > 0.9  # the rest still trains


@keras.saving.register_keras_serializable(package="tfopt_tests")
class _Scale(keras.layers.Layer):
    """A custom layer the built-in table does not know: y = x * w (per feature)."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return x * self.w


@keras.saving.register_keras_serializable(package="tfopt_tests")
class _ScaleConfig(tq.QuantizeConfig):
    def get_weights_and_quantizers(self, layer):
        return [(layer.w, tq.LastValueQuantizer(num_bits=4, symmetric=True, narrow_range=True))]

    def get_output_quantizers(self, layer):
        return [tq.MovingAverageQuantizer()]

    def get_config(self):
        return {}


def test_custom_layer_with_quantize_config(tmp_path):
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    x = tq.quantize_annotate_layer(_Scale(name="scale"), quantize_config=_ScaleConfig())(inp)
    model = keras.Model(inp, L.Dense(2, name="out")(x))
    model.layers[1].layer.w.assign(np.array([0.3, -1.0, 0.55, 2.0], np.float32))
    qat = tq.quantize_apply(model)
    wrapper = _by_name(qat)["quant_scale"]
    assert isinstance(wrapper, tq.QuantizeWrapper) and isinstance(_by_name(qat)["out"], L.Dense)
    x = np.ones((1, 4), np.float32)
    qat(x, training=True)
    (entry,) = wrapper.quantized_weights()
    # 4-bit narrow symmetric on max |w| = 2: step 2/7, so w snaps to multiples of 2/7.
    np.testing.assert_allclose(
        entry["value"], np.round(entry["value"] / (2 / 7)) * (2 / 7), atol=1e-6
    )
    assert np.abs(entry["value"] - [0.3, -1.0, 0.55, 2.0]).max() <= 1 / 7 + 1e-6
    qat.save(tmp_path / "custom.keras")
    loaded = keras.saving.load_model(tmp_path / "custom.keras")
    np.testing.assert_array_equal(loaded(x), qat(x))


def test_inference_bias_on_the_int32_grid_of_the_kernels(qat_cnn, tmp_path):
    """At inference the (folded) bias is rounded to the int32 grid TFLite and ONNX
    Runtime store it on: step = input scale x weight scale, per output channel."""
    qat_cnn.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")  # the links are rebuilt on load
    for model in (qat_cnn, loaded):
        layers = _by_name(model)
        relu = layers["quant_relu"]  # the conv's folded output, quantized after the ReLU
        dw = layers["quant_dw"]  # its input is that ReLU's output
        _, qvars = dw._input_source
        assert qvars is relu._output_vars[0]
        s_in = (qvars["max"].numpy() - qvars["min"].numpy()) / 255
        wv = dw._weight_vars[0]
        s_w = (wv["max"].numpy() - wv["min"].numpy()) / 254  # narrow range
        grid = np.asarray(dw._bias_grid())
        np.testing.assert_allclose(grid, s_in * s_w, rtol=1e-5)
        conv = layers["quant_conv"]  # input: the quantized model input
        bias = conv.quantized_weights()[0]["folded_bias"] / np.asarray(conv._bias_grid())
        np.testing.assert_allclose(bias, np.round(bias), atol=1e-3)
