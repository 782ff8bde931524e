"""Distillation losses against independent NumPy formulas, their errors and serialization."""

import keras
import numpy as np
import pytest

from tfopt.distillation import losses as L

RNG = np.random.default_rng(0)
TEACHER = RNG.normal(0, 2, (6, 5)).astype("float32")
STUDENT = RNG.normal(0, 2, (6, 5)).astype("float32")


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _kl_t2(teacher, student, t):
    p, q = _softmax(teacher / t), _softmax(student / t)
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), -1)) * t * t)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_soft_matches_numpy_kl_times_t_squared(temperature):
    value = L.SoftDistillation(temperature).compute_loss(TEACHER, STUDENT)
    np.testing.assert_allclose(float(value), _kl_t2(TEACHER, STUDENT, temperature), rtol=1e-5)


def test_soft_temperature_override_is_used():
    loss = L.SoftDistillation(1.0)
    value = loss.compute_loss(TEACHER, STUDENT, temperature=keras.Variable(3.0))
    np.testing.assert_allclose(float(value), _kl_t2(TEACHER, STUDENT, 3.0), rtol=1e-5)


def test_soft_from_probabilities_equals_from_logits():
    logits = L.SoftDistillation(2.0).compute_loss(TEACHER, STUDENT)
    probs = L.SoftDistillation(2.0, from_logits=False).compute_loss(
        _softmax(TEACHER), _softmax(STUDENT)
    )
    # log(softmax(z)) = z - logsumexp(z): a per-row shift, which softmax ignores.
    np.testing.assert_allclose(float(probs), float(logits), rtol=1e-4)


def test_soft_matches_keras_logits_distillation_with_kl_instance():
    # keras.distillation.LogitsDistillation softmaxes and scales by T^2 only when given a
    # keras.losses.KLDivergence *instance* (with the default string it uses raw logits).
    keras_value = keras.distillation.LogitsDistillation(
        temperature=3.0, loss=keras.losses.KLDivergence()
    ).compute_loss(TEACHER, STUDENT)
    ours = L.SoftDistillation(3.0).compute_loss(TEACHER, STUDENT)
    np.testing.assert_allclose(float(ours), float(keras_value), rtol=1e-4)


def test_soft_is_zero_for_identical_outputs():
    assert abs(float(L.SoftDistillation(2.0).compute_loss(TEACHER, TEACHER))) < 1e-6


def test_hard_is_cross_entropy_against_teacher_argmax():
    labels = TEACHER.argmax(-1)
    log_q = np.log(_softmax(STUDENT))
    expected = -np.mean(log_q[np.arange(len(labels)), labels])
    np.testing.assert_allclose(
        float(L.HardDistillation().compute_loss(TEACHER, STUDENT)), expected, rtol=1e-5
    )


def test_mse_is_mean_squared_difference():
    expected = np.mean((TEACHER - STUDENT) ** 2)
    np.testing.assert_allclose(
        float(L.MSEDistillation().compute_loss(TEACHER, STUDENT)), expected, rtol=1e-6
    )


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_temperature_must_be_positive(bad):
    with pytest.raises(ValueError, match=r"`temperature` must be in \(0, 10000\].*temperature="):
        L.SoftDistillation(bad)


def test_temperature_type_and_flags_are_checked():
    with pytest.raises(TypeError, match="`temperature`"):
        L.SoftDistillation("3")
    with pytest.raises(TypeError, match="`from_logits`"):
        L.HardDistillation(from_logits="yes")
    with pytest.raises(TypeError, match="`projection`"):
        L.FeatureDistillation(projection=1)


def test_get_by_name_and_errors():
    assert isinstance(L.get("soft"), L.SoftDistillation)
    assert isinstance(L.get("HARD"), L.HardDistillation)
    assert isinstance(L.get("mse"), L.MSEDistillation)
    with pytest.raises(ValueError, match="unknown loss name.*'bogus'"):
        L.get("bogus")
    with pytest.raises(TypeError, match="Received: 3"):
        L.get(3)


@pytest.mark.parametrize(
    "loss",
    [
        L.SoftDistillation(5.0, from_logits=False),
        L.HardDistillation(from_logits=False),
        L.MSEDistillation(),
        L.FeatureDistillation("mae", "t_hidden", "s_hidden", projection=True),
    ],
    ids=lambda loss: type(loss).__name__,
)
def test_losses_serialize_round_trip(loss):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    assert type(loss).from_config(loss.get_config()).get_config() == loss.get_config()
