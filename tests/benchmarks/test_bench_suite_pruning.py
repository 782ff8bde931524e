"""benchmarks/pruning: its render() on rows of the shape its sides return, its schedule."""

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _suite():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("benchmarks.suite_pruning")


def _rows(acc80):
    # Synthetic rows (shape only; the numbers are placeholders, not results).
    rows = [
        {"kind": "float", "seeds": 1, "epochs": 3, "keras_acc": 0.9, "keras_acc_min": 0.9,
         "keras_acc_max": 0.9},
        {"kind": "tflite", "sparsity": 0.0, "encoding": "dense", "bytes": 2048,
         "gzip_bytes": 1024, "tflite_acc": 0.9},
        {"kind": "speed", "rounds": 3, "float_epoch_s": 0.5, "pruned_epoch_s": 0.55,
         "ratio_fastest": 1.1, "ratio_median": 1.05, "cpu_ratio": 1.07, "peak_rss_mb": 800.0},
    ]  # fmt: skip
    for target in (0.5, 0.8, 0.9):
        rows.append({"kind": "accuracy", "sparsity": target, "fine_tune_epochs": 2,
                     "keras_acc": acc80, "keras_acc_min": acc80, "keras_acc_max": acc80,
                     "achieved_sparsity": target})  # fmt: skip
        for encoding in ("dense", "sparse"):
            rows.append({"kind": "tflite", "sparsity": target, "encoding": encoding,
                         "bytes": 1024, "gzip_bytes": 512, "tflite_acc": acc80})  # fmt: skip
    return rows


def test_render_has_every_table():
    suite = _suite()
    text = suite.render(_rows(0.85), _rows(0.8))
    assert suite.TITLE == "Pruning: tfopt vs tfmot"
    for needle in ("| 80% | tfopt | 85.0%", "| 80% | tfmot | 80.0%", "| sparse |", "1.07x",
                   "2.0 KiB", "fine-tune budget (2 epochs"):  # fmt: skip
        assert needle in text, needle


def test_render_with_a_crashed_side():
    text = _suite().render(_rows(0.85), [])
    assert "| 80% | tfopt |" in text and "tfmot" in text


def test_schedule_is_the_same_for_both_sides():
    protocol = importlib.import_module("benchmarks.pruning.protocol")
    kwargs = protocol._schedule_kwargs(steps_per_epoch=45, epochs=10, target=0.8)
    assert kwargs == {
        "initial_sparsity": 0.0,
        "final_sparsity": 0.8,
        "begin_step": 0,
        "end_step": 225,
        "frequency": 11,
    }  # fmt: skip  (450 steps / 2; 45 // 4)
