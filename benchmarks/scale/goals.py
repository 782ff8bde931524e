"""The issue's goals (#11), each met, missed or not measured, from one run's rows."""

from __future__ import annotations

import math

from benchmarks import common

# The labels of onnxruntime's own static-quantization files (`deployment.FILES`).
ORT_CONTROLS = ("QDQ ONNX static S8S8", "QDQ ONNX static U8S8")

QAT_RATIO = 1.10  # QAT step / float step, MobileNetV2 scale
PRUNE_RATIO = 1.05  # pruning step / float step
RESNET_QAT_EXPORT_GIB = 8.0  # peak RSS of ResNet50's QAT export
QDQ_VS_FLOAT = 0.8  # QDQ ONNX latency / float ONNX latency, onnxruntime, 1 thread
# Two latencies within this fraction of each other are even: the same file timed twice
# in interleaved rounds differs by about that much on a quiet machine.
LATENCY_NOISE = 0.02


def _one(rows, **match) -> dict:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return {}


def _known(*values) -> bool:
    return all(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in values)


def _goal(goal: str, ok, figure: str) -> dict:
    verdict = "not measured" if ok is None else ("met" if ok else "missed")
    return {"goal": goal, "figure": figure, "verdict": verdict}


def _at_most(
    goal, value, limit, spec, unit: str = "", whose: str = "", noise: float = 0.0
) -> dict:
    """`value` <= `limit` (`whose` names a measured limit: "tfmot's"); within `noise`
    (a fraction) above a measured limit, the verdict says "even" instead of "missed"."""
    if not _known(value, limit):
        return _goal(goal, None, "—")
    shown = f"{common.fmt(value, spec)}{unit}"
    figure = f"{shown} ({whose or 'limit'} {common.fmt(limit, spec)}{unit})"
    if limit and value > limit:
        figure += f", {value / limit - 1:+.2%}"
    result = _goal(goal, value <= limit, figure)
    if limit < value <= limit * (1 + noise):
        result["verdict"] = f"even (within {noise:.0%}, measurement noise)"
    return result


def goals(tfopt_rows: list[dict], tfmot_rows: list[dict]) -> list[dict]:
    """[{"goal", "figure", "verdict"}] for each goal of the issue this suite measures."""
    mine = _one(tfopt_rows, part="training")
    theirs = _one(tfmot_rows, part="training")
    out = []
    for key, name, limit in (("qat", "QAT", QAT_RATIO), ("prune", "pruning", PRUNE_RATIO)):
        ratio = mine.get(f"{key}_ratio")
        out.append(_at_most(f"{name} step / float step <= {limit:.2f}", ratio, limit, ".2f"))
        out.append(
            _at_most(
                f"{name} step / float step at or below tfmot's",
                ratio,
                theirs.get(f"{key}_ratio"),
                ".2f",
                whose="tfmot's",
            )
        )
    export = _one(tfopt_rows, part="resnet", stage="QAT export")
    peak = export.get("peak_rss_mb")
    peak = None if peak is None or export.get("error") else peak / 1024
    out.append(
        _at_most(
            f"ResNet50 QAT export peak memory < {RESNET_QAT_EXPORT_GIB:g} GiB",
            peak,
            RESNET_QAT_EXPORT_GIB,
            ".2f",
            " GiB",
        )
    )
    files = {r.get("file"): r for r in tfopt_rows if r.get("part") == "deploy"}
    control = files.get("int8 full-integer", {})
    for label in ("int8 PTQ", "int8 QAT"):
        for n in (1, 2):
            out.append(
                _at_most(
                    f"LiteRT latency of tfopt's {label} file ({n} thread{'s' * (n > 1)}) <= "
                    "the converter's own full-integer file",
                    files.get(label, {}).get(f"litert_{n}t_ms"),
                    control.get(f"litert_{n}t_ms"),
                    ".3f",
                    " ms",
                    "converter's",
                    LATENCY_NOISE,
                )
            )
    qdq = files.get("QDQ ONNX (QAT)", {}).get("ort_1t_ms")
    float_ms = files.get("float ONNX", {}).get("ort_1t_ms")
    out.append(
        _at_most(
            f"QDQ ONNX latency <= {QDQ_VS_FLOAT:g}x float ONNX (onnxruntime, 1 thread)",
            common.ratio(qdq, float_ms) if _known(qdq, float_ms) else None,
            QDQ_VS_FLOAT,
            "x",
        )
    )
    controls = [files.get(label, {}).get("ort_1t_ms") for label in ORT_CONTROLS]
    controls = [ms for ms in controls if _known(ms)]
    out.append(
        _at_most(
            "QDQ ONNX latency <= onnxruntime's own static quantization, the faster of its "
            "S8S8 and U8S8 files (1 thread)",
            qdq,
            min(controls) if controls else None,
            ".3f",
            " ms",
            "onnxruntime's",
            LATENCY_NOISE,
        )
    )
    return out
