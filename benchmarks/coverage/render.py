"""The coverage suite's section of BENCHMARKS.md; its prose is templates/coverage.md.

Four parts: the coverage table (one line per model and side), parity in detail
(one line per exported file), held-out accuracy of the small models, and every
error in full (its first line). Rows come from `measure.measure` (or from
`isolation` for a model whose process died); a cell of a stage after the one that
failed reads "not reached".
"""

from __future__ import annotations

from benchmarks import common
from benchmarks.coverage import budget as budgets
from benchmarks.coverage import models
from benchmarks.coverage.measure import STAGES
from benchmarks.harness.templates import Prose

_PROSE = Prose("coverage")  # benchmarks/templates/coverage.md
SIDES = ("tfopt", "tfmot")
SIDE_LABELS = {"tfopt": "tfopt (Keras 3)", "tfmot": "tfmot (tf_keras)"}
CELL_CHARS = 110  # an error in a table cell; the list below the tables has it whole
NOT_REACHED = "not reached"
FILES = (("tflite", "TFLite int8"), ("onnx", "ONNX QDQ"))
STAGE_LABELS = {
    "build": "build",
    "float": "float training",
    "quantize": "quantize_model",
    "train": "QAT training",
    "tflite": "TFLite export",
    "onnx": "ONNX export",
}


def failed_stage(row: dict) -> str | None:
    """The stage whose error the row records (None when every stage ran)."""
    return next((s for s in STAGES if f"{s}_error" in row), None)


def reached(row: dict, stage: str) -> bool:
    """True when `stage` ran (whether or not it failed)."""
    failed = failed_stage(row)
    return failed is None or STAGES.index(stage) <= STAGES.index(failed)


def _code(text: str, limit: int | None = None) -> str:
    """An error as a table-safe code span, cut at `limit` characters."""
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def _error_cell(row: dict, stage: str) -> str | None:
    """The cell of a failed `stage` (an earlier stage's failure, if it is not a column)."""
    failed = failed_stage(row)
    if failed is None:
        return None
    if failed == stage:
        return "fails: " + _code(row[f"{stage}_error"], CELL_CHARS)
    if failed in ("build", "float") and stage == "quantize":
        return f"{STAGE_LABELS[failed]} fails: " + _code(row[f"{failed}_error"], CELL_CHARS)
    if not reached(row, stage):
        return NOT_REACHED
    return None


def _pct(value) -> str:
    return common.fmt(value, "pct")


def quantize_cell(row: dict) -> str:
    return _error_cell(row, "quantize") or "ok"


def train_cell(row: dict) -> str:
    cell = _error_cell(row, "train")
    if cell:
        return cell
    if row.get("train_steps") is not None:
        steps = row["train_steps"]
        what = f"{steps} step{'s' if steps != 1 else ''} of {row.get('train_batch', '?')}"
    else:
        epochs = row.get("train_epochs")
        what = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    return f"ok, {what} (loss {common.fmt(row.get('train_loss'), '.3g')})"


def _first(ops: str, n: int = 3) -> str:
    """The first `n` entries of an op list ("A x2, B, C, D" -> "A x2, B, C, …")."""
    items = ops.split(", ")
    return ", ".join(items[:n]) + (", …" if len(items) > n else "")


# ONNX's recurrent ops, which tfopt.export.census.COMPUTE_OPS lists since rows measured
# before it did put among the other float ops.
_RECURRENT_ONNX = ("LSTM", "GRU", "RNN")


def _reclassified(row: dict) -> dict:
    """`row` with ONNX recurrent ops moved from `*_float_other` to `*_float_compute`."""
    row = dict(row)
    for prefix, _ in FILES:
        other = [o for o in (row.get(f"{prefix}_float_other") or "").split(", ") if o]
        moved = [o for o in other if o.split(" x")[0] in _RECURRENT_ONNX]
        if moved:
            kept = [o for o in other if o not in moved]
            compute = [o for o in (row.get(f"{prefix}_float_compute") or "").split(", ") if o]
            row[f"{prefix}_float_compute"] = ", ".join(compute + moved)
            row[f"{prefix}_float_other"] = ", ".join(kept)
    return row


def file_cell(row: dict, prefix: str) -> str:
    """Fully int8 (no float compute op in the census, nor in a loop body), else the float
    compute ops; other ops left in float are named after "fully int8"."""
    cell = _error_cell(row, prefix)
    if cell:
        return cell
    floats = row.get(f"{prefix}_float_compute")
    hidden = row.get(f"{prefix}_subgraph_compute")
    if floats or hidden:
        parts = [f"float compute: {floats}"] if floats else []
        if hidden:
            parts.append(f"float compute in a loop body: {hidden}")
        return "written; " + "; ".join(parts)
    other = row.get(f"{prefix}_float_other")
    if other:
        return f"fully int8; other ops in float: {_first(other)}"
    return "fully int8"


ISSUE_WITHIN, ISSUE_TOP1 = 0.999, 0.995  # issue #12's bar (its "Show" section)


def issue_bar(row: dict, prefix: str) -> str:
    """ "met" (99.9% within one step, top-1 99.5%), "met (runtime)" (a deep model at least
    as close as the runtime's kernels are to each other: as many outputs within one step,
    a worst error no larger, or 2 steps, and top-1 99.5%, as
    tests/quantization/test_applications.py holds ResNet50 to), "missed", or "—" (no
    quantized output)."""
    within, top1 = row.get(f"{prefix}_within"), row.get(f"{prefix}_top1")
    if within is None:
        return "—"
    if within >= ISSUE_WITHIN and (top1 is None or top1 >= ISSUE_TOP1):
        return "met"
    floor, floor_max = row.get(f"{prefix}_self_within"), row.get(f"{prefix}_self_max_steps")
    worst = row.get(f"{prefix}_max_steps")
    if (
        row.get("kind") == "application"
        and floor is not None
        and within >= floor
        and worst is not None
        and worst <= max(floor_max or 0.0, 2.0)
        and (top1 is None or top1 >= ISSUE_TOP1)
    ):
        return "met (runtime)"
    return "missed"


def parity_cell(row: dict, prefix: str) -> str:
    """Within one step / max steps / top-1, and the two bars."""
    if not reached(row, prefix) or f"{prefix}_error" in row:
        return "—"
    within = row.get(f"{prefix}_within")
    if within is None:
        return f"float output; top-1 {_pct(row.get(f'{prefix}_top1'))}"
    default = "met" if not row.get(f"{prefix}_bar") else "**missed**"
    issue = issue_bar(row, prefix)
    issue = f"**{issue}**" if issue == "missed" else issue
    return (
        f"{_pct(within)} ≤1 step, max {common.fmt(row.get(f'{prefix}_max_steps'), '.0f')}, "
        f"top-1 {_pct(row.get(f'{prefix}_top1'))}; default bar {default}, issue bar {issue}"
    )


def _hidden(row: dict) -> bool:
    return any(row.get(f"{prefix}_subgraph_compute") for prefix, _ in FILES)


def _self_cell(row: dict, prefix: str) -> str:
    within = row.get(f"{prefix}_self_within")
    if within is None:
        return "—"
    return f"{_pct(within)}, max {common.fmt(row.get(f'{prefix}_self_max_steps'), '.0f')}"


def _ordered(tfopt_rows, tfmot_rows) -> list[dict]:
    """Rows in `models.MODELS` order, tfopt before tfmot; unknown models last."""
    order = {spec.name: i for i, spec in enumerate(models.MODELS)}
    rows = [*tfopt_rows, *tfmot_rows]
    return sorted(
        rows,
        key=lambda r: (order.get(r.get("model"), len(order)), SIDES.index(r.get("side", "tfopt"))),
    )


def coverage_table(rows: list[dict]) -> str:
    lines = [
        "| model | side | quantize | train | TFLite int8 | TFLite parity | ONNX QDQ "
        "| ONNX parity |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            row.get("model", "?"),
            row.get("side", "?"),
            quantize_cell(row),
            train_cell(row),
            file_cell(row, "tflite"),
            parity_cell(row, "tflite"),
            file_cell(row, "onnx"),
            parity_cell(row, "onnx"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parity_table(rows: list[dict]) -> str:
    lines = [
        "| model | side | file | Keras output std | within one step | max steps | top-1 "
        "| default bar | runtime vs itself | issue bar | other float ops |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for prefix, label in FILES:
            if not reached(row, prefix) or f"{prefix}_error" in row:
                continue
            bar = row.get(f"{prefix}_bar")
            lines.append(
                "| "
                + " | ".join(
                    [
                        row["model"],
                        row["side"],
                        label,
                        common.fmt(row.get("output_std"), ".3g"),
                        _pct(row.get(f"{prefix}_within")),
                        common.fmt(row.get(f"{prefix}_max_steps"), ".0f"),
                        _pct(row.get(f"{prefix}_top1")),
                        "pass" if not bar else f"misses: {bar}",
                        _self_cell(row, prefix),
                        issue_bar(row, prefix),
                        row.get(f"{prefix}_float_other") or "none",
                    ]
                )
                + " |"
            )
    return "\n".join(lines)


def accuracy_table(rows: list[dict]) -> str:
    lines = [
        "| model | side | test samples | float (Keras) | QAT (Keras) | int8 TFLite | ONNX QDQ |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row.get("kind") == "application":
            continue
        cells = [row["model"], row["side"], common.fmt(row.get("test_samples"))]
        cells += [
            _pct(row.get(key))
            for key in ("float_accuracy", "qat_accuracy", "tflite_accuracy", "onnx_accuracy")
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def error_list(rows: list[dict]) -> str:
    items = []
    for row in rows:
        stage = failed_stage(row)
        if stage is not None:
            items.append(
                f"- {row.get('model', '?')}, {row.get('side', '?')}, {STAGE_LABELS[stage]}: "
                + _code(row[f"{stage}_error"])
            )
    return "\n".join(items) if items else _PROSE("no_errors")


def notes_list(rows: list[dict]) -> str:
    """The exporters' notes (`ExportResult.notes`), one item per file that has some."""
    items = [
        f"- {row['model']}, {row['side']}, {label}: {row[f'{prefix}_notes']}"
        for row in rows
        for prefix, label in FILES
        if row.get(f"{prefix}_notes")
    ]
    return "\n".join(items)


def summary(rows: list[dict], side: str) -> str:
    mine = [r for r in rows if r.get("side") == side]
    if not mine:
        return _PROSE("side_missing", side=SIDE_LABELS[side])

    def count(test):
        return sum(1 for r in mine if test(r))

    def clean(r, prefix):
        return (
            reached(r, prefix)
            and f"{prefix}_error" not in r
            and not r.get(f"{prefix}_float_compute")
            and not r.get(f"{prefix}_subgraph_compute")
        )

    def meets(r, prefix):
        return reached(r, prefix) and f"{prefix}_error" not in r and not r.get(f"{prefix}_bar")

    return _PROSE(
        "summary",
        side=SIDE_LABELS[side],
        models=len(mine),
        quantized=count(lambda r: reached(r, "train")),
        trained=count(lambda r: reached(r, "tflite")),
        tflite_int8=count(lambda r: clean(r, "tflite")),
        tflite_bar=count(lambda r: meets(r, "tflite")),
        onnx_int8=count(lambda r: clean(r, "onnx")),
        onnx_bar=count(lambda r: meets(r, "onnx")),
        tflite_issue=count(lambda r: issue_bar(r, "tflite").startswith("met")),
        onnx_issue=count(lambda r: issue_bar(r, "onnx").startswith("met")),
    )


def render(tfopt_rows: list[dict], tfmot_rows: list[dict]) -> str:
    rows = [_reclassified(r) for r in _ordered(tfopt_rows, tfmot_rows)]
    plan = budgets.budget(any(r.get("quick") for r in rows))
    notes = notes_list(rows)
    parts = [
        _PROSE(
            "protocol",
            size=models.IMAGE_SIZE,
            float_steps=plan.app_float_steps,
            float_batch=plan.app_float_batch,
            statistics_batch=plan.app_statistics_batch,
            qat_steps=plan.app_qat_steps,
            qat_batch=plan.app_qat_batch,
            verify=plan.app_verify,
            small_float_epochs=plan.small_float_epochs,
            small_qat_epochs=plan.small_qat_epochs,
            timeout=f"{plan.model_timeout_s:.0f}",
        ),
        _PROSE("models"),
        coverage_table(rows),
        _PROSE("columns"),
        summary(rows, "tfopt"),
        summary(rows, "tfmot"),
        _PROSE("errors"),
        error_list(rows),
        *([_PROSE("notes"), notes] if notes else []),
        *([_PROSE("subgraphs")] if any(_hidden(r) for r in rows) else []),
        _PROSE("parity"),
        parity_table(rows),
        _PROSE("accuracy"),
        accuracy_table(rows),
    ]
    return "\n\n".join(parts)
