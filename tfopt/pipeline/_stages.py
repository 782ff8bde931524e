"""The stages of `tfopt.optimize`, one handler per stage class."""

from __future__ import annotations

import time

import keras
import numpy as np

from tfopt import export as _export
from tfopt.pipeline._checks import Plan, optimizer
from tfopt.pipeline.result import StageResult
from tfopt.pipeline.stages import DistillStage, PruneStage, PTQStage, QATStage


def predict(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's outputs in inference mode, batch by batch (no traced predict function)."""
    chunks = [
        keras.ops.convert_to_numpy(model(x[i : i + batch_size], training=False))
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(chunks, axis=0)


def evaluate(model, plan: Plan) -> dict:
    """Validation accuracy and loss of a Keras model (its outputs, argmax vs labels)."""
    return metrics_of(predict(model, plan.x_val), plan)


def metrics_of(outputs, plan: Plan) -> dict:
    """Validation accuracy and loss of outputs (a model's, or a file's)."""
    outputs = np.asarray(outputs, dtype=np.float32)
    accuracy = float(np.mean(np.argmax(outputs, axis=-1) == plan.val_ids))
    loss = float(keras.ops.convert_to_numpy(plan.loss()(plan.y_val, outputs)))
    return {"val_accuracy": accuracy, "val_loss": loss}


def sparsity(model) -> float:
    """Share of exact zeros among the model's prunable weights."""
    from tfopt import pruning

    return float(pruning.sparsity_report(model).total_sparsity)


def save(result: StageResult, plan: Plan) -> StageResult:
    """Saves the stage's model as `<name>.keras` in the output directory, with its sizes.

    The file holds the model's graph and weights without optimizer state, so its
    size is the model's, not its training's.
    """
    path = plan.out_dir / f"{result.name}.keras"
    # The same layers in a new, uncompiled functional model: nothing of training is saved.
    model = result.model
    keras.Model(model.inputs, model.outputs, name=model.name).save(path)
    result.path = str(path)
    result.bytes, result.gzip_bytes = _export.file_sizes(path)
    return result


def _fit(model, stage, plan: Plan, verbose, callbacks=(), log=print):
    model.compile(optimizer=optimizer(stage), loss=plan.loss(), metrics=["accuracy"])
    log(
        f"stage '{stage.kind}': {stage.epochs} epoch(s), {stage.optimizer} at learning rate "
        f"{stage.learning_rate:g}, batch {stage.batch_size} ({plan.steps[stage.kind]} steps)"
    )
    history = model.fit(
        plan.x_train,
        plan.y_train,
        epochs=stage.epochs,
        batch_size=stage.batch_size,
        validation_data=(plan.x_val, plan.y_val),
        callbacks=list(callbacks),
        verbose=verbose,
    )
    return history.history


def _last(history: dict) -> dict:
    return {k: float(v[-1]) for k, v in history.items() if not k.startswith("val_") and v}


def run_distill(stage: DistillStage, model, plan: Plan, verbose, log) -> StageResult:
    """Trains `model` as the student of the plan's teacher; returns the student."""
    from tfopt import distillation

    losses = {
        "soft": lambda: distillation.SoftDistillation(stage.temperature, plan.from_logits),
        "hard": lambda: distillation.HardDistillation(plan.from_logits),
        "mse": lambda: distillation.MSEDistillation(),
    }
    teacher = plan.teacher
    trainable = teacher.trainable  # the Distiller freezes it; give it back as it was
    try:
        distiller = distillation.Distiller(teacher, model, losses[stage.loss](), alpha=stage.alpha)
        history = _fit(distiller, stage, plan, verbose, log=log)
    finally:
        teacher.trainable = trainable
    student = distiller.student
    return StageResult(
        "distill", student, {**evaluate(student, plan), **_last(history)}, sparsity(student),
        history=history, stage=stage,
    )  # fmt: skip


def run_prune(stage: PruneStage, model, plan: Plan, verbose, log) -> StageResult:
    """Prunes `model` on the plan's schedule; returns the stripped model."""
    from tfopt import pruning

    pruned = pruning.prune_low_magnitude(
        model,
        plan.prune_schedule,
        sparsity_m_by_n=stage.sparsity_m_by_n,
        leave_dense=list(stage.leave_dense),
    )
    log(f"stage 'prune': {plan.prune_schedule!r}")
    callbacks = [pruning.UpdatePruningStep()]
    if plan.log_dir is not None:
        callbacks.append(pruning.PruningSummaries(log_dir=str(plan.log_dir / "prune")))
    history = _fit(pruned, stage, plan, verbose, callbacks, log=log)
    stripped = pruning.strip_pruning(pruned)
    return StageResult(
        "prune", stripped, {**evaluate(stripped, plan), **_last(history)}, sparsity(stripped),
        history=history, stage=stage,
    )  # fmt: skip


def run_qat(stage: QATStage, model, plan: Plan, verbose, log) -> StageResult:
    """Quantization-aware training of `model`; returns the QAT model."""
    from tfopt import quantization

    qat = quantization.quantize_model(
        model, config=stage.config, preserve_sparsity=plan.preserve_sparsity
    )
    if plan.preserve_sparsity:
        log("stage 'qat': preserve_sparsity=True (the pruned zeros stay zero)")
    callbacks = []
    if plan.log_dir is not None:
        callbacks.append(quantization.QuantizationSummaries(log_dir=str(plan.log_dir / "qat")))
    history = _fit(qat, stage, plan, verbose, callbacks, log=log)
    return StageResult(
        "qat", qat, {**evaluate(qat, plan), **_last(history)}, sparsity(qat),
        history=history, stage=stage,
    )  # fmt: skip


def run_ptq(stage: PTQStage, model, plan: Plan, verbose, log) -> StageResult:
    """Post-training quantization happens at export; its metrics come from the TFLite file."""
    log(f"stage 'ptq': the TFLite export is quantized with mode={stage.mode!r}")
    return StageResult("ptq", model, {}, sparsity(model), stage=stage)


HANDLERS = {DistillStage: run_distill, PruneStage: run_prune, QATStage: run_qat, PTQStage: run_ptq}


def run_stage(stage, model, plan: Plan, verbose, log) -> StageResult:
    """Runs one stage through its handler, timed; saves a trained stage's model."""
    start = time.perf_counter()
    result = HANDLERS[type(stage)](stage, model, plan, verbose, log)
    result.seconds = time.perf_counter() - start
    if not isinstance(stage, PTQStage):
        save(result, plan)
        log(
            f"stage '{stage.kind}': val accuracy {result.metrics['val_accuracy']:.4f}, "
            f"sparsity {result.sparsity:.1%}, {result.seconds:.1f} s -> {result.path}"
        )
    return result
