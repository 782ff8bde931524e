import numpy as np
import pytest

from tfopt import datasets


def test_split_shapes_and_ranges():
    data = datasets.load_digits()
    # scikit-learn ships 1,797 scans; 20% of each class is held out (rounded per class).
    assert len(data.x_train) + len(data.x_test) == 1797
    assert len(data.x_test) == pytest.approx(0.2 * 1797, abs=10)
    # round(0.2 * n) of each class's scans (178, 182, 177, 183, 181, 182, 181, 179, 174,
    # 180 in scikit-learn's digits): 359, as the load_digits docstring says.
    assert data.x_train.shape == (1438, 8, 8, 1) and data.x_test.shape == (359, 8, 8, 1)
    assert data.x_train.shape[1:] == (8, 8, 1) == data.input_shape
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert set(np.unique(data.y_test)) == set(range(10))  # stratified: every class tested


def test_fixed_seed_is_reproducible_and_seeds_differ():
    a, b, c = datasets.load_digits(), datasets.load_digits(), datasets.load_digits(seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)


def test_train_and_test_do_not_overlap():
    data = datasets.load_digits(flatten=True)
    train = {row.tobytes() for row in data.x_train}
    # Distinct scans: a few digits in the set are exact duplicates of each other,
    # so count overlaps rather than demand none.
    shared = sum(row.tobytes() in train for row in data.x_test)
    assert shared <= 2


def test_resize_and_channels():
    data = datasets.load_digits(image_size=32, channels=3)
    assert data.x_train.shape[1:] == (32, 32, 3)
    np.testing.assert_array_equal(data.x_train[..., 0], data.x_train[..., 2])
    small = datasets.load_digits()
    # Bilinear resizing keeps the picture: the mean intensity barely moves.
    assert abs(data.x_train.mean() - small.x_train.mean()) < 0.02


def test_flatten():
    assert datasets.load_digits(flatten=True).x_train.shape[1:] == (64,)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"image_size": 4}, "image_size"),
        ({"channels": 2}, "channels"),
        ({"flatten": True, "channels": 3}, "flatten"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"Argument `{message}"):
        datasets.load_digits(**kwargs)
