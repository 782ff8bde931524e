"""The distillation suite's section of BENCHMARKS.md; its prose is templates/distillation.md."""

from __future__ import annotations

import numpy as np

from benchmarks import common
from benchmarks.distillation.config import (
    ALPHA,
    COMPRESSED_ARCH,
    GRID,
    HARDER_VALIDATION_PER_CLASS,
    QUICK_STUDENT_RECIPE,
    SHIFT_PIXELS,
    SPARSITY,
    STUDENT_ARCH,
    STUDENT_RECIPES,
    STUDENTS,
    TEACHER_ARCH,
    TEACHER_RECIPES,
    TEMPERATURE,
    VALIDATION_FRACTION,
)
from benchmarks.distillation.selection import _run_key
from benchmarks.harness.templates import Prose

_PROSE = Prose("distillation")  # benchmarks/templates/distillation.md
# The compressed-student table's names of its models.
_COMPRESSED_NAMES = {
    "teacher": "teacher, int8 PTQ",
    "scratch": "student from scratch, int8 PTQ",
    "distilled_pruned": "distilled + pruned student, int8 PTQ",
    "distilled_pruned_qat": "distilled + pruned student, + QAT, int8",
}


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
    """The section: methods, test accuracy per student, validation, epoch time, compressed."""
    accuracy = [r for r in tfopt_rows if r.get("kind") == "accuracy"]
    selection = [r for r in tfopt_rows if r.get("kind") == "selection"]
    lines = [_methods(), "", _choices(bool(selection)), ""]
    table, gains, started = _test_table(accuracy)
    lines.append(table)
    if selection:
        lines += _validation(selection, gains)
    if len({s for dates in started.values() for s in dates}) > 1:
        runs = "; ".join(f"{name}: {', '.join(sorted(d))}" for name, d in started.items())
        lines += ["", _PROSE("merged_runs", runs=runs)]
    timing = [r for r in tfopt_rows if r.get("kind") == "timing"]
    if timing:
        lines += _timing(timing[0])
    compressed = [r for r in tfopt_rows if r.get("kind") == "compressed"]
    if compressed:
        lines += _compressed(compressed)
    return "\n".join(lines)


def _methods() -> str:
    return _PROSE(
        "methods",
        students="; ".join(f"{name} {arch}" for name, arch in STUDENTS.items()),
        teacher=TEACHER_ARCH,
        batch=common.BATCH_SIZE,
        shift=SHIFT_PIXELS,
    )


def _choices(selected: bool) -> str:
    """How the recipes, T and alpha were chosen (on validation), or fixed (--quick)."""
    if not selected:
        return _PROSE(
            "quick",
            recipe=QUICK_STUDENT_RECIPE,
            temperature=f"{TEMPERATURE:g}",
            alpha=f"{ALPHA:g}",
        )
    return _PROSE(
        "selection",
        teacher_recipes=" or ".join(TEACHER_RECIPES),
        recipes=len(STUDENT_RECIPES),
        pairs=len(GRID),
        fraction=f"{VALIDATION_FRACTION:.0%}",
        harder_images=HARDER_VALIDATION_PER_CLASS,
    )


def _test_table(accuracy: list[dict]) -> tuple[str, dict, dict]:
    """The test-accuracy table (a row per variant and student), the gain in accuracy of
    each, and the start times of the runs each student's rows come from."""
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
    markdown = common.markdown_table(
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
    return markdown, gains, started


def _validation(selection: list[dict], gains: dict) -> list[str]:
    """The validation tables, each arm's best per student recipe, and a plain note
    wherever distillation did not win on validation or on test."""
    tables, best = _validation_tables(selection)
    lines = ["", _PROSE("validation"), "", *tables]
    for (variant, student), (_, _, by_recipe) in best.items():
        recipes = "; ".join(
            f"{recipe}: scratch {100 * sv:.1f}%, distilled {100 * dv:.1f}% "
            f"({100 * (dv - sv):+.1f} pts)"
            for recipe, (sv, dv) in by_recipe.items()
        )
        lines += ["", _PROSE("validation_best", variant=variant, student=student, recipes=recipes)]
        plain, other = by_recipe.get("plain"), by_recipe.get("augmented")
        if plain and other and other[0] < plain[0] and other[1] < plain[1]:
            widened = other[1] - other[0] > plain[1] - plain[0]
            lines[-1] += " " + _PROSE("augmented_raised_gain" if widened else "augmented_lowered")
    for (variant, student), (scratch_val, distilled_val, _) in best.items():
        test_gain = gains.get((variant, student))
        val_helped = distilled_val > scratch_val
        if val_helped and (test_gain is None or test_gain > 0):
            continue
        note = _PROSE(
            "no_gain",
            variant=variant,
            student=student,
            where="on test" if val_helped else "on validation",
            distilled=f"{100 * distilled_val:.1f}%",
            scratch=f"{100 * scratch_val:.1f}%",
            test_gain=""
            if test_gain is None
            else _PROSE("test_gain", gain=f"{100 * test_gain:+.1f}"),
        )
        lines += ["", note]
    return lines


def _timing(t: dict) -> list[str]:
    """The epoch-time table of the timing row `t`, and what its floor means."""
    table = common.markdown_table(
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
    )
    note = _PROSE("timing_note")
    if t["distill_overhead"] < t["forward_floor"]:
        note += " " + _PROSE("timing_parallel")
    return ["", _PROSE("timing", arch=STUDENT_ARCH, batch=common.BATCH_SIZE), "", table, "", note]


def _compressed(compressed: list[dict]) -> list[str]:
    """The compressed student's recipe and int8 files, or why it did not run."""
    budget = next((r for r in compressed if "epochs" in r and "temperature" in r), None)
    budget_text = ""
    if budget:
        budget_text = " " + _PROSE(
            "compressed_budget",
            epochs=budget["epochs"],
            temperature=f"{budget['temperature']:g}",
            alpha=f"{budget['alpha']:g}",
        )
    intro = _PROSE(
        "compressed", arch=COMPRESSED_ARCH, budget=budget_text, sparsity=f"{SPARSITY:.0%}"
    )
    lines = ["", intro, ""]
    if "error" in compressed[0]:
        return [*lines, _PROSE("not_run", error=compressed[0]["error"])]
    table = [
        {
            **r,
            "name": _COMPRESSED_NAMES.get(r["model"], r["model"]),
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
        kept = f"{qat['file_sparsity']:.0%}"
        lines += ["", _PROSE("sparsity_lost", kept=kept, sparsity=f"{SPARSITY:.0%}")]
    return lines
