"""An exported file's figures in a stage's row: sizes, parity, notes, conversion cost."""

from __future__ import annotations

import hashlib
from pathlib import Path

from benchmarks import common
from benchmarks.scale import isolation


def record_parity(row: dict, parity) -> None:
    """A `tfopt.export.VerifyResult`'s figures (against the Keras model the file came from)."""
    row["parity_max_abs"] = parity.max_abs_error
    row["parity_top1"] = parity.top1_agreement
    row["parity_within_one_step"] = parity.within_one_step
    row["parity_max_steps"] = parity.max_error_steps


def record_file(row: dict, path) -> None:
    """Raw and gzip bytes of the file at `path`, and the start of its SHA-256."""
    row["bytes"], row["gzip_bytes"] = common.file_sizes(path)
    row["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def timed_conversion(row: dict, convert, *args, **kwargs):
    """Calls `convert(*args, **kwargs)`; records "convert_s" and "peak_before_mb" (this
    process's peak RSS before the call: the child's peak minus it is what the
    conversion added on top of what came before) and returns the call's result."""
    row["peak_before_mb"] = isolation.peak_mb()
    result, row["convert_s"] = common.timed(convert, *args, **kwargs)
    return result


def record_export(row: dict, result) -> None:
    """A `tfopt.export.ExportResult`: sizes, quantization, parity and notes."""
    record_file(row, result.path)
    row["quantization"] = result.quantization
    record_parity(row, result.parity)
    row["notes"] = "; ".join(result.notes)[:300]
