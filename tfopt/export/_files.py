"""Output paths and atomic writes shared by the exporters."""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path


def check_output_path(path, suffixes: tuple[str, ...], argument: str = "path") -> Path:
    """Validates an output path before any work is done.

    The directory must exist and accept a new file: this is probed by creating
    (and removing) a temporary file there, which is the only check that also
    holds for root and for read-only mounts.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"Argument `{argument}` must be a str or os.PathLike. "
            f"Received: {argument}={path!r} (of type {type(path).__name__})"
        )
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        wanted = " or ".join(f"'{s}'" for s in suffixes)
        raise ValueError(
            f"Argument `{argument}` must end in {wanted}. Received: {argument}='{path}'. "
            f"Try {argument}='{path.with_suffix(suffixes[0])}'."
        )
    if path.is_dir():
        raise ValueError(
            f"Argument `{argument}` names a directory, not a file. Received: {argument}='{path}'"
        )
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ValueError(
            f"Argument `{argument}`: directory '{directory}' does not exist. "
            f"Received: {argument}='{path}'. Create it first (os.makedirs) or pick another path."
        )
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".probe")
    except OSError as err:
        raise PermissionError(
            f"Argument `{argument}`: cannot write to directory '{directory}' ({err.strerror}). "
            f"Received: {argument}='{path}'."
        ) from err
    os.close(fd)
    os.unlink(probe)
    return path


def gzip_size(data: bytes) -> int:
    """Size of `data` after gzip at level 9: what a download or an OTA update costs."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def file_sizes(path) -> tuple[int, int]:
    """The size of a file on disk and after gzip at level 9 (what a download costs).

    Example:

    ```python
    raw, gzipped = tfopt.export.file_sizes("model_int8.tflite")
    ```

    Args:
        path: a file (str or os.PathLike).

    Returns:
        (raw bytes, gzip bytes), both ints.

    Raises:
        FileNotFoundError: `path` does not exist.
    """
    data = Path(path).read_bytes()
    return len(data), gzip_size(data)
