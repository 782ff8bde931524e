"""How big and how long: the models, input sizes, steps and rounds of each part."""

from __future__ import annotations

import dataclasses

SEED = 1234
CLASSES = 10


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A keras.applications model with `weights=None`, 10 logits (no softmax).

    Attributes:
        kind: "MobileNetV2" or "ResNet50".
        size: the input's height and width (3 channels).
        alpha: MobileNetV2's width multiplier (None for ResNet50).
    """

    kind: str
    size: int
    alpha: float | None = None

    @property
    def label(self) -> str:
        width = "" if self.alpha is None else f" alpha {self.alpha}"
        return f"{self.kind}{width}, {self.size}x{self.size}"


@dataclasses.dataclass(frozen=True)
class Budget:
    """One run's sizes.

    Attributes:
        train_model: the model of the training-step figures.
        train_batch: its batch.
        train_steps: steps per timed epoch.
        train_rounds: timed rounds (each trains every model one epoch, in turn).
        mask_models: the models whose mask update is timed.
        mask_runs: timed mask updates per model (after one untimed).
        resnet: ResNet50's QAT and pruning stages; None to skip them.
        resnet_batch: their batch.
        resnet_steps: their training steps.
        deploy_model: the model of the deployment files.
        calibration_samples: int8 calibration samples (tfopt's PTQ, the converter's
            own full-integer file and onnxruntime's static quantization alike).
        verify_samples: samples each file's parity is measured on.
        qat_steps: QAT steps (batch `qat_batch`) before the QAT files are written.
        qat_batch: their batch.
        latency_rounds: interleaved latency rounds (`common.interleaved_latency`).
        stage_timeout_s: seconds a child process may run.
    """

    train_model: ModelSpec
    train_batch: int
    train_steps: int
    train_rounds: int
    mask_models: tuple[ModelSpec, ...]
    mask_runs: int
    resnet: ModelSpec | None
    resnet_batch: int
    resnet_steps: int
    deploy_model: ModelSpec
    calibration_samples: int
    verify_samples: int
    qat_steps: int
    qat_batch: int
    latency_rounds: int
    stage_timeout_s: float


FULL = Budget(
    train_model=ModelSpec("MobileNetV2", 128, 1.0),
    train_batch=16,
    train_steps=8,
    train_rounds=5,
    mask_models=(
        ModelSpec("MobileNetV2", 128, 0.35),
        ModelSpec("MobileNetV2", 128, 1.0),
        ModelSpec("ResNet50", 128),
    ),
    mask_runs=10,
    resnet=ModelSpec("ResNet50", 128),
    resnet_batch=8,
    resnet_steps=2,
    deploy_model=ModelSpec("MobileNetV2", 224, 1.0),
    calibration_samples=100,
    verify_samples=16,
    qat_steps=2,
    qat_batch=8,
    latency_rounds=5,
    stage_timeout_s=1800.0,
)

QUICK = Budget(
    train_model=ModelSpec("MobileNetV2", 96, 0.35),
    train_batch=16,
    train_steps=4,
    train_rounds=2,
    mask_models=(
        ModelSpec("MobileNetV2", 96, 0.35),
        ModelSpec("MobileNetV2", 96, 1.0),
        ModelSpec("ResNet50", 64),
    ),
    mask_runs=3,
    resnet=None,
    resnet_batch=4,
    resnet_steps=1,
    deploy_model=ModelSpec("MobileNetV2", 96, 0.35),
    calibration_samples=16,
    verify_samples=8,
    qat_steps=1,
    qat_batch=8,
    latency_rounds=2,
    stage_timeout_s=600.0,
)


def budget(quick: bool) -> Budget:
    """`QUICK` with --quick, else `FULL`."""
    return QUICK if quick else FULL
