"""`tfopt.optimize`: a recipe of stages from a trained model to verified device files."""

from __future__ import annotations

import os

import keras

from tfopt import export as _export
from tfopt.pipeline import _checks, _reports, _stages
from tfopt.pipeline.recipe import Recipe
from tfopt.pipeline.result import ExportedFile, OptimizeResult, StageResult
from tfopt.pipeline.stages import ExportStage


def _as_recipe(recipe) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, dict):
        return Recipe.from_dict(recipe)
    if isinstance(recipe, (str, os.PathLike)):
        return Recipe.from_file(recipe)
    raise TypeError(
        "Argument `recipe` must be a tfopt.pipeline.Recipe, a dict (Recipe.to_dict's form) or "
        f"the path of a .json/.yaml recipe file. Received: recipe of type {type(recipe).__name__}"
    )


def _export_one(fmt: str, name: str, source: StageResult, stage: ExportStage, plan, options):
    model = source.model
    path = plan.out_dir / f"{name}.{fmt}"
    if fmt == "tflite":
        result = _export.to_tflite(model, path, verify_data=plan.x_val, **options)
    else:
        result = _export.to_onnx(model, path, verify_data=plan.x_val)
    latency = _export.benchmark_latency(
        result.path, num_threads=stage.num_threads, warmup=5, runs=stage.latency_runs
    )
    figures = _stages.metrics_of(result.parity.outputs[0], plan)
    return ExportedFile(
        name=path.name,
        source=source.name,
        result=result,
        latency=latency,
        accuracy=figures["val_accuracy"],
        loss=figures["val_loss"],
        sparsity=source.sparsity,
    )


def _run_exports(stage: ExportStage, baseline, final, recipe: Recipe, plan, notes, log):
    pruned = recipe.stage("prune") is not None
    ptq = recipe.stage("ptq")
    exported = []
    jobs = []
    if stage.baseline:
        jobs += [(fmt, "baseline", baseline, {}) for fmt in stage.formats]
    # Sparse encoding after pruning, except for 16x8 PTQ (its sparse files are wrong).
    sparse = stage.sparse if stage.sparse is not None else pruned
    if stage.sparse is None and ptq is not None and ptq.mode == "int16x8":
        sparse = False
    for fmt in stage.formats if final is not None else ():
        options = {}
        if fmt == "tflite":
            options["sparse"] = sparse
            if ptq is not None:
                options["quantization"] = ptq.mode
                if ptq.mode in ("int8", "int16x8"):
                    options["representative_data"] = plan.x_train
                    options["num_calibration_samples"] = ptq.calibration_samples
        jobs.append((fmt, "optimized", final, options))
    for fmt, name, source, options in jobs:
        file = _export_one(fmt, name, source, stage, plan, options)
        log(
            f"export: {file.name} from {source.name}: {file.result.quantization}, "
            f"{file.result.bytes:,} bytes ({file.result.gzip_bytes:,} gzipped), val accuracy "
            f"{file.accuracy:.4f}, max abs error vs Keras {file.result.parity.max_abs_error:.3g}"
            + (
                f", top-1 agreement {file.result.parity.top1_agreement:.2%}"
                if file.result.parity.top1_agreement is not None
                else ""
            )
            + f", {file.latency.median_ms:.3g} ms"
        )
        exported.append(file)
        notes.extend(f"{file.name}: {n}" for n in (*file.result.notes, *file.latency.notes))
    return exported


def optimize(
    model: keras.Model,
    train_data,
    val_data,
    recipe,
    *,
    teacher=None,
    out_dir="tfopt-optimize",
    verbose="auto",
    log=print,
    safe_mode: bool = True,
    log_dir=None,
    overwrite: bool = False,
) -> OptimizeResult:
    """Runs a recipe of stages on a trained classifier and writes verified files and reports.

    The stages run in the recipe's order (distill -> prune -> qat or ptq ->
    export), each on the previous stage's model, each with its own epochs and
    optimizer. Everything that can be checked is checked before the first
    training step: the recipe's order and arguments, the data's shapes against
    the model's input, the labels against its output units, the teacher's
    output shape, that pruning and QAT can rewrite the model. `model` itself is
    never trained (a copy is). The output directory receives each stage's
    `.keras` model, the exported files (each verified against its Keras model),
    `report.json`, `report.md` and PNG plots.

    Example:

    ```python
    recipe = {"stages": [{"stage": "prune", "sparsity": 0.5, "epochs": 1},
                         {"stage": "export", "formats": ["tflite"], "latency_runs": 5}]}
    result = tfopt.optimize(model, (x_train[:256], y_train[:256]),
                            (x_test[:64], y_test[:64]), recipe, out_dir="run", verbose=0)
    print(result.table())
    ```

    Args:
        model: a trained Keras 3 Sequential or functional classifier with one
            input and one output of shape (batch, classes).
        train_data: `(x_train, y_train)`, numpy arrays; labels are class ids of
            shape (n,) or one-hot rows of shape (n, classes).
        val_data: `(x_val, y_val)`, the same kinds; every artifact's accuracy
            and loss are measured on it, and exported files verified on it.
        recipe: a `tfopt.pipeline.Recipe`, its dict form, or the path of a
            `.json` / `.yaml` recipe file.
        teacher: the distillation teacher: a Keras model or the path of a
            `.keras` file (loaded with safe_mode=True). Defaults to `None` (the
            "distill" stage's `teacher` path, if any).
        out_dir: the output directory, created if needed. Defaults to
            `"tfopt-optimize"`.
        verbose: passed to each `fit` (`"auto"` shows Keras's progress bar, 0
            nothing). Defaults to `"auto"`.
        log: called with each progress line (a stage starting or ending, a file
            written). Defaults to `print`.
        safe_mode: Keras's `safe_mode` for the `.keras` files this call loads
            (a teacher given by path): False runs Python code stored in them
            (Lambda layers); only for files you trust. Defaults to `True`.
        log_dir: TensorBoard logs: per-layer sparsity of the pruning stage
            (`log_dir/prune`, `tfopt.pruning.PruningSummaries`) and per-layer
            quantization ranges of the QAT stage (`log_dir/qat`,
            `tfopt.quantization.QuantizationSummaries`). Defaults to `None`
            (no logs).
        overwrite: a non-empty `out_dir` is refused unless True; then the files
            an earlier run wrote there (its stage models, exported files,
            reports and plots, by name) are removed before this run, and any
            other file is kept. Defaults to `False`.

    Returns:
        An `OptimizeResult`: per stage the model and its validation metrics,
        per file the `ExportResult` with latency and accuracy; `.table()`,
        `.to_dict()`.

    Raises:
        TypeError: an argument of the wrong kind (named).
        ValueError: a recipe, data, labels, teacher or model the stages cannot
            take, named by argument and stage, before any training.
        FileNotFoundError: a recipe or teacher file that does not exist.
        FileExistsError: `out_dir` holds files and `overwrite` is False.
        tfopt.export.ParityError: an exported file misses its parity bar
            (nothing is written for it).
    """
    recipe = _as_recipe(recipe)
    if not isinstance(safe_mode, bool):
        raise TypeError(f"Argument `safe_mode` must be a bool. Received: safe_mode={safe_mode!r}")
    run = {
        "teacher": teacher,
        "out_dir": out_dir,
        "verbose": verbose,
        "log": log,
        "safe_mode": safe_mode,
        "log_dir": log_dir,
        "overwrite": overwrite,
    }
    if safe_mode:  # Keras's own setting stays (keras.config.enable_unsafe_deserialization)
        return _optimize(model, train_data, val_data, recipe, **run)
    from keras.src.saving.serialization_lib import SafeModeScope

    with SafeModeScope(False):  # the user trusts the model: its Lambda layers may be rebuilt
        return _optimize(model, train_data, val_data, recipe, **run)


def _optimize(
    model,
    train_data,
    val_data,
    recipe,
    *,
    teacher,
    out_dir,
    verbose,
    log,
    safe_mode,
    log_dir,
    overwrite,
):
    # Seeded first: the copy the stages train draws its layers' seeds (Dropout) here.
    keras.utils.set_random_seed(recipe.seed)
    plan = _checks.preflight(
        model, train_data, val_data, recipe, teacher, out_dir, safe_mode, log_dir, overwrite
    )
    notes = [
        f"loss: {type(plan.loss()).__name__}(from_logits={plan.from_logits}); from_logits "
        + ("as the recipe says" if recipe.from_logits is not None else "told from the outputs")
    ]
    log(
        f"{len(plan.x_train)} training / {len(plan.x_val)} validation samples, "
        f"{plan.num_classes} classes; {notes[0]}"
    )
    baseline = _stages.save(
        StageResult("baseline", model, _stages.evaluate(model, plan), _stages.sparsity(model)),
        plan,
    )
    log(f"baseline: val accuracy {baseline.metrics['val_accuracy']:.4f}")
    teacher_result = None
    if plan.teacher is not None:
        teacher_result = _stages.save(
            StageResult(
                "teacher",
                plan.teacher,
                _stages.evaluate(plan.teacher, plan),
                _stages.sparsity(plan.teacher),
            ),
            plan,
        )
        log(f"teacher: val accuracy {teacher_result.metrics['val_accuracy']:.4f}")
        t_acc, m_acc = teacher_result.metrics["val_accuracy"], baseline.metrics["val_accuracy"]
        if t_acc < m_acc:
            note = (
                f"the teacher's val accuracy {t_acc:.4f} is below the model's own {m_acc:.4f}: "
                "distilling from it may teach the model its mistakes"
            )
            notes.append(note)
            log(f"note: {note}")
    current = plan.model  # a copy: the caller's model is never trained
    stages = []
    for stage in recipe.stages:
        if isinstance(stage, ExportStage):
            continue
        result = _stages.run_stage(stage, current, plan, verbose, log)
        stages.append(result)
        current = result.model
    exports = []
    export_stage = recipe.stage("export")
    if export_stage is not None:
        final = stages[-1] if stages else None  # None: the baseline's files are all
        exports = _run_exports(export_stage, baseline, final, recipe, plan, notes, log)
    ptq = next((s for s in stages if s.name == "ptq"), None)
    if ptq is not None:  # its figures are its file's
        file = next(f for f in exports if f.name == "optimized.tflite")
        ptq.metrics = {"val_accuracy": file.accuracy, "val_loss": file.loss}
    result = OptimizeResult(
        recipe=recipe,
        out_dir=str(plan.out_dir),
        baseline=baseline,
        teacher=teacher_result,
        stages=stages,
        exports=exports,
        notes=notes,
    )
    _reports.write(result, plan, log)
    return result
