"""benchmarks/sparse: its render() on rows of the shape its sides return."""

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _suite():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("benchmarks.suite_sparse")


def _rows(side, ratio):
    # Synthetic rows (shape only; the numbers are placeholders, not results).
    rows = [{"kind": "machine", "side": side, "avx": True, "avx2": False}]
    for target in (0.0, 0.5, 0.75, 0.9):
        rows.append({"kind": "model", "side": side, "sparsity": target,
                     "pointwise_sparsity": target, "params": 1000})  # fmt: skip
        for encoding, size in (("dense", 4096), ("sparse", 2048)):
            rows.append({"kind": "file", "side": side, "sparsity": target, "encoding": encoding,
                         "bytes": size, "gzip_bytes": size // 2,
                         "densify_ops": 6 if encoding == "sparse" and target else 0,
                         "conv_ops": 7})  # fmt: skip
        rows.append({"kind": "latency", "side": side, "sparsity": target, "rounds": 3,
                     "runs": 100, "dense_ms": 1.0, "sparse_ms": 1.0, "ratio_median": ratio,
                     "ratio_min": 0.9, "ratio_max": 1.1, "delegate_nodes": 1,
                     "delegate_takes_input": True, "delegate_ends_at": "CONV_2D #21",
                     "ops_after_delegate": 4, "densify_from_outside": 0})  # fmt: skip
    rows.append({"kind": "memory", "side": side, "peak_rss_mb": 900.0})
    return rows


def test_render_has_both_tables_and_the_evidence():
    suite = _suite()
    text = suite.render(_rows("tfopt", 1.01), _rows("tfmot", 0.99))
    for needle in (
        "| 90% | tfopt | 90.0% | 6 |",
        "| 90% | tfmot |",
        "1.01x",
        "0.99x",
        "model input -> CONV_2D #21 (4 ops after it); DENSIFY outside: 0",
        "| 4.0 KiB | 2.0 KiB | 2.0 KiB | 1.0 KiB |",
        "AVX: yes, AVX2: no",
        "xnn_is_chw_compatible_config",
    ):
        assert needle in text, needle
    assert "$" not in text  # every placeholder filled


def test_render_without_tfmot_rows():
    text = _suite().render(_rows("tfopt", 1.0), [])
    assert "| 50% | tfopt |" in text and "tfmot |" not in text
