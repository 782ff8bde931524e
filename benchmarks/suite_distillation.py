"""Distillation: a small student distilled from a larger teacher vs the same student from scratch.

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
  as the test runs (`_choose`). `GRID` includes alpha=1.0: the full run (2 x 10
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

import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import common

TITLE = "Distillation: small student from a larger teacher (tfopt only)"

TEACHER_ARCH = {"filters": (32, 64), "dense_units": 128}
# Two students of the common digits CNN, each compared with itself from scratch:
# "tiny" underfits (1/60 of the teacher), "small" can overfit the 1,150-1,438 training
# images (1/4 of the teacher: the regime of Hinton et al. 2015's MNIST result, where the
# soft targets act as a regularizer). TFOPT_BENCH_STUDENTS=tiny,small picks some.
STUDENTS = {
    "tiny": {"filters": (4, 8), "dense_units": 16},
    "small": {"filters": (16, 32), "dense_units": 64},
}
STUDENT_ARCH = STUDENTS["tiny"]  # the epoch-time run
EPOCHS = 100  # full mode; --quick uses common.QUICK_EPOCHS
TEMPERATURE = 2.0  # --quick, and the timing run
ALPHA = 0.5
GRID = [(t, a) for t in (1.0, 2.0, 4.0) for a in (0.5, 0.9, 1.0)]  # chosen on validation data
TEACHER_RECIPES = ("plain", "augmented")  # chosen on validation data
STUDENT_RECIPES = ("plain", "augmented")  # chosen on validation data, per arm
QUICK_STUDENT_RECIPE = "plain"  # --quick, both arms (fixed; plain led on validation)
SHIFT_PIXELS = 1
VALIDATION_FRACTION = 0.2
HARDER_PER_CLASS = 20
HARDER_VALIDATION_PER_CLASS = 40
HARDER_NOISE = 0.25
HARDER_EPOCH_FACTOR = 3
SPARSITY = 0.8
COMPRESSED_ARCH = {"filters": (16, 32), "dense_units": 64}  # the common digits CNN


def _epochs(quick: bool) -> int:
    return common.epochs(quick) if quick else EPOCHS


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


def _model(keras, arch: dict, name: str):
    return common.build_cnn(keras, name=name, **arch)


def _ce(keras):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _fit(model, x, y, epochs: int, keras):
    timer = common.epoch_times(keras)
    model.fit(x, y, epochs=epochs, batch_size=common.BATCH_SIZE, callbacks=[timer], verbose=0)
    return timer


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


def _optimizer(keras, steps: int | None):
    """Adam at `common.LEARNING_RATE`, with cosine decay to 0 over `steps` (None: constant)."""
    rate = common.LEARNING_RATE
    if steps is not None:
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=steps)
    return keras.optimizers.Adam(rate)


def _steps(n: int) -> int:
    return math.ceil(n / common.BATCH_SIZE)


def _train_teacher(keras, x, y, epochs: int, recipe: str):
    """The teacher for one data set: `recipe` "plain" (labels) or "augmented" (shift + mixup)."""
    common.set_seed(keras, common.SEEDS[0])
    teacher = _model(keras, TEACHER_ARCH, "teacher")
    augment = recipe == "augmented"
    xs, ys = _stream(x, y, epochs, common.SEEDS[0], augment=augment)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True) if augment else _ce(keras)
    teacher.compile(_optimizer(keras, _steps(len(xs))), loss)
    teacher.fit(xs, ys, epochs=1, shuffle=False, batch_size=common.BATCH_SIZE, verbose=0)
    common.compile_cnn(teacher, keras)  # for evaluate() on integer labels, like the students
    return teacher


def _distiller(
    keras,
    teacher,
    student,
    cache=False,
    temperature=TEMPERATURE,
    alpha=ALPHA,
    steps=None,
    loss=None,
):
    """A compiled `Distiller`; `loss` is the student's label loss (default: sparse CE)."""
    from tfopt.distillation import Distiller, SoftDistillation

    distiller = Distiller(
        teacher, student, SoftDistillation(temperature), alpha=alpha, cache_teacher_outputs=cache
    )
    distiller.compile(_optimizer(keras, steps), loss or _ce(keras), metrics=["accuracy"])
    return distiller


def _student_names() -> list[str]:
    """The students to run: all of `STUDENTS`, or those named in TFOPT_BENCH_STUDENTS."""
    names = [n for n in os.environ.get("TFOPT_BENCH_STUDENTS", "").split(",") if n]
    unknown = sorted(set(names) - set(STUDENTS))
    if unknown:
        raise ValueError(
            f"TFOPT_BENCH_STUDENTS names unknown students {unknown}; known: {list(STUDENTS)}"
        )
    return names or list(STUDENTS)


def _students(keras, teacher, x, y, epochs: int, seed: int, runs, arch=None) -> dict:
    """Trains one student per entry of `runs`, all from the same initial weights.

    Args:
        arch: the student's widths (`STUDENTS`). Defaults to `STUDENT_ARCH`.
        runs: (student recipe, (T, alpha)) pairs; (T, alpha) None trains from scratch.
            A recipe is "plain" (the labels, no augmentation) or "augmented" (`_stream`
            with shift + mixup, mixed one-hot labels): every run with the same recipe sees
            the same pre-drawn batches in the same order, and a distilled run's teacher
            sees the same augmented batch as its student (consistent teaching).

    Returns:
        {run: trained student}.
    """
    arch = arch or STUDENT_ARCH
    common.set_seed(keras, seed)
    initial = _model(keras, arch, "student").get_weights()
    streams, models = {}, {}
    for recipe, pair in runs:
        if recipe not in streams:
            streams[recipe] = _stream(x, y, epochs, seed, augment=recipe == "augmented")
        xs, ys = streams[recipe]
        steps = _steps(len(xs))
        loss = (
            keras.losses.CategoricalCrossentropy(from_logits=True)
            if recipe == "augmented"
            else _ce(keras)
        )
        common.set_seed(keras, seed)
        student = _model(keras, arch, "student")
        student.set_weights(initial)
        if pair is None:
            trainer = student
            trainer.compile(_optimizer(keras, steps), loss, metrics=["accuracy"])
        else:
            trainer = _distiller(
                keras, teacher, student, temperature=pair[0], alpha=pair[1], steps=steps, loss=loss
            )
        trainer.fit(xs, ys, epochs=1, shuffle=False, batch_size=common.BATCH_SIZE, verbose=0)
        models[(recipe, pair)] = student
    return models


def _validation_split(y) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): the last `VALIDATION_FRACTION` of each class held out."""
    train, val = [], []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        cut = len(idx) - max(1, round(VALIDATION_FRACTION * len(idx)))
        train.append(idx[:cut])
        val.append(idx[cut:])
    return np.concatenate(train), np.concatenate(val)


def _choose(rows: list[dict]) -> tuple[str, tuple[str, float, float]]:
    """Each arm's choice from the students' validation rows (pure; ties: first listed).

    The scratch arm takes the student recipe with the best mean validation accuracy
    of its scratch students; the distilled arm takes the (student recipe, T, alpha)
    with the best mean validation accuracy of its distilled students. Means are over
    the seeds in `rows`. Ties go to the first in `STUDENT_RECIPES`, then in `GRID`.

    Args:
        rows: selection rows with "model" ("scratch" or "distilled"),
            "student_recipe", "val_accuracy", and for distilled ones "temperature"
            and "alpha".

    Returns:
        (scratch recipe, (distilled recipe, temperature, alpha)).

    Raises:
        ValueError: If `rows` lack a scratch or a distilled student.
    """

    def mean(model, key):
        values = [r["val_accuracy"] for r in rows if r["model"] == model and _run_key(r) == key]
        return float(np.mean(values)) if values else -math.inf

    scratch_keys = [(recipe, None) for recipe in STUDENT_RECIPES]
    distilled_keys = [(recipe, pair) for recipe in STUDENT_RECIPES for pair in GRID]
    scratch = max(scratch_keys, key=lambda k: mean("scratch", k))
    distilled = max(distilled_keys, key=lambda k: mean("distilled", k))
    if mean("scratch", scratch) == -math.inf or mean("distilled", distilled) == -math.inf:
        raise ValueError(
            "Argument `rows` must hold validation rows of scratch and of distilled students "
            f"for the recipes {STUDENT_RECIPES} and pairs {GRID}. Received: {len(rows)} rows "
            f"with models {sorted({r.get('model') for r in rows})}."
        )
    return scratch[0], (distilled[0], *distilled[1])


def _run_key(row: dict) -> tuple:
    """(student recipe, (T, alpha) or None) of a student row; old rows had no recipe: plain."""
    pair = None
    if row.get("model") == "distilled":
        pair = (row["temperature"], row["alpha"])
    return row.get("student_recipe", "plain"), pair


def _select(keras, variant, x, y, validation, epochs, quick: bool):
    """Picks the teacher recipe, then each arm's student recipe (and T, alpha), on validation.

    The teacher recipe with the best validation accuracy wins (ties: the first in
    `TEACHER_RECIPES`). With that teacher, per seed of `common.seeds(quick)` (same
    seeds and initial weights as the test runs), a scratch student per student recipe
    and a distilled student per (student recipe, T, alpha) are trained, and `_choose`
    picks each arm's best mean validation accuracy: one seed picks by noise. The test
    split is never looked at.

    Returns:
        (teacher recipe, {student: (scratch recipe, (distilled recipe, T, alpha))}, rows).
    """
    if validation is None:
        train, val = _validation_split(y)
        x_fit, y_fit, x_val, y_val = x[train], y[train], x[val], y[val]
    else:
        x_fit, y_fit, (x_val, y_val) = x, y, validation
    rows, teachers = [], {}
    for recipe in TEACHER_RECIPES:
        teachers[recipe] = _train_teacher(keras, x_fit, y_fit, epochs, recipe)
        rows.append(
            {
                "kind": "selection",
                "variant": variant,
                "model": "teacher",
                "recipe": recipe,
                "seed": common.SEEDS[0],
                "val_samples": len(y_val),
                "val_accuracy": common.keras_accuracy(teachers[recipe], x_val, y_val),
            }
        )
    recipe = max(
        TEACHER_RECIPES,
        key=lambda r: next(x["val_accuracy"] for x in rows if x.get("recipe") == r),
    )
    runs = [(s, pair) for s in STUDENT_RECIPES for pair in (None, *GRID)]
    choices = {}
    for name in _student_names():
        students = []
        for seed in common.seeds(quick):
            models = _students(
                keras, teachers[recipe], x_fit, y_fit, epochs, seed, runs, STUDENTS[name]
            )
            for (student_recipe, pair), model in models.items():
                row = {
                    "kind": "selection",
                    "variant": variant,
                    "student": name,
                    "model": "scratch",
                    "student_recipe": student_recipe,
                    "seed": seed,
                    "val_accuracy": common.keras_accuracy(model, x_val, y_val),
                }
                if pair is not None:
                    row.update(
                        model="distilled", recipe=recipe, temperature=pair[0], alpha=pair[1]
                    )
                students.append(row)
        choices[name] = _choose(students)
        rows += students
    return recipe, choices, rows


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


def _file_sparsity(path) -> float:
    """Fraction of zero weights over the CONV_2D/FULLY_CONNECTED weight tensors of a .tflite.

    Read back with LiteRT from the file itself; in a full-integer file the weights are
    symmetric int8, so a stored 0 is exactly a zero weight.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    weights = [
        np.asarray(interpreter.get_tensor(int(op["inputs"][1]))).ravel()
        for op in interpreter._get_ops_details()
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    ]
    return float(np.mean(np.concatenate(weights) == 0))


def _int8_row(model, name, x, x_test, y_test, tmp, **extra) -> dict:
    from tfopt.export import to_tflite

    path = Path(tmp) / f"{name}.tflite"
    result = to_tflite(
        model,
        path,
        quantization="int8",
        representative_data=x[: common.CALIBRATION_SAMPLES],
        verify_data=x_test[:128],
    )
    return {
        "kind": "compressed",
        "model": name,
        "accuracy": common.tflite_accuracy(path, x_test, y_test),
        "bytes": result.bytes,
        "gzip_bytes": result.gzip_bytes,
        "parity_top1": result.parity.top1_agreement,
        "file_sparsity": _file_sparsity(path),
        **extra,
    }


def _compressed_rows(
    keras, teacher, x, y, x_test, y_test, epochs: int, temperature: float, alpha: float
) -> list[dict]:
    """Teacher and scratch student vs a distilled, 80%-pruned student, then QAT, in int8."""
    try:
        import tfopt.pruning as pruning
        import tfopt.quantization as quantization
    except ImportError as err:  # the subpackages are developed in parallel
        return [{"kind": "compressed", "model": "unavailable", "error": str(err)}]

    steps = epochs * int(np.ceil(len(x) / common.BATCH_SIZE))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(_int8_row(teacher, "teacher", x, x_test, y_test, tmp))
        common.set_seed(keras, common.SEEDS[0])
        scratch = _model(keras, COMPRESSED_ARCH, "student")
        initial = scratch.get_weights()
        common.compile_cnn(scratch, keras)
        _fit(scratch, x, y, epochs, keras)
        rows.append(_int8_row(scratch, "scratch", x, x_test, y_test, tmp))

        common.set_seed(keras, common.SEEDS[0])
        student = _model(keras, COMPRESSED_ARCH, "student")
        student.set_weights(initial)
        schedule = pruning.PolynomialDecay(
            0.0, SPARSITY, begin_step=0, end_step=(2 * steps) // 3, frequency=10
        )
        pruned = pruning.prune_low_magnitude(student, pruning_schedule=schedule)
        distiller = _distiller(keras, teacher, pruned, temperature=temperature, alpha=alpha)
        distiller.fit(
            x,
            y,
            epochs=epochs,
            batch_size=common.BATCH_SIZE,
            callbacks=[pruning.UpdatePruningStep()],
            verbose=0,
        )
        stripped = pruning.strip_pruning(distiller.student)
        rows.append(
            _int8_row(
                stripped,
                "distilled_pruned",
                x,
                x_test,
                y_test,
                tmp,
                float_accuracy=common.keras_accuracy(stripped, x_test, y_test),
            )
        )

        qat_epochs = max(1, epochs // 5)
        qat_distiller = _distiller(
            keras,
            teacher,
            quantization.quantize_model(stripped, preserve_sparsity=True),
            temperature=temperature,
            alpha=alpha,
        )
        qat_distiller.compile(
            keras.optimizers.Adam(common.LEARNING_RATE / 10), _ce(keras), metrics=["accuracy"]
        )
        qat_distiller.fit(x, y, epochs=qat_epochs, batch_size=common.BATCH_SIZE, verbose=0)
        rows.append(
            _int8_row(
                qat_distiller.student,
                "distilled_pruned_qat",
                x,
                x_test,
                y_test,
                tmp,
                qat_epochs=qat_epochs,
            )
        )
    for row in rows[1:]:
        row["params"] = scratch.count_params()
        row["epochs"] = epochs
        row["temperature"], row["alpha"] = temperature, alpha
    rows[0]["params"] = teacher.count_params()
    return rows


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


def _student(row: dict) -> str:
    """The student a row is about (rows of runs before `STUDENTS` had two: "tiny")."""
    return row.get("student", "tiny")


def _mean_range(values) -> tuple[float, float, float]:
    values = list(values)
    return float(np.mean(values)), float(min(values)), float(max(values))


def _validation_tables(selection: list[dict]) -> tuple[list[str], dict]:
    """Markdown lines of the validation tables, and per variant the best scratch and
    distilled validation accuracy overall and per student recipe."""
    teachers, students, best = [], [], {}
    keys = [f"{t:g}/{a:g}" for t, a in GRID]
    for variant in dict.fromkeys(r["variant"] for r in selection):
        cells = {"variant": variant}
        for r in selection:
            if (
                r["variant"] == variant
                and r["model"] == "teacher"
                and f"teacher {r['recipe']}" not in cells
            ):
                cells[f"teacher {r['recipe']}"] = r["val_accuracy"]
                cells["val_samples"] = r.get("val_samples")
        teachers.append(cells)
    for variant, student in dict.fromkeys(
        (r["variant"], _student(r)) for r in selection if r["model"] != "teacher"
    ):
        rows = [
            r
            for r in selection
            if r["variant"] == variant and r["model"] != "teacher" and _student(r) == student
        ]
        scratch, distilled = {}, {}
        for recipe in dict.fromkeys(_run_key(r)[0] for r in rows):
            line = {"variant": variant, "student": student, "student_recipe": recipe}
            for r in rows:
                key = _run_key(r)
                if key[0] != recipe:
                    continue
                column = "scratch" if key[1] is None else f"{key[1][0]:g}/{key[1][1]:g}"
                line.setdefault(column, []).append(r["val_accuracy"])
            line["seeds"] = max(len(v) for v in line.values() if isinstance(v, list))
            line.update({k: float(np.mean(v)) for k, v in line.items() if isinstance(v, list)})
            students.append(line)
            if "scratch" in line:
                scratch[recipe] = line["scratch"]
            distilled.update({(recipe, k): line[k] for k in keys if k in line})
        if scratch and distilled:
            by_recipe = {
                recipe: (scratch[recipe], max(v for (r, _), v in distilled.items() if r == recipe))
                for recipe in scratch
                if any(r == recipe for r, _ in distilled)
            }
            best[(variant, student)] = (
                max(scratch.values()),
                max(distilled.values()),
                by_recipe,
            )
    lines = [
        common.markdown_table(
            teachers,
            [("variant", "Data", ""), ("val_samples", "Val images", "")]
            + [(f"teacher {r}", f"Teacher {r}", "pct") for r in TEACHER_RECIPES],
        ),
        "",
        common.markdown_table(
            students,
            [
                ("variant", "Data", ""),
                ("student", "Student", ""),
                ("student_recipe", "Student recipe", ""),
                ("seeds", "Seeds", ""),
                ("scratch", "Scratch", "pct"),
            ]
            + [(k, f"T/alpha {k}", "pct") for k in keys],
        ),
    ]
    return lines, best


def render(tfopt_rows: list[dict], tfmot_rows: list[dict]) -> str:
    accuracy = [r for r in tfopt_rows if r.get("kind") == "accuracy"]
    selection = [r for r in tfopt_rows if r.get("kind") == "selection"]
    lines = [
        "Students: the common digits CNN at widths "
        + "; ".join(f"{name} {arch}" for name, arch in STUDENTS.items())
        + f"; teacher: {TEACHER_ARCH}. Each student is compared with itself from scratch. "
        "Teacher and students: Adam (lr 1e-3, cosine decay to 0), batch "
        f"{common.BATCH_SIZE}, the epochs in the table. The teacher is trained on the labels, "
        "either plainly or with augmentation (random shifts of up to "
        f"{SHIFT_PIXELS} pixel, then mixup with a uniform mixing weight). Each student is "
        "trained with one of two recipes: plain (the training images and labels) or "
        "augmented (the teacher's augmentation: shifted, mixed-up images and mixed one-hot "
        "labels). Per seed the scratch and the distilled student start from the same "
        "initial weights, and students with the same recipe see the same batches in the "
        "same order. The distilled one is trained with `tfopt.distillation.Distiller`: soft "
        "loss (KL at temperature T, x T²) with weight alpha against the label loss (alpha=1: "
        "soft loss only), the teacher run on every batch, so with the augmented recipe it "
        "sees the very images the student sees (consistent teaching, Beyer et al. 2022). "
        "Accuracy on the test split.",
        "",
        (
            "Chosen per data set on validation data, never on the test split: the teacher "
            f"recipe ({' or '.join(TEACHER_RECIPES)}, by the teacher's validation accuracy); "
            "then, with that teacher, each arm its own best: the scratch arm its student "
            "recipe (by the scratch students' validation accuracy), the distilled arm its "
            f"student recipe, T and alpha ({len(STUDENT_RECIPES)} x {len(GRID)} choices, by the "
            "distilled students' validation accuracy); means over the seeds of the test runs, "
            "same initial weights. Validation data: for digits, the last "
            f"{VALIDATION_FRACTION:.0%} of each class of the training split (teacher and "
            "students trained without it, then retrained on the whole split for the test "
            f"runs); for harder, {HARDER_VALIDATION_PER_CLASS} other training-split images per "
            "class, noised alike, none of them among the training images."
            if selection
            else f"--quick: augmented teacher, {QUICK_STUDENT_RECIPE} student recipe for both "
            f"arms, T={TEMPERATURE:g}, alpha={ALPHA:g} (fixed; no selection)."
        ),
        "",
    ]
    table, gains, started = [], {}, {}
    for variant, student in dict.fromkeys(
        (r["variant"], _student(r)) for r in accuracy if r["model"] != "teacher"
    ):
        teacher = next(r for r in accuracy if r["variant"] == variant and r["model"] == "teacher")
        rows = [
            r
            for r in accuracy
            if r["variant"] == variant and r["model"] != "teacher" and _student(r) == student
        ]
        started.setdefault(student, set()).update(r["started"] for r in rows if "started" in r)
        scratch = [r for r in rows if r["model"] == "scratch"]
        distilled = [r for r in rows if r["model"] == "distilled"]
        s_mean, s_lo, s_hi = _mean_range(r["accuracy"] for r in scratch)
        d_mean, d_lo, d_hi = _mean_range(r["accuracy"] for r in distilled)
        wins = sum(d["accuracy"] > s["accuracy"] for d, s in zip(distilled, scratch))
        gains[(variant, student)] = d_mean - s_mean
        chosen = distilled[0]
        table.append(
            {
                "student": student,
                "scratch_recipe": scratch[0].get("student_recipe", "plain"),
                "distilled_choice": f"{chosen.get('student_recipe', 'plain')}, "
                f"T={chosen.get('temperature', TEMPERATURE):g}, "
                f"alpha={chosen.get('alpha', ALPHA):g}",
                "variant": f"{variant} ({teacher['train_samples']} train, "
                f"{teacher['epochs']} epochs)",
                "teacher": f"{100 * teacher['accuracy']:.1f}% "
                + (f"({teacher['recipe']}, " if "recipe" in teacher else "(")
                + f"{teacher['params']:,} params)",
                "scratch": f"{100 * s_mean:.1f}% ({100 * s_lo:.1f}–{100 * s_hi:.1f})",
                "distilled": f"{100 * d_mean:.1f}% ({100 * d_lo:.1f}–{100 * d_hi:.1f})",
                "gain": f"{100 * (d_mean - s_mean):+.1f} pts",
                "wins": f"{wins}/{len(scratch)}",
                "student_params": f"{rows[-1]['params']:,}",
            }
        )
    lines.append(
        common.markdown_table(
            table,
            [
                ("variant", "Data", ""),
                ("teacher", "Teacher", ""),
                ("student", "Student", ""),
                ("student_params", "Student params", ""),
                ("scratch_recipe", "Scratch: recipe", ""),
                ("distilled_choice", "Distilled: recipe, T, alpha", ""),
                ("scratch", "Student from scratch: mean (range)", ""),
                ("distilled", "Distilled student: mean (range)", ""),
                ("gain", "Gain", ""),
                ("wins", "Seeds where distilled > scratch", ""),
            ],
        )
    )
    if selection:
        tables, best = _validation_tables(selection)
        lines += [
            "",
            "Validation accuracy: each teacher recipe; then, with the chosen teacher, the "
            "scratch student and the distilled student per T/alpha for each student recipe "
            "(mean over the seeds of the test runs; ties go to the first recipe or pair in "
            "this order):",
            "",
            *tables,
        ]
        for (variant, student), (_, _, by_recipe) in best.items():
            parts = [
                f"{recipe}: scratch {100 * sv:.1f}%, distilled {100 * dv:.1f}% "
                f"({100 * (dv - sv):+.1f} pts)"
                for recipe, (sv, dv) in by_recipe.items()
            ]
            lines += [
                "",
                f"{variant}, {student} student, validation, best of each arm per student recipe: ",
            ]
            lines[-1] += "; ".join(parts) + "."
            plain, other = by_recipe.get("plain"), by_recipe.get("augmented")
            if plain and other and other[0] < plain[0] and other[1] < plain[1]:
                widened = other[1] - other[0] > plain[1] - plain[0]
                lines[-1] += (
                    " The augmented recipe (mixup, consistent teaching) "
                    + ("raised the distillation gain but " if widened else "")
                    + "lowered both arms' accuracy with this student and budget, so neither "
                    "arm chose it."
                )
        for (variant, student), (scratch_val, distilled_val, _) in best.items():
            test_gain = gains.get((variant, student))
            val_helped = distilled_val > scratch_val
            if val_helped and (test_gain is None or test_gain > 0):
                continue
            where = "on test" if val_helped else "on validation"
            lines += [
                "",
                f"On {variant}, the {student} student: distillation did not beat the scratch "
                f"student {where} (best "
                f"distilled validation {100 * distilled_val:.1f}% vs best scratch "
                f"{100 * scratch_val:.1f}%"
                + (f"; test gain {100 * test_gain:+.1f} pts" if test_gain is not None else "")
                + "). Reported as measured, not re-tuned on test.",
            ]
    if len({s for dates in started.values() for s in dates}) > 1:
        lines += [
            "",
            "The students' rows come from runs started at different times, same protocol "
            "and code path (TFOPT_BENCH_STUDENTS): "
            + "; ".join(f"{name}: {', '.join(sorted(d))}" for name, d in started.items())
            + ".",
        ]
    timing = [r for r in tfopt_rows if r.get("kind") == "timing"]
    if timing:
        t = timing[0]
        lines += [
            "",
            f"Epoch time (the tiny student {STUDENT_ARCH}; fastest steady epoch, digits, batch "
            f"{common.BATCH_SIZE}; ratios within one process):",
            "",
            common.markdown_table(
                [
                    {"mode": "student alone (labels)", "s": t["plain_epoch_s"], "x": 1.0},
                    {
                        "mode": "Distiller (teacher forward each step)",
                        "s": t["distill_epoch_s"],
                        "x": t["distill_overhead"],
                    },
                    {
                        "mode": "Distiller, cache_teacher_outputs=True",
                        "s": t["cached_epoch_s"],
                        "x": t["cached_overhead"],
                    },
                    {
                        "mode": "floor: student alone + teacher forward pass (see note)",
                        "s": t["plain_epoch_s"] + t["teacher_forward_s"],
                        "x": t["forward_floor"],
                    },
                ],
                [("mode", "Training", ""), ("s", "Seconds/epoch", ".3f"), ("x", "vs alone", "x")],
            ),
            "",
            "The teacher's forward pass over an epoch is timed alone: one compiled inference "
            "call per training batch, fastest of 5 passes. The cache runs the teacher once "
            "per `fit` (not per epoch), so its epochs can be as fast as the student's alone.",
        ]
        if t["distill_overhead"] < t["forward_floor"]:
            lines[-1] += (
                " This run's Distiller epochs took less than the student's plus the teacher's "
                "forward pass: inside one train step the teacher's forward does not depend on "
                "the student's, so TensorFlow can run the two at the same time on the 2 "
                "cores. The sum is a floor for the work done, not for wall time on an idle "
                "multi-core machine; on a loaded one the two serialize and the Distiller sits "
                "at or above it."
            )
    compressed = [r for r in tfopt_rows if r.get("kind") == "compressed"]
    if compressed:
        budget = next((r for r in compressed if "epochs" in r and "temperature" in r), None)
        lines += [
            "",
            f"Compressed student (digits): the common CNN {COMPRESSED_ARCH} distilled from the "
            "digits teacher above"
            + (
                f" ({budget['epochs']} epochs at a constant learning rate, "
                f"T={budget['temperature']:g}, alpha={budget['alpha']:g})"
                if budget
                else ""
            )
            + f" while pruned to {SPARSITY:.0%} (PolynomialDecay over the first 2/3 of "
            "training, tfopt.pruning), stripped, exported to int8 TFLite; then fine-tuned as a "
            "QAT model with `tfopt.quantization.quantize_model(..., preserve_sparsity=True)` "
            "(the pruned zeros stay at zero; still distilling, lr/10) and exported again. "
            "Every file is full-integer int8 from tfopt.export.to_tflite; accuracy is LiteRT's "
            "on the test split (first seed). Kernel zeros are counted in the int8 weight "
            "tensors read back from each file (rounding to int8 can add a few zeros).",
            "",
        ]
        if "error" in compressed[0]:
            lines.append(f"Not run: {compressed[0]['error']}")
        else:
            names = {
                "teacher": "teacher, int8 PTQ",
                "scratch": "student from scratch, int8 PTQ",
                "distilled_pruned": "distilled + pruned student, int8 PTQ",
                "distilled_pruned_qat": "distilled + pruned student, + QAT, int8",
            }
            table = [
                {
                    **r,
                    "name": names.get(r["model"], r["model"]),
                    "params": f"{r.get('params', 0):,}",
                }
                for r in compressed
            ]
            lines.append(
                common.markdown_table(
                    table,
                    [
                        ("name", "Model", ""),
                        ("params", "Params", ""),
                        ("accuracy", "int8 accuracy", "pct"),
                        ("file_sparsity", "Kernel zeros (int8 file)", "pct"),
                        ("bytes", "File", "kb"),
                        ("gzip_bytes", "gzip", "kb"),
                        ("parity_top1", "Top-1 parity vs Keras", "pct"),
                    ],
                )
            )
            qat = next((r for r in compressed if r["model"] == "distilled_pruned_qat"), None)
            if qat is not None and qat["file_sparsity"] < SPARSITY - 0.01:
                lines += [
                    "",
                    f"The QAT file kept only {qat['file_sparsity']:.0%} zeros (pruned to "
                    f"{SPARSITY:.0%}): sparsity was not preserved through QAT.",
                ]
    return "\n".join(lines)
