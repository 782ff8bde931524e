"""Silencing converter chatter (Python warnings, prints, and native stdout/stderr)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings


@contextlib.contextmanager
def quiet():
    """Swallows what the TFLite converter and tf2onnx print while they run.

    Native code writes to file descriptors 1 and 2 directly, so those are
    redirected to a temporary file too. Yields a `Captured` whose `text` holds
    what native code printed once the block has ended (for error messages).
    """
    log = Captured()
    # Python loggers keep their own reference to the stream they were given
    # (a notebook's, say), so redirecting sys.stderr does not reach them.
    loggers = [logging.getLogger(name) for name in ("tensorflow", "absl", "tf2onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    captured = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - closed in finally
    saved = []
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, io.UnsupportedOperation):
            stream.flush()
    for fd in (1, 2):
        try:
            saved.append((fd, os.dup(fd)))
            os.dup2(captured.fileno(), fd)
        except OSError:
            pass

    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield log
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        captured.seek(0)
        log.text = captured.read().decode("utf-8", "replace")
        captured.close()


class Captured:
    """What a `quiet()` block printed; `tail()` gives its last lines."""

    def __init__(self):
        self.text = ""

    def tail(self, lines: int = 15) -> str:
        kept = [line for line in self.text.strip().splitlines() if line.strip()]
        return "\n".join(kept[-lines:])
