"""Tables and reports of sizes, accuracy, parity and latency."""

from tfopt.report.table import format_bytes, render_table

__all__ = ["format_bytes", "render_table"]
