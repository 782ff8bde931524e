"""Distiller: training, frozen teacher, loss formula, hint losses, errors, save/load."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.distillation.helpers import CE, make_mlp, weights_of
from tfopt.distillation import (
    DistillationScheduler,
    Distiller,
    FeatureDistillation,
    SoftDistillation,
)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _compiled(teacher, student, losses="soft", **kwargs):
    distiller = Distiller(teacher, student, losses, **kwargs)
    distiller.compile(keras.optimizers.Adam(0.01), CE, metrics=["accuracy"])
    return distiller


def test_fit_trains_student_only_and_teacher_stays_inert(digits, teacher, student):
    x, y, x_test, y_test = digits
    teacher_before = weights_of(teacher)  # includes BatchNormalization moving statistics
    student_before = weights_of(student)
    distiller = _compiled(teacher, student, alpha=0.7)
    history = distiller.fit(x, y, epochs=3, batch_size=64, verbose=0)

    for before, after in zip(teacher_before, weights_of(teacher)):
        np.testing.assert_array_equal(before, after)
    assert any(not np.array_equal(b, a) for b, a in zip(student_before, weights_of(student)))
    assert {"loss", "student_loss", "distillation_loss", "accuracy"} <= set(history.history)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # The student learned the task: chance is 0.1; measured 0.48 after these 24 steps (the
    # teacher's logits are small, std ~1.6, so T=3 targets are soft and learning is gradual).
    assert distiller.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"] > 0.4
    # predict and __call__ run the student.
    np.testing.assert_allclose(
        distiller.predict(x_test[:20], verbose=0), student.predict(x_test[:20], verbose=0)
    )
    # The teacher's Dropout(0.5) is inactive even in a training-mode loss: with the student's
    # predictions fixed, two training-mode losses are equal (active dropout would differ).
    y_pred = distiller(x_test[:64], training=False)
    first = distiller.compute_loss(x_test[:64], y_test[:64], y_pred, training=True)
    second = distiller.compute_loss(x_test[:64], y_test[:64], y_pred, training=True)
    assert float(first) == float(second)


def test_loss_is_alpha_weighted_soft_plus_student_loss(digits, teacher, student):
    x, y, _, _ = digits
    xb, yb = x[:32], y[:32]
    distiller = _compiled(teacher, student, SoftDistillation(4.0), alpha=0.3)
    total = float(distiller.compute_loss(xb, yb, distiller(xb, training=False), training=False))

    t = teacher.predict(xb, verbose=0)
    s = student.predict(xb, verbose=0)
    p, q = _softmax(t / 4.0), _softmax(s / 4.0)
    soft = np.mean(np.sum(p * (np.log(p) - np.log(q)), -1)) * 16.0
    ce = -np.mean(np.log(_softmax(s))[np.arange(32), yb])
    np.testing.assert_allclose(total, 0.3 * soft + 0.7 * ce, rtol=1e-4)


def test_temperature_and_alpha_changes_apply_without_recompiling(digits, teacher, student):
    x, y, _, _ = digits
    distiller = _compiled(teacher, student, SoftDistillation(1.0), alpha=0.5)
    first = distiller.evaluate(x[:64], y[:64], verbose=0, return_dict=True)
    distiller.temperature = 8.0
    distiller.alpha = 1.0
    second = distiller.evaluate(x[:64], y[:64], verbose=0, return_dict=True)

    t = teacher.predict(x[:64], verbose=0)
    s = student.predict(x[:64], verbose=0)
    p, q = _softmax(t / 8.0), _softmax(s / 8.0)
    expected = np.mean(np.sum(p * (np.log(p) - np.log(q)), -1)) * 64.0
    np.testing.assert_allclose(second["distillation_loss"], expected, rtol=1e-4)
    np.testing.assert_allclose(second["loss"], expected, rtol=1e-4)  # alpha = 1
    assert abs(first["distillation_loss"] - second["distillation_loss"]) > 1e-3
    assert distiller.student_loss_weight == pytest.approx(0.0)


def test_keras_distillation_losses_work_unchanged(digits, teacher, student):
    x, y, _, _ = digits
    keras_loss = keras.distillation.LogitsDistillation(2.0, loss=keras.losses.KLDivergence())
    theirs = _compiled(teacher, student, keras_loss, alpha=0.5)
    ours = _compiled(teacher, student, SoftDistillation(2.0), alpha=0.5)
    y_pred = student(x[:32])
    np.testing.assert_allclose(
        float(theirs.compute_loss(x[:32], y[:32], y_pred)),
        float(ours.compute_loss(x[:32], y[:32], y_pred)),
        rtol=1e-4,
    )
    assert theirs.temperature is None  # only tfopt's SoftDistillation is schedulable


@pytest.mark.parametrize("losses", ["hard", "mse"])
def test_hard_and_mse_losses_train(digits, teacher, student, losses):
    x, y, _, _ = digits
    distiller = _compiled(teacher, student, losses, alpha=0.5)
    history = distiller.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert history.history["distillation_loss"][-1] < history.history["distillation_loss"][0]


def test_unlabeled_distillation_with_alpha_one(digits, teacher, student):
    x, _, _, _ = digits
    distiller = Distiller(teacher, student, "soft", alpha=1.0)
    distiller.compile("adam", CE)  # no metrics: there are no labels to compare with
    history = distiller.fit(x, epochs=3, batch_size=64, verbose=0)
    assert history.history["student_loss"] == [0.0, 0.0, 0.0]
    assert history.history["distillation_loss"][-1] < history.history["distillation_loss"][0]


def test_teacher_sees_the_students_augmented_batch(digits):
    """Consistent teaching: with a random pipeline the teacher runs on the student's batch."""
    x, y, _, _ = digits
    keras.utils.set_random_seed(5)
    teacher = make_mlp(16, "teacher")
    student = make_mlp(16, "student")
    student.set_weights(teacher.get_weights())  # the same function, a separate model
    noisy = (
        tf.data.Dataset.from_tensor_slices((x[:128], y[:128]))
        .shuffle(128)
        .batch(32)
        .map(lambda a, b: (a + tf.random.normal(tf.shape(a)), b))
    )
    distiller = Distiller(teacher, student, "mse", alpha=1.0)
    distiller.compile(keras.optimizers.SGD(0.0), CE)  # lr 0: the two models stay equal
    history = distiller.fit(noisy, epochs=2, verbose=0)
    # The same weights on the same (augmented) batch give the same logits: MSE 0. Had the
    # teacher seen another draw of the noise (std 1 on inputs in [0, 1]), it would be large:
    other_draw = teacher(x[:32] + np.random.default_rng(0).normal(size=(32, 64)))
    assert float(np.mean((np.array(other_draw) - np.array(student(x[:32]))) ** 2)) > 0.1
    assert history.history["distillation_loss"] == [0.0, 0.0]


def test_hint_loss_with_projection_trains_projection_in_one_student_pass(digits, teacher, student):
    x, y, _, _ = digits
    hint = FeatureDistillation(
        teacher_layer_name="teacher_hidden", student_layer_name="student_hidden", projection=True
    )
    distiller = _compiled(teacher, student, ["soft", hint], distillation_loss_weights=[1.0, 0.1])
    projection = distiller.projections["1"]
    assert projection.kernel.shape == (16, 64)  # student width 16 -> teacher width 64
    assert any(w is projection.kernel for w in distiller.trainable_weights)
    before = np.array(projection.kernel)

    calls = []
    original = distiller._extract_all_student_features
    distiller._extract_all_student_features = lambda *a: calls.append(1) or original(*a)
    distiller.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert calls == []  # features came from the student's single forward pass
    assert not np.array_equal(before, np.array(projection.kernel))
    # The projection is the Distiller's, not the student's: nothing extra to strip on export.
    assert projection.name not in [layer.name for layer in student.layers]


def test_hint_width_mismatch_without_projection_is_refused(teacher, student):
    hint = FeatureDistillation(
        teacher_layer_name="teacher_hidden", student_layer_name="student_hidden"
    )
    with pytest.raises(ValueError, match=r"\(64 features\).*\(16 features\).*projection=True"):
        Distiller(teacher, student, hint)


def test_bad_inputs_raise_clear_errors(teacher, student):
    with pytest.raises(ValueError, match="same shape.*teacher outputs.*10.*student outputs.*3"):
        inputs = keras.Input((64,))
        Distiller(teacher, keras.Model(inputs, keras.layers.Dense(3)(inputs)))
    with pytest.raises(ValueError, match=r"`temperature` must be in \(0, 10000\].*temperature=0"):
        Distiller(teacher, student, SoftDistillation(temperature=0.0))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=rf"`alpha` must be in \[0, 1\].*alpha={bad}"):
            Distiller(teacher, student, alpha=bad)
    with pytest.raises(TypeError, match="`alpha`"):
        Distiller(teacher, student, alpha=True)
    with pytest.raises(ValueError, match="same model object"):
        Distiller(teacher, teacher)
    with pytest.raises(TypeError, match="`student` must be a Keras 3"):
        Distiller(teacher, "student")
    with pytest.raises(ValueError, match="`distillation_loss_weights` must be a list of 2"):
        Distiller(teacher, student, ["soft", "hard"], distillation_loss_weights=[1.0])
    with pytest.raises(ValueError, match="`loss`.*required"):
        Distiller(teacher, student).compile("adam", loss=None)
    with pytest.raises(TypeError, match="`cache_teacher_outputs`"):
        Distiller(teacher, student, cache_teacher_outputs="yes")
    distiller = Distiller(teacher, student, "hard")
    with pytest.raises(ValueError, match="no SoftDistillation"):
        distiller.temperature = 2.0
    with pytest.raises(ValueError, match="`alpha` must be in"):
        distiller.alpha = 2.0


def test_save_load_round_trip_resumes_training(tmp_path, digits, teacher, student):
    x, y, x_test, _ = digits
    hint = FeatureDistillation(
        teacher_layer_name="teacher_hidden", student_layer_name="student_hidden", projection=True
    )
    distiller = _compiled(teacher, student, ["soft", hint], alpha=0.6)
    scheduler = DistillationScheduler(temperature=lambda e: 5.0 - e, alpha=lambda e: 0.9)
    distiller.fit(x[:256], y[:256], epochs=2, batch_size=128, verbose=0, callbacks=[scheduler])
    path = tmp_path / "distiller.keras"
    distiller.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects

    assert type(loaded) is Distiller
    np.testing.assert_allclose(
        loaded.predict(x_test, verbose=0), distiller.predict(x_test, verbose=0), atol=1e-6
    )
    assert loaded.temperature == pytest.approx(4.0)  # scheduled value at the last epoch
    assert loaded.alpha == pytest.approx(0.9)
    np.testing.assert_array_equal(
        np.array(loaded.projections["1"].kernel), np.array(distiller.projections["1"].kernel)
    )
    assert int(loaded.optimizer.iterations) == int(distiller.optimizer.iterations)
    for a, b in zip(loaded.optimizer.variables, distiller.optimizer.variables):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    assert not loaded.teacher.trainable
    loaded.fit(x[:128], y[:128], epochs=1, batch_size=128, verbose=0)  # compiled on load

    # Config round trip (no weights), and the trained student on its own.
    config = distiller.get_config()
    assert config["alpha"] == pytest.approx(0.9) and "student_loss_weight" not in config
    clone = Distiller.from_config(config)
    loss_types = [type(loss) for loss in clone.distillation_losses]
    assert loss_types == [SoftDistillation, FeatureDistillation]
    assert clone.get_config()["distillation_losses"] == config["distillation_losses"]
    student_path = tmp_path / "student.keras"
    distiller.student.save(student_path)
    np.testing.assert_allclose(
        keras.models.load_model(student_path).predict(x_test, verbose=0),
        distiller.student.predict(x_test, verbose=0),
        atol=1e-6,
    )


def test_sample_weight_reaches_the_student_loss(digits, teacher, student):
    x, y, _, _ = digits
    xb, yb = x[:16], y[:16]
    distiller = _compiled(teacher, student, alpha=0.0)
    y_pred = distiller(xb, training=False)
    weights = np.zeros(16, "float32")
    weights[:8] = 2.0
    weighted = float(distiller.compute_loss(xb, yb, y_pred, sample_weight=weights))
    ce = keras.losses.sparse_categorical_crossentropy(yb, y_pred, from_logits=True)
    np.testing.assert_allclose(weighted, float(np.sum(np.array(ce)[:8] * 2.0) / 16), rtol=1e-5)


def test_student_regularization_losses_are_added(teacher, digits):
    x, y, _, _ = digits
    inputs = keras.Input((64,))
    outputs = keras.layers.Dense(10, kernel_regularizer=keras.regularizers.L2(10.0))(inputs)
    student = keras.Model(inputs, outputs)
    distiller = _compiled(teacher, student, alpha=0.0)
    y_pred = distiller(x[:16], training=False)
    total = float(distiller.compute_loss(x[:16], y[:16], y_pred))
    ce = keras.losses.sparse_categorical_crossentropy(y[:16], y_pred, from_logits=True)
    ce = float(np.mean(ce))
    penalty = 10.0 * float(np.sum(np.square(student.layers[-1].kernel)))
    np.testing.assert_allclose(total, ce + penalty, rtol=1e-5)


def test_scheduler_errors(digits, teacher, student):
    x, y, _, _ = digits
    with pytest.raises(ValueError, match="needs `temperature` and/or `alpha`"):
        DistillationScheduler()
    with pytest.raises(TypeError, match="`alpha` must be a callable"):
        DistillationScheduler(alpha=0.5)
    distiller = _compiled(teacher, student)
    bad = DistillationScheduler(temperature=lambda epoch: 2.0 - epoch)
    with pytest.raises(ValueError, match="At epoch 2, the temperature schedule.*temperature=0"):
        distiller.fit(x[:128], y[:128], epochs=3, batch_size=128, verbose=0, callbacks=[bad])
    plain = make_mlp(8, "plain")
    plain.compile("adam", CE)
    with pytest.raises(TypeError, match="tfopt.distillation.Distiller"):
        scheduler = DistillationScheduler(alpha=lambda e: 0.5)
        plain.fit(x[:64], y[:64], epochs=1, verbose=0, callbacks=[scheduler])
