"""Exporters to TFLite (LiteRT) and ONNX that prove what they wrote.

Every exporter runs the file it wrote against the Keras model and returns the
parity figures with the sizes; `verify`, `op_census` and `benchmark_latency`
work on any `.tflite` / `.onnx` file.
"""

from tfopt.export import _builtin_formats  # noqa: F401  (registers "tflite" and "onnx")
from tfopt.export._files import file_sizes
from tfopt.export.acceptance import ParityBar, ParityError
from tfopt.export.census import COMPUTE_OPS, OpCensus, OpInfo, TensorInfo, op_census
from tfopt.export.formats import (
    ExportFormat,
    export_model,
    format_for,
    formats,
    get_format,
    register_format,
    unregister_format,
)
from tfopt.export.latency import LatencyResult, benchmark_latency
from tfopt.export.onnx import to_onnx
from tfopt.export.result import ExportResult
from tfopt.export.tflite import QUANTIZATIONS, to_tflite
from tfopt.export.verify import VerifyResult, verify

__all__ = [
    "COMPUTE_OPS",
    "QUANTIZATIONS",
    "ExportFormat",
    "ExportResult",
    "LatencyResult",
    "OpCensus",
    "OpInfo",
    "ParityBar",
    "ParityError",
    "TensorInfo",
    "VerifyResult",
    "benchmark_latency",
    "export_model",
    "file_sizes",
    "format_for",
    "formats",
    "get_format",
    "op_census",
    "register_format",
    "to_onnx",
    "to_tflite",
    "unregister_format",
    "verify",
]
