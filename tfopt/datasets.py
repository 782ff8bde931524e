"""Offline example data: scikit-learn's bundled handwritten digits.

The 1,797 8x8 digit scans ship inside scikit-learn (no download), which makes
them the real data set every tfopt demo, test and benchmark can count on.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Digits:
    """Train/test splits of the digits, images as float32 in [0, 1], labels int32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int = 10

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one image, without the batch axis (e.g. `(8, 8, 1)`)."""
        return tuple(self.x_train.shape[1:])


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of (n, 8, 8) images to (n, size, size), without TensorFlow."""
    _, h, w = images.shape
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[None, :, None], (xs - x0)[None, None, :]
    top = images[:, y0][:, :, x0] * (1 - wx) + images[:, y0][:, :, x1] * wx
    bottom = images[:, y1][:, :, x0] * (1 - wx) + images[:, y1][:, :, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def load_digits(
    test_fraction: float = 0.2,
    seed: int = 0,
    image_size: int | None = None,
    channels: int = 1,
    flatten: bool = False,
) -> Digits:
    """Loads scikit-learn's digits as a seeded, stratified train/test split.

    Example:

    ```python
    data = tfopt.datasets.load_digits()                 # (1438, 8, 8, 1) / (359, 8, 8, 1)
    big = tfopt.datasets.load_digits(image_size=32, channels=3)   # for keras.applications
    ```

    Args:
        test_fraction: share of each class held out for testing, in (0, 1).
            Defaults to `0.2`.
        seed: seed of the split. Defaults to `0`.
        image_size: resize the 8x8 scans to `image_size` x `image_size`
            (bilinear). Defaults to `None` (keep 8x8).
        channels: 1 (grey) or 3 (grey repeated, for RGB architectures).
            Defaults to `1`.
        flatten: return (n, 64) vectors instead of images (for MLPs).
            Defaults to `False`.

    Returns:
        A `Digits` with x_train, y_train, x_test, y_test.

    Raises:
        ValueError: an argument out of range.
    """
    if not isinstance(test_fraction, float) or not 0.0 < test_fraction < 1.0:
        raise ValueError(
            "Argument `test_fraction` must be a float in (0, 1). "
            f"Received: test_fraction={test_fraction!r}"
        )
    if image_size is not None and (not isinstance(image_size, int) or image_size < 8):
        raise ValueError(
            "Argument `image_size` must be None or an int >= 8. "
            f"Received: image_size={image_size!r}"
        )
    if channels not in (1, 3):
        raise ValueError(f"Argument `channels` must be 1 or 3. Received: channels={channels!r}")
    if flatten and (image_size is not None or channels != 1):
        raise ValueError(
            "Argument `flatten=True` gives (n, 64) vectors and cannot be combined with "
            f"image_size={image_size!r} or channels={channels!r}."
        )
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # pixel values are 0..16
    labels = bunch.target.astype(np.int32)

    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = round(len(idx) * test_fraction)
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))

    if image_size is not None and image_size != 8:
        images = _resize(images, image_size)
    if flatten:
        images = images.reshape(len(images), -1)
    else:
        images = np.repeat(images[..., None], channels, axis=-1)
    return Digits(
        x_train=images[train_idx],
        y_train=labels[train_idx],
        x_test=images[test_idx],
        y_test=labels[test_idx],
    )


__all__ = ["Digits", "load_digits"]
