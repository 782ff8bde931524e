"""The worker protocol: one side of one suite, run in a fresh process.

The parent runs::

    python benchmarks/run.py --worker <suite> --side tfopt|tfmot [--quick]

in the side's environment (`side_environment`): the tfopt side with
TF_USE_LEGACY_KERAS unset (Keras 3), the tfmot side with TF_USE_LEGACY_KERAS=1
(tf.keras is tf_keras there). The worker (`run_worker`) prints its rows as one
JSON line after `ROWS_MARKER`; the parent (`run_side`) reads the last such line,
or records why there was none.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness.discovery import BENCH_DIR, REPO_ROOT, load_suite
from benchmarks.harness.machine import load_average

SIDES = ("tfopt", "tfmot")
ROWS_MARKER = "@@TFOPT-BENCHMARK-ROWS@@ "
ENTRY_POINT = BENCH_DIR / "run.py"  # the script a worker process runs
_ERROR_TAIL_LINES = 25


def side_environment(side: str, base: dict | None = None) -> dict:
    """The environment a side runs in: Keras 3 for tfopt, tf_keras (legacy) for tfmot."""
    env = dict(os.environ if base is None else base)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    if side == "tfmot":
        env["TF_USE_LEGACY_KERAS"] = "1"
    else:
        env.pop("TF_USE_LEGACY_KERAS", None)
    return env


def _jsonable(value):
    """Rows as plain JSON: numpy scalars become Python numbers, NaN/inf become None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"Benchmark rows must hold numbers, strings, booleans or None. Received: {value!r} "
        f"(of type {type(value).__name__})"
    )


def check_rows(rows, where: str) -> list[dict]:
    """`rows` as plain JSON (see `_jsonable`); `where` names the function that made them.

    Raises:
        TypeError: `rows` is not a list of dicts, or holds a value JSON cannot.
    """
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TypeError(
            f"{where} must return a list of dicts. Received: {type(rows).__name__} {rows!r:.200}"
        )
    return _jsonable(rows)


def run_worker(name: str, side: str, quick: bool, suite_dir: Path) -> int:
    """One side of suite `name`, in this process: prints its rows after `ROWS_MARKER`."""
    # Fix the Keras flavour before anything can import TensorFlow (the environment is
    # computed before os.environ is cleared: clearing first left only the side's two
    # variables, without PATH, HOME or a suite's own settings).
    env = side_environment(side)
    os.environ.clear()
    os.environ.update(env)
    suite = load_suite(name, suite_dir)
    rows = getattr(suite, f"run_{side}")(quick)
    rows = check_rows(rows, f"suite_{name}.run_{side}")
    # On a line of its own, whatever the suite printed before.
    print("\n" + ROWS_MARKER + json.dumps(rows), flush=True)
    return 0


def run_side(name: str, side: str, quick: bool, suite_dir: Path, timeout: float) -> dict:
    """Runs one side in a subprocess; returns {"rows", "error", "seconds", "load_avg_1m"}."""
    command = [sys.executable, str(ENTRY_POINT), "--worker", name, "--side", side]
    command += ["--suite-dir", str(suite_dir)]
    if quick:
        command.append("--quick")
    load = load_average()
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            command,
            env=side_environment(side),
            cwd=str(REPO_ROOT),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        return {
            "rows": [],
            "error": f"Timed out after {timeout:.0f} s.\n{tail(_text(err.stderr))}",
            "seconds": time.perf_counter() - start,
            "load_avg_1m": load,
        }
    seconds = time.perf_counter() - start
    rows = None
    for line in proc.stdout.splitlines():
        if line.startswith(ROWS_MARKER):
            rows = json.loads(line[len(ROWS_MARKER) :])  # the last such line wins
    if proc.returncode != 0 or rows is None:
        why = f"exit status {proc.returncode}" if proc.returncode else "no rows printed"
        detail = tail(proc.stderr) or tail(proc.stdout)
        error = f"Worker failed ({why}).\n{detail}"
        return {"rows": [], "error": error, "seconds": seconds, "load_avg_1m": load}
    return {"rows": rows, "error": None, "seconds": seconds, "load_avg_1m": load}


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def tail(text: str, lines: int = _ERROR_TAIL_LINES) -> str:
    """The last `lines` non-blank lines of `text`."""
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
