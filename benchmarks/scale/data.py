"""Synthetic data: seeded uniform images in [-1, 1] (MobileNetV2's and ResNet50's input
range after their preprocessing) and uniform labels. Speed and memory do not depend on
what the images show; accuracy is not measured here."""

from __future__ import annotations

import types

import numpy as np

from benchmarks.scale.budget import CLASSES, SEED


def images(n: int, size: int, seed: int = SEED) -> np.ndarray:
    """`n` images of shape (size, size, 3), float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(n, size, size, 3)).astype("float32")


def labels(n: int, seed: int = SEED) -> np.ndarray:
    """`n` int32 labels in [0, CLASSES)."""
    return np.random.default_rng(seed + 1).integers(0, CLASSES, size=n).astype("int32")


def training_set(n: int, size: int, seed: int = SEED):
    """{x_train, y_train} as `common.interleaved_fits` reads them."""
    return types.SimpleNamespace(x_train=images(n, size, seed), y_train=labels(n, seed))


# Distinct seeds so that calibration, verification and training never share samples.
def calibration(n: int, size: int) -> np.ndarray:
    return images(n, size, SEED + 10)


def verification(n: int, size: int) -> np.ndarray:
    return images(n, size, SEED + 20)
