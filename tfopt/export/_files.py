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
    path = _as_path(path, argument)
    if not path.name:
        raise ValueError(
            f"Argument `{argument}` must name a file, e.g. 'model{suffixes[0]}'. "
            f"Received: {argument}={str(path)!r}"
        )
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


_NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems


def _as_path(path, argument: str) -> Path:
    """`path` as a Path, refusing what no file system takes (with the argument named)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"Argument `{argument}` must be a str or os.PathLike. "
            f"Received: {argument}={path!r} (of type {type(path).__name__})"
        )
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if "\x00" in text:
        raise ValueError(
            f"Argument `{argument}` holds a NUL character. Received: {argument}={text!r}"
        )
    if any(len(part.encode()) > _NAME_MAX for part in Path(text).parts):
        raise ValueError(
            f"Argument `{argument}` has a name longer than {_NAME_MAX} bytes, which file "
            f"systems refuse. Received: {argument}={text[:80]!r}..."
        )
    return Path(text)


def check_input_path(path, argument: str = "path") -> Path:
    """Validates a file to read: a path to an existing regular file.

    Raises:
        TypeError: not a str or os.PathLike.
        FileNotFoundError: no such file.
        ValueError: a directory, or a name no file system takes.
    """
    path = _as_path(path, argument)
    if path.is_dir():
        raise ValueError(
            f"Argument `{argument}` names a directory, not a file. Received: {argument}='{path}'"
        )
    if not path.is_file():
        raise FileNotFoundError(f"Argument `{argument}`: no such file: '{path}'")
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
        TypeError: `path` is not a str or os.PathLike.
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is a directory.
    """
    data = check_input_path(path).read_bytes()
    return len(data), gzip_size(data)
