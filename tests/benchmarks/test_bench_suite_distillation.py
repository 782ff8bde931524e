"""benchmarks/distillation/: its stream, choice and rendering helpers on tiny data.

The real run is `benchmarks/run.py --suites distillation`; every figure here is made up.
"""

from pathlib import Path

import numpy as np
import pytest

from benchmarks.distillation import config, data, selection, training
from benchmarks.harness.discovery import load_suite

REPO_ROOT = Path(__file__).resolve().parents[2]
suite = load_suite("distillation", REPO_ROOT / "benchmarks")


def _tiny(n=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 8, 8, 1)).astype("float32")
    y = np.arange(n) % 10
    return x, y


def test_stream_same_seed_same_batches():
    x, y = _tiny()
    for augment in (False, True):
        xs1, ys1 = data._stream(x, y, 3, seed=7, augment=augment)
        xs2, ys2 = data._stream(x, y, 3, seed=7, augment=augment)
        np.testing.assert_array_equal(xs1, xs2)
        np.testing.assert_array_equal(ys1, ys2)
        assert xs1.shape == (3 * len(x), 8, 8, 1)


def test_stream_plain_is_permutations_augmented_mixes_labels():
    x, y = _tiny()
    _, ys = data._stream(x, y, 2, seed=1)
    assert ys.shape == (2 * len(y),)
    for epoch in range(2):  # each pass holds every label exactly once
        assert sorted(ys[epoch * len(y) : (epoch + 1) * len(y)]) == sorted(y)
    xa, ya = data._stream(x, y, 2, seed=1, augment=True)
    assert ya.shape == (2 * len(y), 10)
    np.testing.assert_allclose(ya.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(ya >= 0)
    assert np.mean(ya.max(axis=1) < 1.0) > 0.5  # mixup with U(0, 1) weights: mostly mixed
    assert xa.min() >= 0.0 and xa.max() <= 1.0  # convex blends of shifted [0, 1] images


def _student_rows(scores):
    """Selection rows from {(recipe, pair or None): [val accuracy per seed]}."""
    rows = []
    for (recipe, pair), values in scores.items():
        for seed, value in enumerate(values):
            row = {"model": "scratch", "student_recipe": recipe, "seed": seed}
            if pair is not None:
                row.update(model="distilled", temperature=pair[0], alpha=pair[1])
            rows.append({**row, "kind": "selection", "variant": "digits", "val_accuracy": value})
    return rows


def test_choose_each_arm_by_its_own_mean():
    scores = {
        ("plain", None): [0.90, 0.90],
        ("augmented", None): [0.95, 0.93],  # scratch's best mean: augmented
        ("plain", (2.0, 0.9)): [0.99, 0.80],  # best single seed, worse mean (0.895)
        ("augmented", (4.0, 1.0)): [0.96, 0.96],  # distilled's best mean
        ("augmented", (1.0, 0.5)): [0.94, 0.94],
    }
    scratch, distilled = selection._choose(_student_rows(scores))
    assert scratch == "augmented"
    assert distilled == ("augmented", 4.0, 1.0)


def test_choose_ties_go_to_first_recipe_and_pair():
    pairs = config.GRID
    scores = {(r, None): [0.9] for r in config.STUDENT_RECIPES}
    scores.update({(r, p): [0.95] for r in config.STUDENT_RECIPES for p in pairs})
    scratch, distilled = selection._choose(_student_rows(scores))
    assert scratch == config.STUDENT_RECIPES[0]
    assert distilled == (config.STUDENT_RECIPES[0], *pairs[0])


def test_choose_rejects_rows_without_distilled_students():
    with pytest.raises(ValueError, match="Argument `rows`"):
        selection._choose(_student_rows({("plain", None): [0.9]}))


def test_students_share_initial_weights_and_batches_per_recipe():
    # The augmented recipe gives the Distiller dense mixed labels with a categorical
    # cross-entropy student loss. alpha=0 leaves only that label loss: from the same
    # initial weights on the same batches it must end where the scratch student ends.
    import keras

    x, y = _tiny(40)
    keras.utils.set_random_seed(0)
    teacher = training._model(keras, config.STUDENT_ARCH, "teacher")
    keras.utils.set_random_seed(3)
    initial = training._model(keras, config.STUDENT_ARCH, "student").get_weights()
    runs = [("augmented", None), ("augmented", (2.0, 0.0)), ("augmented", (2.0, 1.0))]
    models = training._students(keras, teacher, x, y, epochs=2, seed=3, runs=runs)
    assert list(models) == runs
    scratch, label_only, pure = (models[r].get_weights() for r in runs)
    for weights in (scratch, pure):
        assert all(np.all(np.isfinite(w)) for w in weights)
        assert any(not np.array_equal(w, w0) for w, w0 in zip(weights, initial))
    for a, b in zip(scratch, label_only):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert any(not np.allclose(a, b, atol=1e-3) for a, b in zip(scratch, pure))


def _render_rows(test_gain, augmented_scratch=(0.96, 0.97)):
    rows = [
        {"kind": "selection", "variant": "digits", "model": "teacher", "recipe": r}
        | {"seed": 1, "val_samples": 287, "val_accuracy": acc}
        for r, acc in (("plain", 0.99), ("augmented", 0.997))
    ]
    scores = {(r, None): [0.96, 0.97] for r in config.STUDENT_RECIPES}
    scores[("augmented", None)] = list(augmented_scratch)
    scores.update({(r, p): [0.95, 0.95] for r in config.STUDENT_RECIPES for p in config.GRID})
    scores[("augmented", (2.0, 1.0))] = [0.98, 0.99]
    rows += _student_rows(scores)
    common = {"kind": "accuracy", "variant": "digits", "train_samples": 1438, "epochs": 100}
    rows.append({**common, "model": "teacher", "recipe": "augmented", "params": 151306})
    rows[-1]["accuracy"] = 0.989
    for seed in (1, 2):
        rows.append({**common, "model": "scratch", "student_recipe": "plain", "seed": seed})
        rows[-1].update(params=2570, accuracy=0.95)
        rows.append({**common, "model": "distilled", "student_recipe": "augmented"})
        rows[-1].update(seed=seed, params=2570, accuracy=0.95 + test_gain)
        rows[-1].update(temperature=2.0, alpha=1.0)
    return rows


def test_render_states_each_arms_choice_and_validation_table():
    md = suite.render(_render_rows(test_gain=0.02), [])
    assert (
        "| digits (1438 train, 100 epochs) | 98.9% (augmented, 151,306 params) | tiny | 2,570 "
        "| plain "
        "| augmented, T=2, alpha=1 | 95.0% (95.0–95.0) | 97.0% (97.0–97.0) | +2.0 pts | 2/2 |"
    ) in md
    assert "| digits | 287 | 99.0% | 99.7% |" in md
    assert "| digits | tiny | augmented | 2 | 96.5% |" in md
    assert "98.5%" in md  # the (augmented, T=2, alpha=1) validation mean
    assert "did not beat" not in md
    assert (
        "digits, tiny student, validation, best of each arm per student recipe: plain: "
        "scratch 96.5%, "
        "distilled 95.0% (-1.5 pts); augmented: scratch 96.5%, distilled 98.5% (+2.0 pts)."
    ) in md
    assert "neither arm chose it" not in md


def test_render_notes_when_the_augmented_recipe_lowers_both_arms():
    rows = _render_rows(test_gain=0.02, augmented_scratch=(0.90, 0.90))
    for r in rows:  # augmented distilled students below the plain ones (95.0%)
        if r.get("student_recipe") == "augmented" and r["model"] == "distilled":
            r["val_accuracy"] = 0.93 if (r["temperature"], r["alpha"]) == (2.0, 1.0) else 0.91
    md = suite.render(rows, [])
    assert "augmented: scratch 90.0%, distilled 93.0% (+3.0 pts)." in md
    assert (
        "The augmented recipe (mixup, consistent teaching) raised the distillation gain but "
        "lowered both arms' accuracy with this student and budget, so neither arm chose it."
    ) in md


def test_render_says_plainly_when_the_test_gain_is_missing():
    md = suite.render(_render_rows(test_gain=-0.01), [])
    assert (
        "On digits, the tiny student: distillation did not beat the scratch student on test" in md
    )
    assert "best distilled validation 98.5% vs best scratch 96.5%; test gain -1.0 pts" in md


def test_render_gives_each_student_its_row_and_dates_merged_runs():
    rows = _render_rows(test_gain=0.02)
    for r in rows:
        if r["kind"] == "accuracy" and r["model"] != "teacher":
            r["started"] = "2026-11-28 13:00 UTC"
    small = [
        {**r, "student": "small", "params": 38282, "started": "2026-11-28 14:00 UTC"}
        for r in rows
        if r["kind"] == "accuracy" and r["model"] != "teacher"
    ]
    md = suite.render(rows + small, [])
    table = [line for line in md.splitlines() if line.startswith("| digits (1438 train")]
    assert [line.split(" | ")[2:4] for line in table] == [["tiny", "2,570"], ["small", "38,282"]]
    assert "tiny: 2026-11-28 13:00 UTC; small: 2026-11-28 14:00 UTC" in md


def test_student_names_from_the_environment(monkeypatch):
    monkeypatch.setenv("TFOPT_BENCH_STUDENTS", "small")
    assert training._student_names() == ["small"]
    monkeypatch.delenv("TFOPT_BENCH_STUDENTS")
    assert training._student_names() == list(config.STUDENTS)
    monkeypatch.setenv("TFOPT_BENCH_STUDENTS", "huge")
    with pytest.raises(ValueError, match=r"unknown students \['huge'\]"):
        training._student_names()


# render() on hand-made rows of the accuracy, timing and compressed-student kinds.


def _acc(variant, model, seed, accuracy):
    return {
        "kind": "accuracy",
        "variant": variant,
        "model": model,
        "seed": seed,
        "train_samples": 200,
        "epochs": 90,
        "params": 2570 if model != "teacher" else 151306,
        "accuracy": accuracy,
    }


def test_render_reports_mean_range_gain_and_wins():
    rows = [
        _acc("harder", "teacher", 1, 0.80),
        _acc("harder", "scratch", 1, 0.50),
        _acc("harder", "distilled", 1, 0.56),
        _acc("harder", "scratch", 2, 0.60),
        _acc("harder", "distilled", 2, 0.58),
        {
            "kind": "timing",
            "plain_epoch_s": 0.2,
            "distill_epoch_s": 0.3,
            "cached_epoch_s": 0.21,
            "teacher_forward_s": 0.05,
            "distill_overhead": 1.5,
            "cached_overhead": 1.05,
            "forward_floor": 1.25,
        },
        {"kind": "compressed", "model": "unavailable", "error": "no module named x"},
    ]
    text = suite.render(rows, [])
    # scratch mean (0.50 + 0.60) / 2 = 55.0%, distilled (0.56 + 0.58) / 2 = 57.0%: +2.0 pts.
    assert "55.0% (50.0–60.0)" in text
    assert "57.0% (56.0–58.0)" in text
    assert "+2.0 pts" in text
    assert "| 1/2 |" in text  # distilled beat scratch on seed 1 only
    assert "1.50x" in text and "1.05x" in text and "1.25x" in text
    assert "Not run: no module named x" in text
    assert suite.run_tfmot(True) == []


def _compressed(model, file_sparsity):
    return {
        "kind": "compressed",
        "model": model,
        "accuracy": 0.9,
        "bytes": 45_000,
        "gzip_bytes": 16_000,
        "parity_top1": 1.0,
        "file_sparsity": file_sparsity,
        "params": 38282,
    }


@pytest.mark.parametrize("qat_sparsity, warned", [(0.801, False), (0.28, True)])
def test_render_reports_int8_file_sparsity_of_the_qat_student(qat_sparsity, warned):
    rows = [
        _acc("digits", "teacher", 1, 0.98),
        _acc("digits", "scratch", 1, 0.94),
        _acc("digits", "distilled", 1, 0.95),
        _compressed("teacher", 0.004),
        _compressed("distilled_pruned", 0.802),
        _compressed("distilled_pruned_qat", qat_sparsity),
    ]
    text = suite.render(rows, [])
    assert "Kernel zeros (int8 file)" in text
    qat_line = next(line for line in text.splitlines() if "+ QAT, int8" in line)
    assert f"{100 * qat_sparsity:.1f}%" in qat_line
    assert ("sparsity was not preserved through QAT" in text) == warned
