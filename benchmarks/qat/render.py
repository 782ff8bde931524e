"""The QAT suite's section of BENCHMARKS.md; its prose is templates/qat.md."""

from __future__ import annotations

from benchmarks.harness.templates import Prose

_PROSE = Prose("qat")  # benchmarks/templates/qat.md


def _fmt(value, spec):
    if value is None or value == "":
        return "n/a"
    if isinstance(value, str):
        return value
    return format(value, spec)


def render(tfopt_rows: list[dict], tfmot_rows: list[dict]) -> str:
    rows = {r["side"]: r for r in [*tfopt_rows, *tfmot_rows]}
    a, b = rows.get("tfopt", {}), rows.get("tfmot", {})
    lines = [
        "| figure | tfopt (Keras 3) | tfmot (tf_keras) |",
        "|---|---|---|",
    ]
    table = [
        ("float model test accuracy", "float_accuracy", ".4f"),
        ("QAT model test accuracy (Keras)", "qat_keras_accuracy", ".4f"),
        ("int8 TFLite test accuracy (LiteRT)", "int8_tflite_accuracy", ".4f"),
        ("int8 TFLite bytes", "int8_tflite_bytes", "d"),
        ("int8 TFLite gzip bytes", "int8_tflite_gzip_bytes", "d"),
        ("float TFLite bytes", "float_tflite_bytes", "d"),
        ("epoch time QAT / float (fastest wall)", "epoch_ratio_qat_float", ".2f"),
        ("epoch CPU time QAT / float (median)", "epoch_cpu_ratio_qat_float", ".2f"),
        ("LiteRT latency int8 / float", "litert_ratio_int8_float", ".2f"),
        ("LiteRT int8 latency, ms", "litert_int8_ms", ".4f"),
        ("int8 conversion, s", "convert_s", ".2f"),
        ("onnxruntime latency int8 / float", "ort_ratio_int8_float", ".2f"),
        ("int8 ONNX test accuracy (onnxruntime)", "onnx_int8_accuracy", ".4f"),
        ("4-bit-weight QAT accuracy (Keras)", "w4_qat_keras_accuracy", ".4f"),
        ("4-bit-weight int8 TFLite accuracy", "w4_tflite_accuracy", ".4f"),
        ("peak RSS, MiB", "peak_rss_mb", ".0f"),
    ]
    for label, key, spec in table:
        lines.append(f"| {label} | {_fmt(a.get(key), spec)} | {_fmt(b.get(key), spec)} |")
    lines += ["", _PROSE("notes", onnx_format=a.get("onnx_format", "n/a"))]
    return "\n".join(lines)
