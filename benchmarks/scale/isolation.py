"""A stage in a child process of its own, so that each stage's peak memory is its own.

`run_stage` starts `benchmarks.scale.child` on one stage and waits for it. The stage's
peak RSS (TensorFlow's import and the model's load included) is the child's VmHWM, the
high-water mark of its own address space in /proc: the child reports it at the end,
and the parent polls it while waiting, so that a child that dies (a converter can
abort the process) or overruns its time keeps the last figure seen. Not
`getrusage`/`wait4`'s ru_maxrss: Linux carries the parent's high-water mark into a
child across fork and exec, so every child would report at least the parent's peak.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHILD = ("-m", "benchmarks.scale.child")
POLL_S = 0.5
_LOG_TAIL = 4
_ERROR_CHARS = 300


def peak_mb(pid="self") -> float | None:
    """VmHWM of process `pid` (default this one) in MiB; None when /proc cannot say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError):
        pass
    return None


def run_stage(stage: str, args: dict, timeout_s: float, child: tuple = CHILD) -> dict:
    """The row the child wrote for `stage`, with "peak_rss_mb" (the child's peak
    resident memory), "process_s" (its wall time) and, if it died or overran, "error".

    Args:
        stage: a name in `child.STAGES`.
        args: the stage function's keyword arguments (JSON).
        timeout_s: seconds before the child is stopped.
        child: what `python` runs, before the child's arguments. Defaults to `CHILD`.
    """
    with tempfile.TemporaryDirectory(prefix="tfopt-scale-") as tmp:
        out, log = Path(tmp) / "row.json", Path(tmp) / "log.txt"
        command = [sys.executable, *child, "--stage", stage, "--args", json.dumps(args)]
        command += ["--out", str(out)]
        start = time.perf_counter()
        with open(log, "w", encoding="utf-8") as log_file:
            proc = subprocess.Popen(command, cwd=str(REPO_ROOT), stdout=log_file, stderr=log_file)
            status, polled = _wait(proc, timeout_s)
        row = json.loads(out.read_text()) if out.is_file() and out.stat().st_size else {}
        row["process_s"] = time.perf_counter() - start
        if row.get("peak_rss_mb") is None:
            row["peak_rss_mb"] = polled
        if status is None:
            row["error"] = f"Timeout: no result after {timeout_s:.0f} s; the process was stopped"
        elif status != 0 or not row.get("done"):
            how = f"signal {-status}" if status < 0 else f"exit status {status}"
            lines = [s.strip() for s in log.read_text(errors="replace").splitlines() if s.strip()]
            tail = " | ".join(lines[-_LOG_TAIL:])
            row.setdefault("error", f"ProcessCrash: the process died ({how}); last output: {tail}")
            row["error"] = row["error"][:_ERROR_CHARS]
        row.pop("done", None)
        return row


def _wait(proc, timeout_s):
    """(exit code, or None when stopped for overrunning; the child's last polled VmHWM)."""
    deadline, polled = time.monotonic() + timeout_s, None
    while proc.poll() is None:
        polled = peak_mb(proc.pid) or polled
        if time.monotonic() > deadline:
            proc.kill()  # the child this function started, by its handle
            proc.wait()
            return None, polled
        time.sleep(POLL_S)
    return proc.returncode, polled
