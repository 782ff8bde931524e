"""benchmarks/int8_profile: its render() on rows of the shape its side returns, the
matching of profiled ops to layers, and the profiler's event splitting. No TensorFlow."""

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _import(name):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(name)


def _network():
    return _import("benchmarks.int8_profile.network")


def _blocks():
    n = _network()
    return [
        n.Block("stem", (8, 8, 3), (4, 4, 8), kernel=3, stride=2),
        n.Block("depthwise_s1", (4, 4, 8), (4, 4, 8), kernel=3),
        n.Block("project", (4, 4, 8), (4, 4, 8)),
        n.Block("add", (4, 4, 8), (4, 4, 8)),
        n.Block("pool", (4, 4, 8), (8,)),
        n.Block("classifier", (8,), (10,)),
    ]


def _node(precision, index, tag, op, block, ms, delegated=True):
    blocks = _blocks()
    b = blocks[block] if block is not None else None
    return {"kind": "node", "precision": precision, "index": index, "tag": tag,
            "delegated": delegated, "op": op, "block": block,
            "shape": b.key.split(" ", 1)[1] if b else None,
            "macs": b.macs() if b else 192,
            "values": (b.weights() + b.activations()) if b else 384, "ms": ms}  # fmt: skip


def _rows():
    # Synthetic rows (shape only; the numbers are placeholders, not results). int8 is
    # 0.25x float for everything but the depthwise convolution (1.0x), so the depthwise
    # row holds the whole gap to the limit.
    rows = [{"kind": "setup", "size": 8, "alpha": 1.0, "classes": 10, "rounds": 2, "runs": 5,
             "warmup": 1, "calibration": 4, "blocks": 6, "params": 100, "macs": 4000}]  # fmt: skip
    ops = [("stem", 0, 0.4), ("depthwise_s1", 1, 0.2), ("project", 2, 0.8), ("add", 3, 0.04),
           ("pool", 4, 0.04), ("classifier", 5, 0.08)]  # fmt: skip
    for i, (op, block, ms) in enumerate(ops):
        rows.append(_node("float", i, "Float op", op, block, ms))
    rows.append(_node("int8", 0, "Convert (NC)", "quantize", None, 0.01))
    for i, (op, block, ms) in enumerate(ops):
        ratio = 1.0 if op == "depthwise_s1" else 0.25
        rows.append(_node("int8", i + 1, "Int8 op", op, block, ms * ratio))
    rows.append(_node("int8", 7, "SOFTMAX", "classifier", 5, 0.0, delegated=False))
    for p, invoke, ops_ms in (("float", 1.6, 1.56), ("int8", 0.56, 0.54)):
        rows.append({"kind": "whole", "precision": p, "profiled_runs": 10, "quiet_runs": 5,
                     "invoke_ms": invoke, "ops_ms": ops_ms, "unmatched": 0,
                     "interpreter_ms": invoke - 0.01, "bytes": 1000, "convert_s": 1.0,
                     "ops": 7, "quantize_ops": 1 if p == "int8" else 0,
                     "dequantize_ops": 0, "op_counts": "CONV_2D 2"})  # fmt: skip
    rows.append({"kind": "memory", "peak_rss_mb": 900.0})
    return rows


def test_render_computes_the_findings_from_the_rows():
    suite = _import("benchmarks.suite_int8_profile")
    text = suite.render(_rows(), [])
    for needle in (
        # depthwise: 0.2 ms float, 0.2 ms int8 -> 1.00x; gap 0.2 - 0.05 = 0.15 ms, all of it.
        "| 3x3 depthwise s1 | 1 |",
        "| 0.200 | 0.200 | 1.00x |",
        "- 3x3 depthwise s1 (x1): ",
        "at 1.00x float32",
        "0.150 ms over 0.25x float32",
        # the whole runs: 0.56 / 1.6 = 0.35x; limit 0.4 ms, gap 0.16 ms.
        "(0.35x); at the 0.25x limit it would take 0.400 ms, so the gap is 0.160 ms",
        "outside XNNPACK: SOFTMAX",
        "| QUANTIZE (model input) | 1 |",
        "| int8 / float32 |",
    ):
        assert needle in text, needle
    assert "$" not in text  # every placeholder filled
    # The kind with the largest gap comes first among the findings.
    findings = [line for line in text.splitlines() if line.startswith("- ")]
    assert findings[0].startswith("- 3x3 depthwise s1")


def test_kind_rows_shares_add_up():
    render = _import("benchmarks.int8_profile.render")
    table = render.kind_rows(_rows())
    assert abs(sum(r["int8_share"] for r in table) - 1.0) < 1e-9
    assert abs(sum(r["gap_share"] for r in table) - 1.0) < 1e-9
    depthwise = next(r for r in table if r["op"] == "depthwise_s1")
    assert abs(depthwise["ratio"] - 1.0) < 1e-9


def test_attribute_matches_ops_to_layers_in_order():
    n = _network()
    tags = [
        "Convert (NC)",
        "Convolution (NHWC, QC8) IGEMM",
        "Convolution (NHWC, QC8) DWConv",
        "Fully Connected (NC, QS8, QC8W) GEMM",
        "Add (ND)",
        "Mean (ND) Reduce",
        "Static Reshape (NC)",
        "Fully Connected (NC, QS8, QC8W) GEMM",
        "SOFTMAX",
        "Convert (NC)",
    ]
    assert n.attribute(_blocks(), tags) == [
        ("quantize", None),
        ("stem", 0),
        ("depthwise_s1", 1),
        ("project", 2),
        ("add", 3),
        ("pool", 4),
        ("classifier", 5),
        ("classifier", 5),
        ("classifier", 5),
        ("dequantize", None),
    ]
    # An op of an unexpected class is "other", and the matching goes on.
    assert n.attribute(_blocks()[:1], ["Transpose", "Convolution (NHWC, F32) IGEMM"]) == [
        ("other", None),
        ("stem", 0),
    ]


def test_block_arithmetic():
    n = _network()
    # 1x1 conv 4x4x8 -> 4x4x8: 16 pixels x 8 out x 8 in = 1024 MACs, 64 weights.
    project = n.Block("project", (4, 4, 8), (4, 4, 8))
    assert (project.macs(), project.weights(), project.activations()) == (1024, 64, 256)
    # depthwise 3x3: 16 pixels x 8 channels x 9 = 1152 MACs, 72 weights.
    depthwise = n.Block("depthwise_s1", (4, 4, 8), (4, 4, 8), kernel=3)
    assert (depthwise.macs(), depthwise.weights()) == (1152, 72)
    assert n.Block("add", (4, 4, 8), (4, 4, 8)).activations() == 384  # two inputs, one output
    assert project.key == "project 4x4x8->4x4x8" and not project.relu6


def test_split_runs_groups_events_by_invoke():
    profiler = _import("benchmarks.int8_profile.profiler")
    events = [
        ("LiteRT::Run[buffer registration]", 1, 50),
        ("Invoke", 1, 100),
        ("Convolution (NHWC, QC8) IGEMM", 8, 60),
        ("SOFTMAX", 2, 5),
        ("Invoke", 32, 0),  # telemetry, left out
        ("Invoke", 1, 90),
        ("Convolution (NHWC, QC8) IGEMM", 8, 55),
        ("SOFTMAX", 2, 4),
    ]
    assert profiler.split_runs(events) == [
        [
            ("Convolution (NHWC, QC8) IGEMM", True, 60),
            ("SOFTMAX", False, 5),
            ("Invoke", False, 100),
        ],
        [
            ("Convolution (NHWC, QC8) IGEMM", True, 55),
            ("SOFTMAX", False, 4),
            ("Invoke", False, 90),
        ],
    ]
