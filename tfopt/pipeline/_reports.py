"""report.json, report.md and the PNG plots `tfopt.optimize` writes into its output directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tfopt.pipeline.result import OptimizeResult

DPI = 100
QUANTIZATION_ERROR_SAMPLES = 256


def _save(figure, path: Path) -> str:
    """Saves a Figure (made without pyplot: nothing to close) as a PNG, atomically."""
    staged = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(staged, dpi=DPI)
    os.replace(staged, path)
    return str(path)


def _figures(result: OptimizeResult, plan) -> dict:
    """Writes the plots that apply to this run; returns name -> path."""
    from tfopt import report

    out = plan.out_dir
    written = {}
    artifacts = result.artifacts()
    written["accuracy-vs-size"] = _save(
        report.plot_pareto(artifacts, x="size", metric="accuracy"), out / "accuracy-vs-size.png"
    )
    timed = [a for a in artifacts if a["latency_ms"] is not None]
    if timed:
        written["accuracy-vs-latency"] = _save(
            report.plot_pareto(timed, x="latency", metric="accuracy"),
            out / "accuracy-vs-latency.png",
        )
    prune = result.recipe.stage("prune")
    if prune is not None:
        written["sparsity-schedule"] = _save(
            report.plot_sparsity_schedule(plan.prune_schedule, steps=plan.steps["prune"]),
            out / "sparsity-schedule.png",
        )
        written["layer-sparsity"] = _save(
            report.plot_layer_sparsity(result["prune"].model, m_by_n=prune.sparsity_m_by_n),
            out / "layer-sparsity.png",
        )
    if result.recipe.stage("qat") is not None:
        names = [s.name for s in result.stages]
        before = names.index("qat") - 1
        float_model = result.stages[before].model if before >= 0 else result.baseline.model
        written["quantization-error"] = _save(
            report.plot_quantization_error(
                float_model,
                result["qat"].model,
                plan.x_val[:QUANTIZATION_ERROR_SAMPLES],
                weights="qat",  # the QAT model's trained weights in both: quantization alone
            ),
            out / "quantization-error.png",
        )
    return written


_FIGURE_TEXT = {
    "accuracy-vs-size": "Validation accuracy against file size (raw; hollow: gzipped), "
    "with the Pareto front.",
    "accuracy-vs-latency": "Validation accuracy against latency of the exported files "
    "(median batch-1 run).",
    "sparsity-schedule": "The pruning stage's sparsity schedule over its training steps.",
    "layer-sparsity": "Sparsity of each pruned layer after the pruning stage.",
    "quantization-error": "Per-layer quantization error of the QAT model: each quantized "
    "layer's output against the same layer in float with the same trained weights (SQNR, dB; "
    "higher is better).",
}


def _markdown(result: OptimizeResult) -> str:
    lines = ["# tfopt optimize", ""]
    kinds = " -> ".join(s.kind for s in result.recipe.stages)
    lines += [f"Stages: {kinds}.", ""]
    lines += [result.table(markdown=True), ""]
    lines += [
        "Accuracy and loss are on the validation data; each exported file was run on it in "
        "its runtime (LiteRT for .tflite, onnxruntime for .onnx) and compared with the Keras "
        "model it was exported from (max abs error, top-1 agreement). Latency is the median of "
        "batch-1 runs of the file; Keras models (.keras, sizes of the saved file) are not timed."
        " Sparsity is the share of exact zeros among prunable weights (of the source model for "
        "a file).",
        "",
    ]
    lines += [f"- {note}" for note in result.notes]
    for s in result.stages:
        lines.append(
            f"- stage {s.name}: {s.seconds:.1f} s"
            + (f", {len(next(iter(s.history.values()), []))} epoch(s)" if s.history else "")
        )
    lines.append("")
    for name, path in result.figures.items():
        lines += [
            f"## {name}",
            "",
            _FIGURE_TEXT.get(name, ""),
            "",
            f"![{name}]({Path(path).name})",
            "",
        ]
    lines += ["## Recipe", "", "```json", json.dumps(result.recipe.to_dict(), indent=2), "```", ""]
    return "\n".join(lines)


def write(result: OptimizeResult, plan, log) -> None:
    """Writes the plots, report.json and report.md; records the figures in `result`."""
    result.figures.update(_figures(result, plan))
    out = plan.out_dir
    (out / "report.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    (out / "report.md").write_text(_markdown(result))
    log(f"wrote {out / 'report.json'}, {out / 'report.md'} and {len(result.figures)} plot(s)")
