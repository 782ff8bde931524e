import keras
import numpy as np
import pytest

from tfopt import quantization as tq

L = keras.layers


def _model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((4, 4, 1))
    x = L.Conv2D(4, 3, use_bias=False, name="conv")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    x = L.Flatten()(x)
    qat = tq.quantize_model(keras.Model(inp, L.Dense(2, name="out")(x)))
    qat.compile("sgd", "mse")
    return qat


def _data(n=32):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4, 4, 1)).astype("float32"), rng.normal(size=(n, 2)).astype(
        "float32"
    )


def test_delay_then_freeze():
    qat = _model()
    x, y = _data()
    layers = {layer.name: layer for layer in qat.layers}
    relu, conv = layers["quant_relu"], layers["quant_conv"]
    cb = tq.QATCallback(quant_delay_steps=2, freeze_ranges_step=3, freeze_bn_step=3)
    assert cb.flags_at(0) == (0.0, 0.0, 0.0) and cb.flags_at(3) == (1.0, 1.0, 1.0)
    qat.fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)  # steps 0, 1
    assert relu.quantize_active.numpy() == 0.0
    assert relu._output_vars[0]["count"].numpy() == 2.0  # ranges observed during the delay
    qat.fit(x[:16], y[:16], batch_size=16, epochs=1, callbacks=[cb], verbose=0)  # step 2
    assert relu.quantize_active.numpy() == 1.0 and relu.ranges_frozen.numpy() == 0.0
    ranges = relu._output_vars[0]["max"].numpy()
    stats = conv.batchnorm.moving_mean.numpy().copy()
    qat.fit(x * 3, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)  # steps 3, 4: frozen
    assert relu.ranges_frozen.numpy() == 1.0 and conv.bn_frozen.numpy() == 1.0
    assert relu._output_vars[0]["max"].numpy() == ranges
    np.testing.assert_array_equal(conv.batchnorm.moving_mean.numpy(), stats)


def test_flags_switch_inside_one_fit():
    """The train step is traced with the flags' values; the callback retraces it when
    a flag changes, so a switch at step 2 of a single fit takes effect at step 2."""
    qat = _model()
    x, y = _data(64)
    x[32:] *= 10.0  # steps 2 and 3 would widen the ranges if they were not frozen
    relu = {layer.name: layer for layer in qat.layers}["quant_relu"]
    cb = tq.QATCallback(freeze_ranges_step=2)
    qat.fit(x, y, batch_size=16, epochs=1, shuffle=False, callbacks=[cb], verbose=0)
    assert qat.optimizer.iterations.numpy() == 4
    assert relu._output_vars[0]["count"].numpy() == 2.0  # observed at steps 0 and 1 only


def test_identity_during_delay():
    """With quantization off, the QAT model in training mode computes the float model."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6,)), L.Dense(5, activation="relu"), L.Dense(3), L.Activation("tanh")]
    )
    qat = tq.quantize_model(model)
    x = np.random.default_rng(1).normal(size=(8, 6)).astype("float32")
    for layer in qat.layers:
        if hasattr(layer, "quantize_active"):
            layer.quantize_active.assign(0.0)
    np.testing.assert_allclose(qat(x, training=True), model(x), rtol=1e-6, atol=1e-6)
    for layer in qat.layers:
        if hasattr(layer, "quantize_active"):
            layer.quantize_active.assign(1.0)
    assert np.abs(np.asarray(qat(x, training=True)) - np.asarray(model(x))).max() > 1e-4


def test_bad_arguments_and_round_trip():
    with pytest.raises(ValueError, match="quant_delay_steps=-1"):
        tq.QATCallback(quant_delay_steps=-1)
    with pytest.raises(ValueError, match="freeze_bn_step=1.5"):
        tq.QATCallback(freeze_bn_step=1.5)
    cb = tq.QATCallback(5, 10, None)
    assert tq.QATCallback.from_config(cb.get_config()).get_config() == cb.get_config()


def test_needs_a_qat_model():
    model = keras.Sequential([keras.Input((2,)), L.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="no quantization layers"):
        model.fit(np.zeros((4, 2)), np.zeros((4, 1)), callbacks=[tq.QATCallback()], verbose=0)


def test_student_of_a_distiller():
    """The callback finds the QAT layers of a Distiller's student (nested model)."""
    from tfopt.distillation import Distiller

    student = _model()
    keras.utils.set_random_seed(2)
    teacher = keras.Sequential([keras.Input((4, 4, 1)), L.Flatten(), L.Dense(2)])
    distiller = Distiller(teacher, student, "mse", alpha=0.5)
    distiller.compile("sgd", "mse")
    x, y = _data()
    relu = {layer.name: layer for layer in student.layers}["quant_relu"]
    cb = tq.QATCallback(quant_delay_steps=2, freeze_ranges_step=3)
    distiller.fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)  # steps 0, 1
    assert relu.quantize_active.numpy() == 0.0
    assert relu._output_vars[0]["count"].numpy() == 2.0
    distiller.fit(x, y, batch_size=16, epochs=2, callbacks=[cb], verbose=0)  # steps 2..5
    assert relu.quantize_active.numpy() == 1.0 and relu.ranges_frozen.numpy() == 1.0
    assert len(cb._layers()) == sum(hasattr(layer, "quantize_active") for layer in student.layers)
