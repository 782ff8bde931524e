"""Choices on validation data: the teacher recipe, then each arm's student recipe (and the
distilled arm's T and alpha). The test split is never looked at."""

from __future__ import annotations

import math

import numpy as np

from benchmarks import common
from benchmarks.distillation.config import (
    GRID,
    STUDENT_RECIPES,
    STUDENTS,
    TEACHER_RECIPES,
)
from benchmarks.distillation.data import _validation_split
from benchmarks.distillation.training import _student_names, _students, _train_teacher


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
