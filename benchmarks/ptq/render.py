"""The PTQ suite's section of BENCHMARKS.md; its prose is templates/ptq.md."""

from __future__ import annotations

from benchmarks import common
from benchmarks.harness.templates import Prose
from benchmarks.ptq.protocol import VARIANTS

_PROSE = Prose("ptq")  # benchmarks/templates/ptq.md


def _by_variant(rows: list[dict]) -> dict[str, dict]:
    return {r.get("variant"): r for r in rows}


def _acc_range(row: dict) -> str:
    low, high = row.get("test_acc_min"), row.get("test_acc_max")
    if low is None or high is None:
        return "—"
    return f"{100 * low:.1f}–{100 * high:.1f}%"


def render(tfopt_rows: list[dict], tfmot_rows: list[dict]) -> str:
    sides = {"tfopt": _by_variant(tfopt_rows), "tfmot": _by_variant(tfmot_rows)}
    exports = []
    for variant in VARIANTS:
        for side, rows in sides.items():
            if variant in rows:
                row = {"side": side, **rows[variant], "range": _acc_range(rows[variant])}
                change = row.get("acc_change_vs_float")
                row["change_pts"] = None if change is None else 100 * change
                exports.append(row)
    training = [{"side": side, **rows["training"]} for side, rows in sides.items() if rows]
    n_seeds = next((r.get("seeds") for r in training if r.get("seeds")), None)
    parts = [
        _PROSE("exports", seeds=common.fmt(n_seeds)),
        "",
        common.markdown_table(
            exports,
            [
                ("variant", "Variant", ""),
                ("side", "Side", ""),
                ("test_acc", "Test acc", "pct"),
                ("range", "Range", ""),
                ("change_pts", "vs float32 (pts)", "+.2f"),
                ("bytes", "Size", "kb"),
                ("gzip_bytes", "gzip", "kb"),
                ("latency_ms", "Latency ms", ".4f"),
                ("latency_vs_float", "Latency / float32", "x"),
                ("convert_s", "Convert s", ".2f"),
            ],
        ),
        "",
        _PROSE("training"),
        "",
        common.markdown_table(
            training,
            [
                ("side", "Side", ""),
                ("epochs", "Epochs", ""),
                ("seeds", "Seeds", ""),
                ("keras_test_acc", "Keras test acc (mean)", "pct"),
                ("first_epoch_s", "First epoch s", ".2f"),
                ("epoch_s", "Epoch s (median)", ".3f"),
                ("fastest_epoch_s", "Fastest epoch s", ".3f"),
                ("peak_rss_mb", "Peak RSS MiB", ".0f"),
            ],
        ),
        "",
    ]
    t, m = sides["tfopt"].get("training", {}), sides["tfmot"].get("training", {})
    fastest_ratio = common.ratio(t.get("fastest_epoch_s"), m.get("fastest_epoch_s"))
    rss_ratio = common.ratio(t.get("peak_rss_mb"), m.get("peak_rss_mb"))
    parity = [
        f"{v} {common.fmt(sides['tfopt'][v].get('parity_max_abs_error'), '.2e')}"
        for v in VARIANTS
        if v in sides["tfopt"]
    ]
    parts.append(
        _PROSE(
            "notes",
            fastest=common.fmt(fastest_ratio, "x"),
            rss=common.fmt(rss_ratio, "x"),
            parity=", ".join(parity) or "—",
        )
    )
    return "\n".join(parts)
