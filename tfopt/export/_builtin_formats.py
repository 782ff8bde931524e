"""Registers the built-in formats: TFLite (LiteRT) and ONNX (onnxruntime)."""

from __future__ import annotations

from tfopt.export import _runtime, census
from tfopt.export.formats import ExportFormat, register_format
from tfopt.export.onnx import to_onnx
from tfopt.export.tflite import to_tflite

register_format(
    ExportFormat(
        name="tflite",
        suffixes=(".tflite",),
        runtime="litert",
        export=to_tflite,
        open_runner=_runtime.TFLiteRunner,
        census=census.tflite_census,
    )
)
register_format(
    ExportFormat(
        name="onnx",
        suffixes=(".onnx",),
        runtime="onnxruntime",
        export=to_onnx,
        open_runner=_runtime.ONNXRunner,
        census=census.onnx_census,
    )
)
