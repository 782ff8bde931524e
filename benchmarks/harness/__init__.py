"""The benchmark harness behind benchmarks/run.py, one concern per module.

- `discovery`: find, order and load the suites (``suite_<name>.py``).
- `worker`: the worker protocol; each side of a suite runs in a fresh process.
- `machine`: versions, machine facts, load average, the time.
- `render`: results files, the header and sections of BENCHMARKS.md.
- `runner`: a run of both sides of each suite, then BENCHMARKS.md.
- `templates`: the report prose, kept in benchmarks/templates/*.md (`Prose`).

Nothing here imports TensorFlow, Keras, tf_keras or tfmot.
"""

from benchmarks.harness.discovery import discover_suites, load_suite, sort_suites
from benchmarks.harness.machine import machine, versions
from benchmarks.harness.render import (
    load_results,
    render_markdown,
    render_section,
    save_results,
    write_text_atomic,
)
from benchmarks.harness.runner import run_suites
from benchmarks.harness.templates import Prose
from benchmarks.harness.worker import (
    ROWS_MARKER,
    SIDES,
    check_rows,
    run_side,
    run_worker,
    side_environment,
)

__all__ = [
    "ROWS_MARKER",
    "SIDES",
    "Prose",
    "check_rows",
    "discover_suites",
    "load_results",
    "load_suite",
    "machine",
    "render_markdown",
    "render_section",
    "run_side",
    "run_suites",
    "run_worker",
    "save_results",
    "side_environment",
    "sort_suites",
    "versions",
    "write_text_atomic",
]
