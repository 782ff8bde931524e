"""Protocol: a small student distilled from a larger teacher vs the same student from scratch.

tfopt side only (tfmot has no distillation): `run_tfmot` returns no rows.

The recipe (full mode), the same for both data variants:

- Budget: `EPOCHS` passes over the training set (x `HARDER_EPOCH_FACTOR` on the
  small "harder" set), Adam at `common.LEARNING_RATE` with cosine decay to 0, batch
  `common.BATCH_SIZE`, for the teacher and both students.
- Teacher (the common digits CNN, widened): trained once per variant, on the
  labels, with the recipe in `TEACHER_RECIPES` that scores best on validation:
  plain, or augmented (random shifts of up to `SHIFT_PIXELS` pixel, then mixup of
  image pairs with a uniform mixing weight, labels mixed alike).
- Students (`STUDENTS`, each compared with itself): "tiny" (1/60 of the teacher,
  underfits) and "small" (the common digits CNN, 1/4 of the teacher, can overfit);
  TFOPT_BENCH_STUDENTS=tiny,small runs some of them. Per seed each student (same
  initial weights) is trained from scratch on the labels, and with
  `tfopt.distillation.Distiller` (soft loss: KL at temperature T, x T², weight alpha
  against the label loss; alpha=1 is pure distillation; the teacher runs on each
  batch, no caching). Each with one of `STUDENT_RECIPES`: "plain" (the training images
  and labels, one pre-drawn permutation per epoch) or "augmented" (the teacher's shift
  + mixup stream, mixed one-hot labels, categorical cross-entropy). Runs with the same
  recipe see the same pre-drawn batches in the same order; with "augmented" the
  teacher scores the very augmented batch the student sees: the consistent teaching of
  Beyer et al. 2022 ("Knowledge distillation: A good teacher is patient and
  consistent").
- Choices: the teacher recipe (by the teacher's validation accuracy); then, with
  that teacher, each arm its own: the scratch arm its student recipe (by the
  scratch students' validation accuracy), the distilled arm its (student recipe,
  T, alpha) from `STUDENT_RECIPES` x `GRID` (by the distilled students' validation
  accuracy); means over `common.seeds(quick)`, the same seeds and initial weights
  as the test runs (`selection._choose`). `GRID` includes alpha=1.0: the full run (2 x 10
  runs per seed, variant and student) took 76 minutes on the shared 2-core machine.
  Digits: validation = the last `VALIDATION_FRACTION` of each class of the training
  split, models trained without it (teacher and students are retrained on the
  whole training split for the test runs). Harder: validation = other images of
  the training split (`HARDER_VALIDATION_PER_CLASS` per class, not among the 200,
  noised alike). The test split is never used for a choice. `--quick` skips the
  choices (augmented teacher, `QUICK_STUDENT_RECIPE` for both arms,
  T=`TEMPERATURE`, alpha=`ALPHA`).

Test accuracy is reported as mean and range over `common.seeds(quick)`.

Variants: "digits" (the common split) and "harder" (20 training images per
class, 200 in all, with Gaussian noise of std 0.25 added to the training,
validation and test images).

Epoch-time overhead: steady epoch time of plain student training, of
distillation, and of distillation with `cache_teacher_outputs=True`, all in this
process, with the teacher's inference pass over one epoch timed alone: student plus
teacher forward is a floor for the work done, not for wall time (the two forwards are
independent inside a step and can run at once on 2 cores).

Compressed student: if `tfopt.pruning` and `tfopt.quantization` import, the common
digits CNN (`COMPRESSED_ARCH`) is distilled from the digits teacher (the T and alpha
chosen for the student of its widths; `common.epochs(quick)` epochs at a constant
learning rate) while pruned to 80% (PolynomialDecay), stripped, then distilled again
as a QAT model that keeps the pruned zeros (`quantize_model(...,
preserve_sparsity=True)`) and exported to int8 TFLite with `tfopt.export.to_tflite`;
its LiteRT accuracy, size, gzip size and the sparsity of the int8 weights read back
from the file are reported next to the teacher and a scratch student.
"""

from __future__ import annotations

import time

from benchmarks import common
from benchmarks.distillation.compressed import _compressed_rows
from benchmarks.distillation.config import (
    ALPHA,
    COMPRESSED_ARCH,
    QUICK_STUDENT_RECIPE,
    STUDENT_ARCH,
    STUDENTS,
    TEMPERATURE,
)
from benchmarks.distillation.data import _variants
from benchmarks.distillation.selection import _select
from benchmarks.distillation.training import (
    _distiller,
    _epochs,
    _fit,
    _model,
    _student_names,
    _students,
    _train_teacher,
)


def _accuracy_rows(keras, quick: bool) -> tuple[list[dict], dict]:
    rows, teachers = [], {}
    for variant, (x, y, x_test, y_test, factor, validation) in _variants().items():
        epochs = _epochs(quick) * factor
        recipe = "augmented"
        quick_choice = (QUICK_STUDENT_RECIPE, (QUICK_STUDENT_RECIPE, TEMPERATURE, ALPHA))
        choices = {name: quick_choice for name in _student_names()}
        if not quick:
            recipe, choices, selection = _select(keras, variant, x, y, validation, epochs, quick)
            rows.extend(selection)
        teacher = _train_teacher(keras, x, y, epochs, recipe)
        # The compressed student (COMPRESSED_ARCH) distills with the choice of the student
        # of its widths, else with the first student's.
        same = [n for n in choices if STUDENTS[n] == COMPRESSED_ARCH] or list(choices)
        _, (_, temperature, alpha) = choices[same[0]]
        teachers[variant] = (teacher, x, y, x_test, y_test, temperature, alpha)
        common_fields = {"variant": variant, "train_samples": len(x), "epochs": epochs}
        rows.append(
            {
                "kind": "accuracy",
                **common_fields,
                "model": "teacher",
                "recipe": recipe,
                "seed": common.SEEDS[0],
                "params": teacher.count_params(),
                "accuracy": common.keras_accuracy(teacher, x_test, y_test),
            }
        )
        for student, (scratch_recipe, distilled) in choices.items():
            student_recipe, temperature, alpha = distilled
            runs = [(scratch_recipe, None), (student_recipe, (temperature, alpha))]
            for seed in common.seeds(quick):
                models = _students(keras, teacher, x, y, epochs, seed, runs, STUDENTS[student])
                for name, (run, model) in zip(("scratch", "distilled"), models.items()):
                    row = {
                        "kind": "accuracy",
                        **common_fields,
                        "student": student,
                        "model": name,
                        "student_recipe": run[0],
                        "seed": seed,
                        "params": model.count_params(),
                        "accuracy": common.keras_accuracy(model, x_test, y_test),
                    }
                    if name == "distilled":
                        row.update(temperature=temperature, alpha=alpha)
                    rows.append(row)
    return rows, teachers


def _timing_row(keras, teacher, x, y, quick: bool) -> dict:
    """Steady epoch times (interleaved plain / distill / cached, best of each)."""
    epochs = max(3, common.epochs(quick) // 3)
    times = {"plain": [], "distill": [], "cached": []}
    for _ in range(2):  # two interleaved rounds: load bursts hit all three alike
        common.set_seed(keras, common.SEEDS[0])
        plain = _model(keras, STUDENT_ARCH, "student")
        common.compile_cnn(plain, keras)
        times["plain"].append(_fit(plain, x, y, epochs, keras).fastest_s())
        for name, cache in (("distill", False), ("cached", True)):
            common.set_seed(keras, common.SEEDS[0])
            distiller = _distiller(keras, teacher, _model(keras, STUDENT_ARCH, "student"), cache)
            times[name].append(_fit(distiller, x, y, epochs, keras).fastest_s())
    # The teacher's forward pass over one epoch, timed alone: one compiled inference
    # call per training batch (what the Distiller adds to each step), best of 5.
    import tensorflow as tf

    forward_step = tf.function(lambda batch: teacher(batch, training=False))
    batches = [
        tf.constant(x[i : i + common.BATCH_SIZE]) for i in range(0, len(x), common.BATCH_SIZE)
    ]
    for batch in batches[:2]:  # tracing (the last batch may be shorter)
        forward_step(batch)
    forward_step(batches[-1])
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for batch in batches:
            forward_step(batch)
        runs.append(time.perf_counter() - start)
    teacher_forward = min(runs)
    plain_s, distill_s, cached_s = (min(times[k]) for k in ("plain", "distill", "cached"))
    return {
        "kind": "timing",
        "variant": "digits",
        "epochs_timed": epochs,
        "plain_epoch_s": plain_s,
        "distill_epoch_s": distill_s,
        "cached_epoch_s": cached_s,
        "teacher_forward_s": teacher_forward,
        "distill_overhead": distill_s / plain_s,
        "cached_overhead": cached_s / plain_s,
        "forward_floor": (plain_s + teacher_forward) / plain_s,
    }


def run_tfopt(quick: bool) -> list[dict]:
    import keras

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows, teachers = _accuracy_rows(keras, quick)
    for row in rows:
        row["started"] = started  # rows of runs made at different times can be merged
    teacher, x, y, x_test, y_test, temperature, alpha = teachers["digits"]
    rows.append(_timing_row(keras, teacher, x, y, quick))
    epochs = common.epochs(quick)  # the compressed student keeps the common budget
    rows.extend(_compressed_rows(keras, teacher, x, y, x_test, y_test, epochs, temperature, alpha))
    rows.append({"kind": "memory", "peak_rss_mb": common.peak_rss_mb()})
    return rows


def run_tfmot(quick: bool) -> list[dict]:
    """tfmot has no distillation API: nothing to compare."""
    return []
