"""benchmarks/suite_distillation.py: render() on hand-made rows (no training, no TensorFlow)."""

import importlib.util
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[2] / "benchmarks" / "suite_distillation.py"


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("suite_distillation", SUITE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_render_reports_mean_range_gain_and_wins(suite):
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
def test_render_reports_int8_file_sparsity_of_the_qat_student(suite, qat_sparsity, warned):
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


# Choices, validation tables and the "did not beat" note:
# tests/benchmarks/test_bench_suite_distillation.py.
