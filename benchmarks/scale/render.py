"""The scale suite's section of BENCHMARKS.md; its prose is templates/scale.md."""

from __future__ import annotations

import math

from benchmarks import common
from benchmarks.harness.templates import Prose
from benchmarks.scale import goals as goal_list

_PROSE = Prose("scale")  # benchmarks/templates/scale.md
NOT_MEASURED = "not measured"


def _part(rows, part):
    return [r for r in rows if r.get("part") == part]


def _first(rows, part) -> dict:
    found = _part(rows, part)
    return found[0] if found else {}


def _ms(seconds):
    return None if seconds is None else 1000 * seconds


def _cell(row: dict, key: str, spec: str, missing: str = "—") -> str:
    if not row:
        return NOT_MEASURED
    value = row.get(key)
    value = None if isinstance(value, float) and math.isnan(value) else value
    if value is None and row.get("error"):
        return "failed"
    return missing if value is None else common.fmt(value, spec)


def _training(a: dict, b: dict) -> str:
    figures = [
        ("model", lambda r: r.get("model") or "—"),
        ("parameters", lambda r: _cell(r, "params", ",")),
        ("float step, ms", lambda r: common.fmt(_ms(r.get("float_step_s")), ".0f")),
        ("QAT step, ms", lambda r: common.fmt(_ms(r.get("qat_step_s")), ".0f")),
        ("pruning step, ms", lambda r: common.fmt(_ms(r.get("prune_step_s")), ".0f")),
        ("QAT / float step (wall)", lambda r: common.fmt(r.get("qat_ratio"), "x")),
        ("pruning / float step (wall)", lambda r: common.fmt(r.get("prune_ratio"), "x")),
        ("QAT / float step (CPU)", lambda r: common.fmt(r.get("qat_cpu_ratio"), "x")),
        ("pruning / float step (CPU)", lambda r: common.fmt(r.get("prune_cpu_ratio"), "x")),
        ("first step float / QAT / pruning, s", _first_steps),
        ("peak RSS, MiB", lambda r: common.fmt(r.get("peak_rss_mb"), ".0f")),
    ]
    lines = ["| figure | tfopt (Keras 3) | tfmot (tf_keras) |", "|---|---|---|"]
    for label, get in figures:
        cells = [get(r) if r else NOT_MEASURED for r in (a, b)]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _first_steps(row: dict) -> str:
    return " / ".join(
        common.fmt(row.get(f"{name}_first_step_s"), ".1f") for name in ("float", "qat", "prune")
    )


def _masks(tfopt_rows, tfmot_rows) -> str:
    by_model: dict[str, dict] = {}
    for row in [*_part(tfopt_rows, "mask"), *_part(tfmot_rows, "mask")]:
        entry = by_model.setdefault(row["model"], {"model": row["model"]})
        entry.setdefault("params", row.get("params"))
        entry.setdefault("prunable", row.get("prunable_params"))
        entry[row["side"]] = row
    shown = []
    for entry in by_model.values():
        cells = {"model": entry["model"], "params": entry["params"]}
        cells["prunable"] = entry["prunable"]
        for side in ("tfopt", "tfmot"):
            row = entry.get(side, {})
            cells[f"{side}_ms"] = _cell(row, "mask_update_ms", ".1f")
            per_million = common.ratio(row.get("mask_update_ms"), row.get("prunable_params"))
            row = {**row, "per_million": 1e6 * per_million}
            cells[f"{side}_per_m"] = _cell(row, "per_million", ".1f")
        shown.append(cells)
    return common.markdown_table(
        shown,
        [
            ("model", "model", ""),
            ("params", "parameters", ","),
            ("prunable", "pruned weights", ","),
            ("tfopt_ms", "tfopt update, ms", ""),
            ("tfmot_ms", "tfmot update, ms", ""),
            ("tfopt_per_m", "tfopt, ms per million pruned weights", ""),
            ("tfmot_per_m", "tfmot, ms per million pruned weights", ""),
        ],
    )


def _parity(row: dict) -> str:
    if row.get("parity_top1") is None and row.get("parity_max_abs") is None:
        return "—"
    within = row.get("parity_within_one_step")
    step = "" if within is None else f", {common.fmt(within, 'pct')} ≤1 step"
    top1 = common.fmt(row.get("parity_top1"), "pct")
    return f"top-1 {top1}{step}, max abs {common.fmt(row.get('parity_max_abs'), '.3g')}"


def _resnet(rows) -> str:
    shown = [
        {
            **r,
            "parity": _parity(r),
            "figures": _resnet_figures(r),
            "state": "failed (below)" if r.get("error") else "ok",
        }
        for r in rows
    ]
    return common.markdown_table(
        shown,
        [
            ("stage", "stage", ""),
            ("state", "result", ""),
            ("process_s", "process, s", ".0f"),
            ("peak_rss_mb", "peak RSS, MiB", ".0f"),
            ("peak_before_mb", "peak before conversion, MiB", ".0f"),
            ("convert_s", "conversion, s", ".1f"),
            ("figures", "figures", ""),
            ("parity", "parity", ""),
        ],
    )


def _resnet_figures(row: dict) -> str:
    parts = []
    if row.get("train_s") is not None:
        parts.append(
            f"{row.get('train_steps')} step(s) in {row['train_s']:.0f} s "
            f"(loss {common.fmt(row.get('train_loss'), '.3g')})"
        )
    if row.get("quantize_s") is not None:
        parts.append(f"quantize_model {row['quantize_s']:.1f} s")
    if row.get("sparsity") is not None:
        parts.append(f"sparsity {common.fmt(row['sparsity'], 'pct')}")
    if row.get("bytes") is not None:
        parts.append(
            f"{row.get('quantization')}, {common.fmt(row['bytes'], 'kb')} "
            f"({common.fmt(row.get('gzip_bytes'), 'kb')} gzipped)"
        )
    return "; ".join(parts) or "—"


def _deploy(rows) -> str:
    files = [r for r in rows if r.get("kind") == "file"]
    shown = [
        {**r, "parity": _parity(r), "file": r["file"] + (" (failed)" if r.get("error") else "")}
        for r in files
    ]
    return common.markdown_table(
        shown,
        [
            ("file", "file", ""),
            ("producer", "written by", ""),
            ("bytes", "size", "kb"),
            ("gzip_bytes", "gzipped", "kb"),
            ("convert_s", "conversion, s", ".1f"),
            ("peak_rss_mb", "peak RSS, MiB", ".0f"),
            ("litert_1t_ms", "LiteRT 1 thread, ms", ".3f"),
            ("litert_2t_ms", "LiteRT 2 threads, ms", ".3f"),
            ("ort_1t_ms", "onnxruntime 1 thread, ms", ".3f"),
            ("parity", "parity with its Keras model", ""),
        ],
    )


def _same_files(rows) -> str:
    """Which files are byte for byte the same (by SHA-256), e.g. tfopt's PTQ file and the
    converter's own."""
    groups: dict[str, list[str]] = {}
    for r in rows:
        if r.get("kind") == "file" and r.get("sha256"):
            groups.setdefault(r["sha256"], []).append(r["file"])
    same = [" and ".join(names) for names in groups.values() if len(names) > 1]
    return f"Byte-identical files: {'; '.join(same)}." if same else ""


def _deploy_models(rows) -> str:
    models = [r for r in rows if r.get("kind") == "model"]
    parts = []
    for r in models:
        text = f"{r['file']}: {common.fmt(r.get('process_s'), '.0f')} s"
        text += f", peak RSS {common.fmt(r.get('peak_rss_mb'), '.0f')} MiB"
        if r.get("train_s") is not None:
            text += (
                f" (quantize_model {r.get('quantize_s', 0):.1f} s, training {r['train_s']:.0f} s)"
            )
        parts.append(text + (" — failed (below)" if r.get("error") else ""))
    return "Model stages: " + "; ".join(parts) + "." if parts else ""


def _failures(rows) -> list[str]:
    out = []
    for r in rows:
        for key, value in r.items():
            if key == "error" or key.endswith("_error"):
                what = r.get("stage") or r.get("file") or r.get("model") or r.get("part")
                where = key[: -len("_error")] if key != "error" else r.get("part")
                out.append(f"- {r.get('side')}, {what} ({where}): `{value}`")
    return out


def render(tfopt_rows: list[dict], tfmot_rows: list[dict]) -> str:
    meta = _first(tfopt_rows, "meta") or _first(tfmot_rows, "meta")
    out = [_PROSE("intro", verify_samples=meta.get("verify_samples", "?")), ""]
    if meta.get("quick"):
        resnet = f"ResNet50 {meta['resnet']}" if meta.get("resnet") else "no ResNet50 stages"
        out += [
            _PROSE(
                "quick",
                train_model=meta.get("train_model"),
                deploy_model=meta.get("deploy_model"),
                resnet=resnet,
            ),
            "",
        ]
    out += ["### Training steps, side by side", ""]
    out += [_training(_first(tfopt_rows, "training"), _first(tfmot_rows, "training")), ""]
    out += [
        _PROSE(
            "training",
            train_model=meta.get("train_model", "?"),
            batch=meta.get("train_batch", "?"),
            rounds=meta.get("train_rounds", "?"),
            steps=meta.get("train_steps", "?"),
        ),
        "",
    ]
    out += ["### Mask-update cost against model size", "", _masks(tfopt_rows, tfmot_rows), ""]
    out += [_PROSE("masks", runs=meta.get("mask_runs", "?")), ""]
    out += ["### ResNet50: QAT and pruning, training steps and export", ""]
    resnet_rows = _part(tfopt_rows, "resnet")
    if resnet_rows:
        out += [_resnet(resnet_rows), ""]
        out += [
            _PROSE(
                "resnet",
                model=meta.get("resnet") or "?",
                batch=meta.get("resnet_batch", "?"),
                steps=meta.get("resnet_steps", "?"),
            ),
            "",
        ]
    else:
        out += [f"ResNet50's stages: {NOT_MEASURED} in this run.", ""]
    out += ["### Deployment files: size, conversion, latency at batch 1", ""]
    deploy_rows = _part(tfopt_rows, "deploy")
    if deploy_rows:
        out += [_deploy(deploy_rows), ""]
        for text in (_same_files(deploy_rows), _deploy_models(deploy_rows)):
            out += [text, ""] if text else []
    else:
        out += [f"Deployment files: {NOT_MEASURED} in this run.", ""]
    out += [
        _PROSE(
            "deploy",
            model=meta.get("deploy_model", "?"),
            qat_steps=meta.get("qat_steps", "?"),
            qat_batch=meta.get("qat_batch", "?"),
            calibration=meta.get("calibration_samples", "?"),
            latency_rounds=meta.get("latency_rounds", "?"),
        ),
        "",
        _PROSE("tfmot"),
        "",
    ]
    out += ["### Goals (issue #11)", ""]
    out += [
        f"- {g['goal']}: **{g['verdict']}** — {g['figure']}"
        for g in goal_list.goals(tfopt_rows, tfmot_rows)
    ]
    failures = _failures([*tfopt_rows, *tfmot_rows])
    out += ["", "### Failures", ""]
    out += failures or ["Nothing failed."]
    return "\n".join(out)
