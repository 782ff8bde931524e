"""Write, verify, then publish: an exporter's file appears only when complete and checked."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from pathlib import Path

from tfopt.export import _files, acceptance
from tfopt.export.result import ExportResult


def _umask() -> int:
    """The process's file mode creation mask (read from /proc where it is, else set and
    restored at once)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_STAGED = "tfopt-staged-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_orphans(path: Path) -> list[Path]:
    """Removes staged files for `path` left by exporting processes that died (SIGKILL,
    power loss) before they could clean up; returns what it removed.

    A staged file's name carries the process id that wrote it; one whose process is
    gone is an orphan. Files of live processes (a concurrent export) are left alone.
    """
    removed = []
    for candidate in Path(path).parent.glob(f".{Path(path).stem}.{_STAGED}*{Path(path).suffix}"):
        pid = candidate.name[len(f".{Path(path).stem}.{_STAGED}") :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed


@contextlib.contextmanager
def staged_file(path: Path):
    """Yields a temporary path beside `path` (same suffix); renames it on success.

    On any error the temporary file is removed and `path` is left as it was. The
    published file gets the permissions any new file of the user gets (0666 less
    the umask), not the private 0600 of a temporary file. A process killed while
    staging leaves its hidden staged file, which the next export to `path` removes.
    """
    path = Path(path)
    remove_orphans(path)
    prefix = f".{path.stem}.{_STAGED}{os.getpid()}-"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=path.suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def publish(
    path, data: bytes, check, *, format, quantization, verified_on, notes=(), parity_bar=None
):
    """Writes `data` staged beside `path`, checks it, renames it into place.

    Args:
        path: the file to publish.
        data: its bytes.
        check: `check(staged_path)` runs the staged file against the model and
            returns a `VerifyResult`; raising leaves `path` as it was.
        format, quantization, verified_on, notes: the `ExportResult` fields.
        parity_bar: the `ParityBar` the file must meet (None: no bar).

    Returns:
        The `ExportResult` (sizes of `data`, parity reported for `path`).

    Raises:
        ParityError: the file misses `parity_bar` (then `path` is left as it was).
    """
    with staged_file(path) as staged:
        write_bytes(staged, data)
        parity = check(staged)
        acceptance.check(parity, parity_bar, path, quantization)
    return ExportResult(
        path=str(path),
        format=format,
        quantization=quantization,
        bytes=len(data),
        gzip_bytes=_files.gzip_size(data),
        parity=dataclasses.replace(parity, path=str(path)),
        verified_on=verified_on,
        notes=tuple(notes),
        parity_bar=parity_bar,
    )
