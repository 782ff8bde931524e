"""The export-trace mode QAT layers read while an exporter traces them (one thread-local).

Set only through `tfopt.quantization.export_trace`; the quantizers and wrappers
read it through `tracing()` and `target()`.
"""

from __future__ import annotations

import contextlib
import threading

_STATE = threading.local()
TARGETS = ("tflite", "onnx")


@contextlib.contextmanager
def trace(target: str):
    """Sets the export target for the duration of the block (nesting restores the outer)."""
    previous = getattr(_STATE, "target", None)
    _STATE.target = target
    try:
        yield
    finally:
        _STATE.target = previous


def tracing() -> bool:
    """True while an exporter traces the model (any target)."""
    return getattr(_STATE, "target", None) is not None


def target() -> str | None:
    """The export target being traced ("tflite", "onnx"), or None."""
    return getattr(_STATE, "target", None)
