"""Teacher-output caching: same training as without it, teacher not run in fit, random refused."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.distillation.helpers import CE, make_mlp, weights_of
from tfopt.distillation import Distiller, FeatureDistillation


def _train(teacher, x, y, cache, losses="soft", **fit_kwargs):
    keras.utils.set_random_seed(3)
    student = make_mlp(16, "student")
    distiller = Distiller(teacher, student, losses, alpha=0.7, cache_teacher_outputs=cache)
    distiller.compile(keras.optimizers.SGD(0.1), CE, metrics=["accuracy"])
    fit_kwargs.setdefault("batch_size", 64)
    history = distiller.fit(x, y, epochs=2, verbose=0, **fit_kwargs)
    return distiller, history


def _forbid_teacher_pass(distiller):
    def fail(*args):
        raise AssertionError("the teacher ran inside fit despite cache_teacher_outputs=True")

    distiller._extract_all_teacher_features = fail


def test_cached_training_matches_uncached(digits, teacher):
    x, y, _, _ = digits
    hint = FeatureDistillation(
        teacher_layer_name="teacher_hidden", student_layer_name="student_hidden", projection=True
    )
    plain, plain_history = _train(teacher, x, y, cache=False, losses=["soft", hint])
    cached, cached_history = _train(teacher, x, y, cache=True, losses=["soft", hint])
    for a, b in zip(weights_of(plain.student), weights_of(cached.student)):
        # Same batches, same teacher numbers (predict vs. in-graph pass: float rounding only).
        np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(
        cached_history.history["accuracy"], plain_history.history["accuracy"], atol=1e-6
    )


def test_cache_means_no_teacher_pass_during_fit(digits, teacher):
    x, y, _, _ = digits
    keras.utils.set_random_seed(3)
    distiller = Distiller(teacher, make_mlp(16, "student"), cache_teacher_outputs=True)
    distiller.compile("adam", CE)
    _forbid_teacher_pass(distiller)
    history = distiller.fit(x, y, epochs=2, batch_size=64, verbose=0, validation_split=0.25)
    assert len(history.history["loss"]) == 2
    # Without the cache the same model must run the teacher (the probe is live).
    distiller.cache_teacher_outputs = False
    with pytest.raises(AssertionError, match="the teacher ran inside fit"):
        distiller.fit(x, y, epochs=1, batch_size=64, verbose=0)


def test_deterministic_dataset_is_cached_like_arrays(digits, teacher):
    x, y, _, _ = digits
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    from_arrays, _ = _train(teacher, x, y, cache=True, shuffle=False)
    from_dataset, _ = _train(teacher, dataset, None, cache=True)
    for a, b in zip(weights_of(from_arrays.student), weights_of(from_dataset.student)):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(
    "pipeline",
    [
        lambda ds: ds.map(lambda a, b: (a + tf.random.normal(tf.shape(a), stddev=0.1), b)),
        lambda ds: ds.shuffle(64),
        lambda ds: ds.map(
            lambda a, b: (tf.image.stateless_random_brightness(a, 0.1, seed=(1, 2)), b)
        ),
    ],
    ids=["noise", "shuffle", "stateless-augment"],
)
def test_random_pipelines_are_refused(digits, teacher, student, pipeline):
    x, y, _, _ = digits
    dataset = pipeline(tf.data.Dataset.from_tensor_slices((x[:64], y[:64]))).batch(32)
    distiller = Distiller(teacher, student, cache_teacher_outputs=True)
    distiller.compile("adam", CE)
    with pytest.raises(ValueError, match=r"contains random ops \[.*(Random|Shuffle)"):
        distiller.fit(dataset, epochs=1, verbose=0)


def test_generators_and_pydatasets_are_refused(digits, teacher, student):
    x, y, _, _ = digits

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return x[index * 32 : (index + 1) * 32], y[index * 32 : (index + 1) * 32]

    distiller = Distiller(teacher, student, cache_teacher_outputs=True)
    distiller.compile("adam", CE)
    with pytest.raises(ValueError, match="fixed in-memory inputs.*Received: x of type Batches"):
        distiller.fit(Batches(), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="Received: x of type generator"):
        distiller.fit(((x[:32], y[:32]) for _ in range(2)), epochs=1, verbose=0)
