"""Training the models of the protocol: the teacher, a Distiller, students that share
their initial weights and batches. Keras arrives as an argument; tfopt is imported
only when a Distiller is built."""

from __future__ import annotations

import math
import os

from benchmarks import common
from benchmarks.distillation.config import (
    ALPHA,
    EPOCHS,
    STUDENT_ARCH,
    STUDENTS,
    TEACHER_ARCH,
    TEMPERATURE,
)
from benchmarks.distillation.data import _stream


def _epochs(quick: bool) -> int:
    return common.epochs(quick) if quick else EPOCHS


def _model(keras, arch: dict, name: str):
    return common.build_cnn(keras, name=name, **arch)


def _ce(keras):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _fit(model, x, y, epochs: int, keras):
    timer = common.epoch_times(keras)
    model.fit(x, y, epochs=epochs, batch_size=common.BATCH_SIZE, callbacks=[timer], verbose=0)
    return timer


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
