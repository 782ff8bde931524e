"""Scale: MobileNetV2 and ResNet50, training cost side by side with tfmot, and deployment.

On each side (tfopt on Keras 3, tfmot on tf_keras twins), in this order:

1. `training`: per-step time of float, QAT and pruning on MobileNetV2 (alpha 1.0,
   128x128, batch 16, compiled fit), alternating in one process; the side's peak RSS
   is taken right after.
2. `masks`: one whole-model pruning mask update at three model sizes.

Then on the tfopt side only (tfmot's rows say "not measured"):

3. `resnet`: ResNet50 QAT and pruning, a few training steps and an export, one child
   process per stage (its peak RSS its own).
4. `deployment`: MobileNetV2 (alpha 1.0, 224x224) files in LiteRT and onnxruntime,
   tfopt's beside the TFLite converter's and onnxruntime's own int8 files.

Budgets: `budget.FULL` / `budget.QUICK`. All data is synthetic (`data`). Every failure
is recorded in its row; the side goes on.
"""

from __future__ import annotations

import gc

from benchmarks.coverage.measure import describe
from benchmarks.scale import budget, deployment, masks, resnet, sides, training

TITLE = "Scale: MobileNetV2 and ResNet50 training cost, int8 deployment files"


def _meta(side: str, quick: bool) -> dict:
    plan = budget.budget(quick)
    row = {"part": "meta", "side": side, "quick": bool(quick)}
    row.update(
        {
            "train_model": plan.train_model.label,
            "train_batch": plan.train_batch,
            "train_steps": plan.train_steps,
            "train_rounds": plan.train_rounds,
            "mask_runs": plan.mask_runs,
            "resnet": plan.resnet.label if plan.resnet else None,
            "resnet_batch": plan.resnet_batch,
            "resnet_steps": plan.resnet_steps,
            "deploy_model": plan.deploy_model.label,
            "calibration_samples": plan.calibration_samples,
            "verify_samples": plan.verify_samples,
            "qat_steps": plan.qat_steps,
            "qat_batch": plan.qat_batch,
            "latency_rounds": plan.latency_rounds,
        }
    )
    return row


def _run(side_name: str, quick: bool) -> list[dict]:
    plan = budget.budget(quick)
    rows = [_meta(side_name, quick)]
    try:
        side = sides.SIDES[side_name]()
    except Exception as err:  # e.g. tfmot not installed: the section says so
        return [*rows, {"part": "training", "side": side_name, "error": describe(err)}]
    rows.append(training.measure_training(side, plan))
    side.keras.backend.clear_session()
    gc.collect()
    rows += masks.measure_masks(side, plan)
    side.keras.backend.clear_session()
    gc.collect()
    return rows


def run_tfopt(quick: bool) -> list[dict]:
    rows = _run("tfopt", quick)
    plan = budget.budget(quick)
    rows += resnet.run_resnet(plan)
    rows += deployment.run_deployment(plan, quick)
    return rows


def run_tfmot(quick: bool) -> list[dict]:
    return _run("tfmot", quick)
