"""The distillation suite's data: the two variants, pre-drawn training streams, validation."""

from __future__ import annotations

import numpy as np

from benchmarks import common
from benchmarks.distillation.config import (
    HARDER_EPOCH_FACTOR,
    HARDER_NOISE,
    HARDER_PER_CLASS,
    HARDER_VALIDATION_PER_CLASS,
    SHIFT_PIXELS,
    VALIDATION_FRACTION,
)


def _variants() -> dict:
    """{name: (x, y, x_test, y_test, epoch factor, validation)}.

    `validation` is None (hold out part of x) or (x_val, y_val) drawn from elsewhere.
    """
    data = common.load_data()
    variants = {"digits": (data.x_train, data.y_train, data.x_test, data.y_test, 1, None)}
    rng = np.random.default_rng(0)
    per_class = [np.flatnonzero(data.y_train == c) for c in range(10)]
    keep = np.concatenate([idx[:HARDER_PER_CLASS] for idx in per_class])
    held = np.concatenate(
        [
            idx[HARDER_PER_CLASS : HARDER_PER_CLASS + HARDER_VALIDATION_PER_CLASS]
            for idx in per_class
        ]
    )
    x_train = data.x_train[keep] + rng.normal(0, HARDER_NOISE, data.x_train[keep].shape)
    x_test = data.x_test + rng.normal(0, HARDER_NOISE, data.x_test.shape)
    x_val = data.x_train[held] + rng.normal(0, HARDER_NOISE, data.x_train[held].shape)
    variants["harder"] = (
        x_train.astype("float32"),
        data.y_train[keep],
        x_test.astype("float32"),
        data.y_test,
        HARDER_EPOCH_FACTOR,
        (x_val.astype("float32"), data.y_train[held]),
    )
    return variants


def _shift(x: np.ndarray, rng) -> np.ndarray:
    """Each image moved by a random whole number of pixels in [-SHIFT_PIXELS, SHIFT_PIXELS]²."""
    p = SHIFT_PIXELS
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    h, w = x.shape[1:3]
    dy, dx = rng.integers(-p, p + 1, (2, len(x)))
    return np.stack(
        [padded[i, p + a : p + a + h, p + b : p + b + w] for i, (a, b) in enumerate(zip(dy, dx))]
    )


def _stream(x, y, epochs: int, seed: int, augment: bool = False):
    """`epochs` passes over (x, y), each in a fresh random order, as one array pair.

    Pre-drawn so that two models trained from the same stream get exactly the same
    batches in the same order. With `augment`, each pass is shifted (`_shift`), then
    mixed up (each image blended with another of the pass, weight ~ U(0, 1)), and the
    labels become the mixed one-hot vectors.
    """
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for _ in range(epochs):
        order = rng.permutation(len(x))
        xe, ye = x[order], y[order]
        if augment:
            xe = _shift(xe, rng)
            weight = rng.uniform(0.0, 1.0, (len(x), 1))
            partner = rng.permutation(len(x))
            ye = np.eye(10)[ye]
            xe = weight[..., None, None] * xe + (1 - weight[..., None, None]) * xe[partner]
            ye = weight * ye + (1 - weight) * ye[partner]
        xs.append(xe.astype("float32"))
        ys.append(ye.astype("float32") if augment else ye)
    return np.concatenate(xs), np.concatenate(ys)


def _validation_split(y) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): the last `VALIDATION_FRACTION` of each class held out."""
    train, val = [], []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        cut = len(idx) - max(1, round(VALIDATION_FRACTION * len(idx)))
        train.append(idx[:cut])
        val.append(idx[cut:])
    return np.concatenate(train), np.concatenate(val)
