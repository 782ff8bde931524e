"""Log lines that native code writes to file descriptor 2, filtered by severity in a block.

TensorFlow 2.19+ logs a few lines while it is imported (CUDA probing on a machine
without a GPU, oneDNN notices) before its logging reads TF_CPP_MIN_LOG_LEVEL
(tensorflow/tensorflow#100442), and LiteRT logs "INFO: Created TensorFlow Lite
XNNPACK delegate for CPU." when an interpreter first applies its default delegate.
Both come from C++ straight to descriptor 2, where Python's `sys.stderr` does not
reach (Jupyter shows them in the cell's output). `filtered_stderr(level)` puts a
pipe on descriptor 2 for the duration of a block; a thread (or a child process,
which outlives an abort) passes every line on to the real descriptor 2 as it
comes, except log lines below `level`. Lines that are not log lines (Python's
warnings, anything else) always pass. Nothing changes outside the block.

Imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

# Severity of a log line, as TF_CPP_MIN_LOG_LEVEL counts it: 0 INFO, 1 WARNING,
# 2 ERROR, 3 FATAL (a line is kept when its severity >= the level).
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_PATTERNS = (
    # absl: "I0000 00:00:1795964402.369937    3130 port.cc:153] oneDNN custom operations..."
    re.compile(rb"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]\s]+\] "),
    # TensorFlow before 2.19: "2025-09-17 14:44:05.157831: I external/.../cudart_stub.cc:32] ..."
    re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) [^\]\s]+\] "),
)
# LiteRT's minimal logging: "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
_LITERT = re.compile(rb"^(VERBOSE|INFO|WARNING|ERROR): ")
_LITERT_SEVERITY = {b"VERBOSE": -1, b"INFO": 0, b"WARNING": 1, b"ERROR": 2}
# absl's notice before its first line; as much an INFO as the lines it announces.
_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called"


def severity(line: bytes) -> int | None:
    """The severity of a native log line (0 INFO ... 3 FATAL), or None for any other line."""
    if line.startswith(_ABSL_BANNER):
        return 0
    for pattern in _PATTERNS:
        match = pattern.match(line)
        if match:
            return _SEVERITY[match.group(1).decode()]
    match = _LITERT.match(line)
    if match:
        return _LITERT_SEVERITY[match.group(1)]
    return None


def min_log_level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it: 0 (show everything) to 3; 0 if unset."""
    try:
        return max(0, min(3, int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))))
    except ValueError:
        return 0


def _keep(line: bytes, level: int) -> bool:
    found = severity(line)
    return found is None or found >= level


def _forward(read_fd: int, target_fd: int, level: int) -> None:
    """Copies lines from `read_fd` to `target_fd` until EOF, leaving out those below `level`."""
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        kept = b"".join(line + b"\n" for line in lines if _keep(line, level))
        if kept:
            with contextlib.suppress(OSError):
                os.write(target_fd, kept)
    if pending and _keep(pending, level):
        with contextlib.suppress(OSError):
            os.write(target_fd, pending)
    os.close(read_fd)


def _forwarder_process(level: int, target: int):
    """A child process that copies its stdin to `target`, filtered; None if none can start.

    Unlike a thread, it outlives an abort of this process: a fatal message written
    just before `abort()` still reaches the terminal.
    """
    import subprocess

    if not sys.executable:
        return None
    try:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), str(level)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=target,
        )
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def filtered_stderr(level: int, survive_abort: bool = False):
    """Leaves native log lines below `level` (0 INFO ... 3 FATAL) out of descriptor 2.

    Example: `with filtered_stderr(1): ...` drops INFO lines, keeps the rest.
    A level of 0 or less changes nothing. `survive_abort=True` forwards through a
    child process rather than a thread (for code that may abort, like loading
    TensorFlow's libraries: its fatal message then still shows).
    """
    if level <= 0:
        yield
        return
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stderr.flush()
    try:
        target = os.dup(2)
    except OSError:  # no descriptor 2 (pythonw): nothing to filter
        yield
        return
    process = _forwarder_process(level, target) if survive_abort else None
    thread = None
    if process is not None:
        os.dup2(process.stdin.fileno(), 2)
    else:
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        thread = threading.Thread(
            target=_forward, args=(read_fd, target, level), name="tfopt-stderr", daemon=True
        )
        thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            sys.stderr.flush()
        os.dup2(target, 2)  # gives the pipe's last write end back: the reader sees EOF
        # A child process started in the block may still hold the pipe: don't wait for it.
        if process is not None:
            process.stdin.close()
            with contextlib.suppress(Exception):
                process.wait(timeout=2.0)
            os.close(target)
        else:
            thread.join(timeout=2.0)
            if not thread.is_alive():
                os.close(target)


if __name__ == "__main__":  # the forwarder process: stdin to stderr, filtered
    _forward(0, 2, int(sys.argv[1]))
