"""The models of one side run in a child process, restarted past a crash or a hang.

A converter can abort the process (a failed C++ check in TensorFlow's converter or
calibrator kills it outright), and one model can hang; either would lose the
whole side's rows in the harness's worker. So the worker starts
`benchmarks.coverage.child` on its models, reads the rows it writes down, and when
the child dies or a model overruns `timeout_s`, records that as the error of the
stage the model was in (keeping the figures measured before it) and starts a new
child on the models left. Paying TensorFlow's import once per crash, not per model.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.coverage.measure import ERROR_CHARS

REPO_ROOT = Path(__file__).resolve().parents[2]
POLL_S = 1.0
_LOG_TAIL = 4


CHILD = ("-m", "benchmarks.coverage.child")


def run_models(
    side: str, names: list[str], quick: bool, timeout_s: float, child: tuple = CHILD
) -> list[dict]:
    """Rows of `names` (model names) on `side`, one per model, in order.

    Args:
        side: "tfopt" or "tfmot".
        names: the models' names (`models.ModelSpec.name`).
        quick: the --quick budget.
        timeout_s: seconds a model may run before its process is stopped.
        child: what `python` runs, before the child's arguments. Defaults to `CHILD`.
    """
    rows: list[dict] = []
    remaining = list(names)
    with tempfile.TemporaryDirectory(prefix="tfopt-coverage-") as tmp:
        attempt = 0
        while remaining:
            attempt += 1
            out, log = Path(tmp) / f"rows{attempt}.jsonl", Path(tmp) / f"log{attempt}.txt"
            status = _run_child(child, side, remaining, quick, timeout_s, out, log)
            records = _read(out)
            done = [r["row"] for r in records if "row" in r]
            rows += done
            remaining = remaining[len(done) :]
            if not remaining:
                break
            # The child died (or was stopped) on remaining[0]: keep what it measured.
            partial = [r for r in records[len(done) :] if "partial" in r] or records[-1:]
            stage = partial[-1]["stage"] if partial else "build"
            row = dict(partial[-1]["partial"]) if partial else {"model": remaining[0]}
            row.setdefault("side", side)
            row[f"{stage}_error"] = _why(status, timeout_s, log)[:ERROR_CHARS]
            rows.append(row)
            remaining = remaining[1:]
    return rows


def _run_child(child, side, names, quick, timeout_s, out: Path, log: Path):
    """Runs the child until it exits or a model overruns; returns its exit status,
    or None when it was stopped for overrunning."""
    command = [sys.executable, *child, "--side", side]
    command += ["--models", json.dumps(names), "--out", str(out)]
    command += ["--quick"] if quick else []
    out.touch()
    with open(log, "w", encoding="utf-8") as log_file:
        proc = subprocess.Popen(command, cwd=str(REPO_ROOT), stdout=log_file, stderr=log_file)
        finished, since = 0, time.monotonic()
        while proc.poll() is None:
            time.sleep(POLL_S)
            now_finished = sum(1 for r in _read(out) if "row" in r)
            if now_finished != finished:
                finished, since = now_finished, time.monotonic()
                print(f"[coverage {side}] {finished}/{len(names)} models", file=sys.stderr)
            elif time.monotonic() - since > timeout_s:
                proc.kill()  # the child this function started, by its handle
                proc.wait()
                return None
    return proc.returncode


def _read(path: Path) -> list[dict]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a crash
            pass
    return records


def _why(status, timeout_s, log: Path) -> str:
    """The error of a model whose child died or overran, with the log's last lines."""
    if status is None:
        return f"Timeout: no result after {timeout_s:.0f} s; the process was stopped"
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line][-_LOG_TAIL:]
    tail = " | ".join(lines)
    how = f"signal {-status}" if status < 0 else f"exit status {status}"
    return f"ProcessCrash: the process died ({how}); last output: {tail}"
