"""The int8-profile suite's section of BENCHMARKS.md; its prose is templates/int8_profile.md.

Every figure and every sentence of the findings is computed here from the profiled ops:
the per-kind sums, their shares, and each kind's distance to the 0.25x limit
(int8 ms - 0.25 x float ms) and its share of the whole distance.
"""

from __future__ import annotations

import math

from benchmarks import common
from benchmarks.harness.templates import Prose
from benchmarks.int8_profile.network import DEPTHWISE, IO_KINDS, KINDS, POINTWISE

_PROSE = Prose("int8_profile")  # benchmarks/templates/int8_profile.md
LIMIT = 0.25  # int8/float32: 4x fewer bytes, up to 4x the SIMD lanes
PRECISIONS = ("float", "int8")
LABELS = {**KINDS, **IO_KINDS, "other": "other (not matched to a layer)"}
GROUPS = {"pw": POINTWISE, "dw": DEPTHWISE}


def _of(rows: list[dict], kind: str, precision: str | None = None) -> list[dict]:
    return [
        r
        for r in rows
        if r.get("kind") == kind and (precision is None or r.get("precision") == precision)
    ]


def _sum(values) -> float:
    return float(sum(values))


def _gmacs(macs, ms) -> float:
    return math.nan if not ms or ms <= 0 or not macs else macs / (ms * 1e-3) / 1e9


def kind_rows(rows: list[dict]) -> list[dict]:
    """One row per op kind (network order, then QUANTIZE/DEQUANTIZE, then unmatched ops)."""
    nodes = {p: _of(rows, "node", p) for p in PRECISIONS}
    shapes = nodes["int8"] or nodes["float"]
    table = []
    for op, label in LABELS.items():
        mine = {p: [n for n in nodes[p] if n["op"] == op] for p in PRECISIONS}
        ref = mine["int8"] or mine["float"]
        if not ref:
            continue
        blocks = {n["block"] for n in ref if n.get("block") is not None}
        outside = sorted({n["tag"] for n in mine["int8"] if not n.get("delegated")})
        table.append(
            {
                "op": op,
                "label": label,
                "count": len(blocks) if blocks else len(ref),
                "macs": _sum(n["macs"] for n in ref),
                "values": _sum(n["values"] for n in ref),
                "float_ms": _sum(n["ms"] for n in mine["float"]),
                "int8_ms": _sum(n["ms"] for n in mine["int8"]),
                "outside": ", ".join(outside) or "—",
            }
        )
    float_total = _sum(r["float_ms"] for r in table)
    int8_total = _sum(r["int8_ms"] for r in table)
    macs_total = _sum(n["macs"] for n in shapes if n["op"] in KINDS)
    gap_total = int8_total - LIMIT * float_total
    for r in table:
        layer = r["op"] in KINDS
        r["ratio"] = common.ratio(r["int8_ms"], r["float_ms"]) if r["float_ms"] else math.nan
        r["int8_share"] = common.ratio(r["int8_ms"], int8_total)
        r["mac_share"] = common.ratio(r["macs"], macs_total) if layer else math.nan
        r["gap_ms"] = r["int8_ms"] - LIMIT * r["float_ms"]
        r["gap_share"] = common.ratio(r["gap_ms"], gap_total)
        r["macs_per_byte"] = common.ratio(r["macs"], r["values"]) if layer else math.nan
        r["float_gmacs"] = _gmacs(r["macs"], r["float_ms"]) if layer else math.nan
        r["int8_gmacs"] = _gmacs(r["macs"], r["int8_ms"]) if layer else math.nan
        r["mmacs"] = r["macs"] / 1e6
    return table


def shape_rows(rows: list[dict]) -> list[dict]:
    """One row per distinct (kind, shape): how often it occurs, ms per occurrence."""
    per_block: dict = {}
    has_int8 = bool(_of(rows, "node", "int8"))
    for n in _of(rows, "node"):
        if n.get("block") is None:
            continue
        entry = per_block.setdefault(
            n["block"], {"op": n["op"], "shape": n["shape"], "macs": 0, "float": 0.0, "int8": 0.0}
        )
        entry[n["precision"]] += n["ms"]
        if n["precision"] == "int8" or not has_int8:  # MACs counted once
            entry["macs"] += n["macs"]
    groups: dict = {}
    for block in sorted(per_block):
        entry = per_block[block]
        group = groups.setdefault(
            (entry["op"], entry["shape"]),
            {"op": entry["op"], "shape": entry["shape"], "count": 0, "macs": entry["macs"]},
        )
        group["count"] += 1
        for p in PRECISIONS:
            group[f"{p}_total"] = group.get(f"{p}_total", 0.0) + entry[p]
    table = []
    for group in groups.values():
        float_ms = group["float_total"] / group["count"]
        int8_ms = group["int8_total"] / group["count"]
        table.append(
            {
                **group,
                "label": LABELS.get(group["op"], group["op"]),
                "float_ms": float_ms,
                "int8_ms": int8_ms,
                "ratio": common.ratio(int8_ms, float_ms),
                "mmacs": group["macs"] / 1e6,
            }
        )
    return table


def _group(table: list[dict], kinds) -> dict:
    mine = [r for r in table if r["op"] in kinds]
    out = {k: _sum(r[k] for r in mine) for k in ("macs", "values", "float_ms", "int8_ms")}
    for key in ("int8_share", "mac_share", "gap_share"):
        out[key] = _sum(r[key] for r in mine)
    out["ratio"] = common.ratio(out["int8_ms"], out["float_ms"])
    out["float_gmacs"] = _gmacs(out["macs"], out["float_ms"])
    out["int8_gmacs"] = _gmacs(out["macs"], out["int8_ms"])
    out["macs_per_byte"] = common.ratio(out["macs"], out["values"])
    return out


def _pct(value) -> str:
    return common.fmt(value, "pct")


def _x(value) -> str:
    return common.fmt(value, "x")


def _ms(value) -> str:
    return common.fmt(value, ".3f")


def _num(value) -> str:
    return common.fmt(value, ".1f")


def _findings(table: list[dict]) -> list[str]:
    """One sentence per kind, largest distance to the limit first."""
    lines = []
    for r in sorted(table, key=lambda r: -r["gap_ms"]):
        ratio = "no float32 counterpart" if math.isnan(r["ratio"]) else f"{_x(r['ratio'])} float32"
        lines.append(
            _PROSE(
                "finding",
                kind=r["label"],
                count=r["count"],
                int8_share=_pct(r["int8_share"]),
                ratio=ratio,
                mac_share="—" if math.isnan(r["mac_share"]) else _pct(r["mac_share"]),
                gap_ms=_ms(r["gap_ms"]),
                gap_share=_pct(r["gap_share"]),
            )
        )
    return lines


def _summary(rows: list[dict]) -> tuple[list[dict], dict]:
    whole = {r.get("precision"): r for r in _of(rows, "whole")}
    table = []
    for p in PRECISIONS:
        w = whole.get(p, {})
        table.append(
            {
                "file": "float32" if p == "float" else "int8 PTQ",
                "interpreter": w.get("interpreter_ms"),
                "invoke": w.get("invoke_ms"),
                "ops": w.get("ops_ms"),
                "cover": common.ratio(w.get("ops_ms"), w.get("invoke_ms")),
                "runs": f"{common.fmt(w.get('quiet_runs'))} of "
                f"{common.fmt(w.get('profiled_runs'))}",
                "op_count": w.get("ops"),
                "census": w.get("op_counts"),
            }
        )
    table.append(
        {
            "file": "int8 / float32",
            **{
                key: common.ratio(table[1][key], table[0][key])
                for key in ("interpreter", "invoke", "ops")
            },
        }
    )
    return table, whole


def render(tfopt_rows: list[dict], tfmot_rows: list[dict]) -> str:
    rows = tfopt_rows
    setup = next(iter(_of(rows, "setup")), {})
    table = kind_rows(rows)
    summary, whole = _summary(rows)
    groups = {name: _group(table, kinds) for name, kinds in GROUPS.items()}
    invoke = {p: whole.get(p, {}).get("invoke_ms") for p in PRECISIONS}
    interp = {p: whole.get(p, {}).get("interpreter_ms") for p in PRECISIONS}
    int8_whole = whole.get("int8", {})
    outside = sorted({n["tag"] for n in _of(rows, "node", "int8") if not n.get("delegated")})
    out = [
        _PROSE(
            "protocol",
            size=common.fmt(setup.get("size")),
            classes=common.fmt(setup.get("classes")),
            blocks=common.fmt(setup.get("blocks")),
            gmacs=common.fmt(setup.get("macs") and setup["macs"] / 1e9, ".3f"),
            calibration=common.fmt(setup.get("calibration")),
            rounds=common.fmt(setup.get("rounds")),
            runs=common.fmt(setup.get("runs")),
            warmup=common.fmt(setup.get("warmup")),
        ),
        "",
        common.markdown_table(
            table,
            [
                ("label", "Op kind", ""),
                ("count", "Count", ""),
                ("mmacs", "MMACs", ".1f"),
                ("mac_share", "MACs share", "pct"),
                ("macs_per_byte", "MACs per int8 byte", ".1f"),
                ("float_ms", "float32 ms", ".3f"),
                ("int8_ms", "int8 ms", ".3f"),
                ("ratio", "int8/float32", "x"),
                ("int8_share", "Share of int8", "pct"),
                ("float_gmacs", "float32 GMAC/s", ".1f"),
                ("int8_gmacs", "int8 GMAC/s", ".1f"),
                ("gap_ms", "int8 - 0.25 x float32 ms", ".3f"),
                ("gap_share", "Share of the gap", "pct"),
                ("outside", "int8 ops outside XNNPACK", ""),
            ],
        ),
        "",
        _PROSE("summary"),
        "",
        common.markdown_table(
            summary,
            [
                ("file", "File", ""),
                ("interpreter", "Interpreter ms (no profiler)", ".3f"),
                ("invoke", "Profiled run ms", ".3f"),
                ("ops", "Sum of ops ms", ".3f"),
                ("cover", "Ops / run", "pct"),
                ("runs", "Runs averaged", ""),
                ("op_count", "Ops in the file", ""),
                ("census", "Op census", ""),
            ],
        ),
        "",
        _PROSE(
            "conclusion",
            interp_int8=_ms(interp["int8"]),
            interp_float=_ms(interp["float"]),
            interp_ratio=_x(common.ratio(interp["int8"], interp["float"])),
            int8_ms=_ms(invoke["int8"]),
            float_ms=_ms(invoke["float"]),
            whole_ratio=_x(common.ratio(invoke["int8"], invoke["float"])),
            limit_ms=_ms(None if invoke["float"] is None else LIMIT * invoke["float"]),
            gap_ms=_ms(
                None
                if invoke["int8"] is None or invoke["float"] is None
                else invoke["int8"] - LIMIT * invoke["float"]
            ),
            quantize_ops=common.fmt(int8_whole.get("quantize_ops")),
            dequantize_ops=common.fmt(int8_whole.get("dequantize_ops")),
            outside=", ".join(outside) if outside else "none",
        ),
        "",
        *_findings(table),
        "",
        _PROSE(
            "groups",
            **{
                f"{short}_{key}": fmt(groups[short][key])
                for short in GROUPS
                for key, fmt in (
                    ("mac_share", _pct),
                    ("int8_share", _pct),
                    ("ratio", _x),
                    ("gap_share", _pct),
                    ("float_gmacs", _num),
                    ("int8_gmacs", _num),
                    ("macs_per_byte", _num),
                )
            },
        ),
        "",
        _PROSE("shapes"),
        "",
        common.markdown_table(
            shape_rows(rows),
            [
                ("label", "Op kind", ""),
                ("shape", "Input -> output", ""),
                ("count", "Count", ""),
                ("mmacs", "MMACs each", ".2f"),
                ("float_ms", "float32 ms each", ".4f"),
                ("int8_ms", "int8 ms each", ".4f"),
                ("ratio", "int8/float32", "x"),
            ],
        ),
    ]
    return "\n".join(out)
