"""The training and measuring budget of the coverage suite, the same on both sides."""

from __future__ import annotations

import dataclasses

LEARNING_RATE = 1e-3
SEED = 1234


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much each model trains and on how many samples its files are measured.

    keras.applications models train in eager steps (tracing a graph of 100-800 layers
    for `fit` costs more than the steps); the small models train whole epochs.

    Attributes:
        app_float_steps: float training steps of an application before quantizing.
        app_float_batch: their batch size.
        app_statistics_batch: images whose batch statistics become every
            BatchNormalization's moving statistics (after the float steps).
        app_qat_steps: QAT steps (the "train" column).
        app_qat_batch: their batch size.
        app_verify: test images the files are compared on.
        small_float_epochs: float epochs of the ViT-style, text and tagger models.
        small_qat_epochs: QAT epochs after them.
        small_batch: their batch size.
        model_timeout_s: seconds one model may take on one side before it is
            stopped and recorded as timed out.
    """

    app_float_steps: int
    app_float_batch: int
    app_statistics_batch: int
    app_qat_steps: int
    app_qat_batch: int
    app_verify: int
    small_float_epochs: int
    small_qat_epochs: int
    small_batch: int
    model_timeout_s: float


FULL = Budget(
    app_float_steps=4,
    app_float_batch=32,
    app_statistics_batch=64,
    app_qat_steps=4,
    app_qat_batch=16,
    app_verify=64,
    small_float_epochs=30,
    small_qat_epochs=3,
    small_batch=32,
    model_timeout_s=900.0,
)
QUICK = Budget(
    app_float_steps=1,
    app_float_batch=32,
    app_statistics_batch=32,
    app_qat_steps=1,
    app_qat_batch=16,
    app_verify=16,
    small_float_epochs=2,
    small_qat_epochs=1,
    small_batch=32,
    model_timeout_s=300.0,
)


def budget(quick: bool) -> Budget:
    """`QUICK` with --quick, else `FULL`."""
    return QUICK if quick else FULL
