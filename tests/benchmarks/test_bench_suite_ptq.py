"""benchmarks/suite_ptq.py: rendering of its rows (the real run is `benchmarks/run.py`)."""

from pathlib import Path

from benchmarks.harness.discovery import load_suite

REPO_ROOT = Path(__file__).resolve().parents[2]
ptq = load_suite("ptq", REPO_ROOT / "benchmarks")


def _rows(acc, float_ms, int8_ms, fastest_s, rss):
    # Made-up figures, chosen so that each rendered cell is easy to recognise.
    return [
        {
            "variant": "training",
            "epochs": 30,
            "seeds": 3,
            "epoch_s": 0.5,
            "first_epoch_s": 1.5,
            "fastest_epoch_s": fastest_s,
            "keras_test_acc": acc,
            "peak_rss_mb": rss,
        },
        {
            "variant": "float32",
            "test_acc": acc,
            "test_acc_min": acc - 0.01,
            "test_acc_max": acc + 0.01,
            "acc_change_vs_float": 0.0,
            "bytes": 2048,
            "gzip_bytes": 1024,
            "latency_ms": float_ms,
            "latency_vs_float": 1.0,
            "convert_s": 1.0,
            "parity_max_abs_error": 1e-6,
        },
        {
            "variant": "int8",
            "test_acc": acc - 0.005,
            "test_acc_min": acc - 0.02,
            "test_acc_max": acc,
            "acc_change_vs_float": -0.005,
            "bytes": 512,
            "gzip_bytes": 400,
            "latency_ms": int8_ms,
            "latency_vs_float": int8_ms / float_ms,
            "convert_s": 2.0,
        },
    ]


def test_render_both_sides():
    md = ptq.render(_rows(0.98, 0.01, 0.005, 0.2, 700.0), _rows(0.97, 0.02, 0.02, 0.1, 800.0))
    lines = md.splitlines()
    assert (
        "| float32 | tfopt | 98.0% | 97.0–99.0% | +0.00 | 2.0 KiB | 1.0 KiB | 0.0100 | 1.00x "
        "| 1.00 |" in lines
    )
    assert (
        "| int8 | tfopt | 97.5% | 96.0–98.0% | -0.50 | 0.5 KiB | 0.4 KiB | 0.0050 | 0.50x "
        "| 2.00 |" in lines
    )
    assert "| tfmot | 30 | 3 | 97.0% | 1.50 | 0.500 | 0.100 | 800 |" in lines
    assert "over 3 training seed(s)" in md
    # 0.2 s / 0.1 s fastest epochs and 700 / 800 MiB.
    assert "tfmot (tf_keras): 2.00x; peak RSS tfopt/tfmot: 0.88x." in md
    assert "float32 1.00e-06, int8 —" in md


def test_render_with_a_failed_side():
    md = ptq.render(_rows(0.98, 0.01, 0.005, 0.2, 700.0), [])
    assert "| int8 | tfopt |" in md and "| tfmot |" not in md
    assert "tfmot (tf_keras): —" in md
