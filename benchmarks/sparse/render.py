"""The sparse-inference suite's section of BENCHMARKS.md; its prose is templates/sparse.md."""

from __future__ import annotations

from benchmarks import common
from benchmarks.harness.templates import Prose
from benchmarks.sparse.protocol import BLOCKS, INPUT_SIZE, SPARSITIES

_PROSE = Prose("sparse")  # benchmarks/templates/sparse.md


def _rows(rows: list[dict], kind: str) -> list[dict]:
    return [r for r in rows if r.get("kind") == kind]


def _yes_no(value) -> str:
    return "—" if value is None else ("yes" if value else "no")


def _xnnpack(row: dict) -> str:
    """What the delegate took, in a few words."""
    if not row.get("delegate_nodes"):
        return "nothing"
    start = "model input" if row.get("delegate_takes_input") else "?"
    outside = row.get("densify_from_outside")
    densify = "" if outside is None else f"; DENSIFY outside: {outside}"
    after = row.get("ops_after_delegate")
    tail = "" if not after else f" ({after} ops after it)"
    return f"{start} -> {row.get('delegate_ends_at')}{tail}{densify}"


def render(tfopt_rows: list[dict], tfmot_rows: list[dict]) -> str:
    sides = {"tfopt": tfopt_rows, "tfmot": tfmot_rows}
    table = []
    for target in SPARSITIES:
        for side, rows in sides.items():
            model = next((r for r in _rows(rows, "model") if r["sparsity"] == target), {})
            files = {r["encoding"]: r for r in _rows(rows, "file") if r["sparsity"] == target}
            for lat in (r for r in _rows(rows, "latency") if r["sparsity"] == target):
                low, high = lat.get("ratio_min"), lat.get("ratio_max")
                table.append(
                    {
                        **lat,
                        "target": f"{target:.0%}",
                        "side": side,
                        "pointwise": model.get("pointwise_sparsity"),
                        "dense_gzip": files.get("dense", {}).get("gzip_bytes"),
                        "sparse_bytes": files.get("sparse", {}).get("bytes"),
                        "sparse_gzip": files.get("sparse", {}).get("gzip_bytes"),
                        "dense_bytes": files.get("dense", {}).get("bytes"),
                        "densify": files.get("sparse", {}).get("densify_ops"),
                        "range": "—" if low is None or high is None else f"{low:.2f}–{high:.2f}x",
                        "xnnpack": _xnnpack(lat),
                    }
                )
    machine = next(iter(_rows(tfopt_rows, "machine") or _rows(tfmot_rows, "machine")), {})
    first = next(iter(table), {})
    parts = [
        _PROSE(
            "protocol",
            size=INPUT_SIZE,
            blocks=len(BLOCKS),
            rounds=common.fmt(first.get("rounds")),
            runs=common.fmt(first.get("runs")),
        ),
        "",
        common.markdown_table(
            table,
            [
                ("target", "Target", ""),
                ("side", "Side", ""),
                ("pointwise", "1x1 zeros", "pct"),
                ("densify", "DENSIFY ops", ""),
                ("dense_ms", "Dense ms", ".3f"),
                ("sparse_ms", "Sparse ms", ".3f"),
                ("ratio_median", "Sparse/dense (median round)", "x"),
                ("range", "Rounds' range", ""),
                ("xnnpack", "XNNPACK delegate took", ""),
            ],
        ),
        "",
        _PROSE("sizes"),
        "",
        common.markdown_table(
            table,
            [
                ("target", "Target", ""),
                ("side", "Side", ""),
                ("dense_bytes", "Dense file", "kb"),
                ("dense_gzip", "Dense gzip", "kb"),
                ("sparse_bytes", "Sparse file", "kb"),
                ("sparse_gzip", "Sparse gzip", "kb"),
            ],
        ),
        "",
        _PROSE(
            "evidence",
            avx=_yes_no(machine.get("avx")),
            avx2=_yes_no(machine.get("avx2")),
        ),
    ]
    return "\n".join(parts)
