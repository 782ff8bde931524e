"""The export formats: one registration per format (suffix -> exporter, runner, census).

`to_tflite` and `to_onnx` are registered here as "tflite" and "onnx"; a new
target is one module with an exporter plus one `register_format` call, and then
`export_model`, `verify`, `op_census`, `benchmark_latency` and `tfopt export`
work on its files.

Example:

```python
fmt = tfopt.export.format_for("model.tflite")
print(fmt.name, fmt.runtime)                  # tflite litert
```
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    """One file format tfopt exports to, runs and inspects.

    Attributes:
        name: short name, e.g. "tflite".
        suffixes: file name endings, lower case with the dot, e.g. (".tflite",);
            the longest ending that matches a path wins.
        runtime: what runs the file, e.g. "litert", "onnxruntime".
        export: `export(model, path, **options) -> ExportResult`: writes the
            file staged, verifies it, publishes it.
        open_runner: `open_runner(path, num_threads) -> runner`; a runner has
            `inputs` / `outputs` (lists of IOSpec), `run(list of arrays) -> list
            of float arrays` and `output_steps() -> list of float`.
        census: `census(path) -> OpCensus`.
    """

    name: str
    suffixes: tuple[str, ...]
    runtime: str
    export: Callable
    open_runner: Callable
    census: Callable

    def __post_init__(self):
        bad = [s for s in self.suffixes if not (isinstance(s, str) and s.startswith("."))]
        if not self.suffixes or bad:
            raise ValueError(
                "Argument `suffixes` must be a non-empty tuple of file endings starting with "
                f"'.', e.g. ('.tflite',). Received: suffixes={self.suffixes!r}"
            )
        object.__setattr__(self, "suffixes", tuple(s.lower() for s in self.suffixes))


_FORMATS: dict[str, ExportFormat] = {}


def register_format(fmt: ExportFormat, *, override: bool = False) -> ExportFormat:
    """Registers an export format.

    Args:
        fmt: the `ExportFormat`.
        override: replace a format of the same name, or one claiming the same
            suffix. Defaults to `False`.

    Returns:
        `fmt`.

    Raises:
        TypeError: `fmt` is not an ExportFormat.
        ValueError: the name or a suffix is taken and `override` is False.
    """
    if not isinstance(fmt, ExportFormat):
        raise TypeError(
            "Argument `fmt` must be a tfopt.export.ExportFormat. "
            f"Received: fmt of type {type(fmt).__name__}"
        )
    clashes = [
        other.name
        for other in _FORMATS.values()
        if other.name == fmt.name or set(other.suffixes) & set(fmt.suffixes)
    ]
    if clashes and not override:
        raise ValueError(
            f"Export format {fmt.name!r} ({', '.join(fmt.suffixes)}) clashes with the registered "
            f"format(s) {clashes}. Pass override=True to replace them."
        )
    for name in clashes:
        _FORMATS.pop(name, None)
    _FORMATS[fmt.name] = fmt
    return fmt


def unregister_format(name: str) -> None:
    """Removes a registered format (no error if there is none)."""
    _FORMATS.pop(name, None)


def formats() -> list[ExportFormat]:
    """The registered formats, in registration order."""
    return list(_FORMATS.values())


def format_for(path, argument: str = "path") -> ExportFormat:
    """The format of a file, told by the longest registered ending its name has.

    Args:
        path: a file name (str or os.PathLike); it need not exist.
        argument: the argument name for the error message. Defaults to `"path"`.

    Returns:
        The `ExportFormat`.

    Raises:
        TypeError: `path` is not a str or os.PathLike.
        ValueError: no registered format has the path's ending.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"Argument `{argument}` must be a str or os.PathLike file name. "
            f"Received: {argument}={path!r} (of type {type(path).__name__})"
        )
    name = Path(path).name.lower()
    best = None
    for fmt in _FORMATS.values():
        for suffix in fmt.suffixes:
            if name.endswith(suffix) and (best is None or len(suffix) > len(best[0])):
                best = (suffix, fmt)
    if best is None:
        known = ", ".join(f"'{s}' ({f.name})" for f in _FORMATS.values() for s in f.suffixes)
        raise ValueError(
            f"Argument `{argument}` has no known file ending. Received: {argument}='{path}'. "
            f"Known endings: {known}."
        )
    return best[1]


def export_model(model, path, **options):
    """Exports `model` to `path` in the format its file ending names, verified.

    Example:

    ```python
    result = tfopt.export.export_model(model, "model.onnx")   # same as to_onnx
    ```

    Args:
        model: a built Keras 3 model.
        path: the output file; its ending picks the format.
        **options: the format's exporter's keyword arguments (`quantization=`,
            `representative_data=`, `opset=`...).

    Returns:
        The exporter's `ExportResult`.

    Raises:
        ValueError: an unknown ending, and whatever the exporter raises.
    """
    return format_for(path).export(model, path, **options)
