"""The pruning suite's section of BENCHMARKS.md; its prose is templates/pruning.md."""

from __future__ import annotations

from benchmarks import common
from benchmarks.harness.templates import Prose
from benchmarks.pruning.protocol import SPARSITIES

_PROSE = Prose("pruning")  # benchmarks/templates/pruning.md


def _rows(rows: list[dict], kind: str) -> list[dict]:
    return [r for r in rows if r.get("kind") == kind]


def _range(row: dict) -> str:
    low, high = row.get("keras_acc_min"), row.get("keras_acc_max")
    if low is None or high is None:
        return "—"
    return f"{100 * low:.1f}–{100 * high:.1f}%"


def render(tfopt_rows: list[dict], tfmot_rows: list[dict]) -> str:
    sides = {"tfopt": tfopt_rows, "tfmot": tfmot_rows}
    accuracy = []
    for side, rows in sides.items():
        for r in _rows(rows, "float"):
            accuracy.append({"side": side, "target": "float", **r, "range": _range(r)})
    for target in SPARSITIES:
        for side, rows in sides.items():
            for r in _rows(rows, "accuracy"):
                if r.get("sparsity") == target:
                    accuracy.append(
                        {"side": side, "target": f"{target:.0%}", **r, "range": _range(r)}
                    )
    sizes = []
    for side, rows in sides.items():
        for r in _rows(rows, "tflite"):
            label = "float" if not r.get("sparsity") else f"{r['sparsity']:.0%}"
            sizes.append({"side": side, "target": label, **r})
    sizes.sort(key=lambda r: (r.get("sparsity", 0), r.get("encoding", ""), r["side"]))
    speed = [{"side": side, **r} for side, rows in sides.items() for r in _rows(rows, "speed")]
    first = next(iter(_rows(tfopt_rows, "accuracy") or _rows(tfmot_rows, "accuracy")), {})
    seeds = next(iter(_rows(tfopt_rows, "float") or _rows(tfmot_rows, "float")), {})
    parts = [
        _PROSE(
            "accuracy",
            seeds=common.fmt(seeds.get("seeds")),
            epochs=common.fmt(seeds.get("epochs")),
            fine_tune=common.fmt(first.get("fine_tune_epochs")),
        ),
        "",
        common.markdown_table(
            accuracy,
            [
                ("target", "Target", ""),
                ("side", "Side", ""),
                ("keras_acc", "Test acc", "pct"),
                ("range", "Range", ""),
                ("achieved_sparsity", "Kernel sparsity", "pct"),
            ],
        ),
        "",
        _PROSE("files"),
        "",
        common.markdown_table(
            sizes,
            [
                ("target", "Sparsity", ""),
                ("encoding", "Encoding", ""),
                ("side", "Side", ""),
                ("bytes", "Size", "kb"),
                ("gzip_bytes", "gzip", "kb"),
                ("tflite_acc", "TFLite acc", "pct"),
            ],
        ),
        "",
        _PROSE("speed"),
        "",
        common.markdown_table(
            speed,
            [
                ("side", "Side", ""),
                ("rounds", "Rounds", ""),
                ("float_epoch_s", "Float epoch s (fastest)", ".3f"),
                ("pruned_epoch_s", "Pruning epoch s (fastest)", ".3f"),
                ("ratio_fastest", "Ratio (fastest)", "x"),
                ("ratio_median", "Ratio (median round)", "x"),
                ("cpu_ratio", "CPU-time ratio (median)", "x"),
                ("peak_rss_mb", "Peak RSS MiB", ".0f"),
            ],
        ),
        "",
        _PROSE("notes"),
    ]
    return "\n".join(parts)
