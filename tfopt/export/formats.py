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
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(
                f"Argument `name` must be a non-empty str. Received: name={self.name!r}"
            )
        if isinstance(self.suffixes, str) or not isinstance(self.suffixes, (tuple, list)):
            raise TypeError(
                "Argument `suffixes` must be a tuple of file endings, e.g. ('.tflite',). "
                f"Received: suffixes={self.suffixes!r}"
            )
        bad = [
            s
            for s in self.suffixes
            if not (isinstance(s, str) and s.startswith(".") and len(s) > 1)
            or any(c in s for c in "/\\")
        ]
        if not self.suffixes or bad:
            raise ValueError(
                "Argument `suffixes` must be a non-empty tuple of file endings: a '.' and at "
                f"least one character, no path separator, e.g. ('.tflite',). Received: "
                f"suffixes={self.suffixes!r}"
            )
        lowered = tuple(dict.fromkeys(s.lower() for s in self.suffixes))
        object.__setattr__(self, "suffixes", lowered)
        if not isinstance(self.runtime, str):
            raise TypeError(
                f"Argument `runtime` must be a str. Received: runtime={self.runtime!r}"
            )
        for field in ("export", "open_runner", "census"):
            value = getattr(self, field)
            if not callable(value):
                raise TypeError(
                    f"Argument `{field}` must be callable (see ExportFormat's attributes). "
                    f"Received: {field}={value!r}"
                )


_FORMATS: dict[str, ExportFormat] = {}
# Registered by tfopt itself; their names cannot be replaced or removed (tfopt's own
# exporters verify their files with them, whatever else claims their endings).
BUILTIN = ("tflite", "onnx")


def register_format(fmt: ExportFormat, *, override: bool = False) -> ExportFormat:
    """Registers an export format.

    A path's longest matching ending picks its format; between formats claiming the
    same ending, the one registered last wins (so an override shadows, and
    unregistering it brings the previous one back).

    Args:
        fmt: the `ExportFormat`.
        override: replace a format of the same name, or shadow formats claiming
            the same ending. Defaults to `False`.

    Returns:
        `fmt`.

    Raises:
        TypeError: `fmt` is not an ExportFormat.
        ValueError: the name or an ending is taken and `override` is False, or the
            name is a built-in format's.
    """
    if not isinstance(fmt, ExportFormat):
        raise TypeError(
            "Argument `fmt` must be a tfopt.export.ExportFormat. "
            f"Received: fmt of type {type(fmt).__name__}"
        )
    if fmt.name in BUILTIN and fmt.name in _FORMATS:
        raise ValueError(
            f"Export format name {fmt.name!r} is a built-in format's. Give yours another name; "
            "with override=True it may still claim the same file endings."
        )
    clashes = [
        other.name
        for other in _FORMATS.values()
        if other.name == fmt.name or set(other.suffixes) & set(fmt.suffixes)
    ]
    if clashes and not override:
        raise ValueError(
            f"Export format {fmt.name!r} ({', '.join(fmt.suffixes)}) clashes with the registered "
            f"format(s) {clashes}. Pass override=True to replace (same name) or shadow "
            "(same ending) them."
        )
    _FORMATS.pop(fmt.name, None)
    _FORMATS[fmt.name] = fmt
    return fmt


def unregister_format(name: str) -> None:
    """Removes a registered format (no error if there is none).

    Raises:
        TypeError: `name` is not a str.
        ValueError: `name` is a built-in format.
    """
    if not isinstance(name, str):
        raise TypeError(f"Argument `name` must be a format's name (str). Received: {name!r}")
    if name in BUILTIN:
        raise ValueError(f"Export format {name!r} is built in and cannot be unregistered.")
    _FORMATS.pop(name, None)


def get_format(name: str) -> ExportFormat:
    """The registered format of that name.

    Raises:
        ValueError: no format has that name.
    """
    if not isinstance(name, str):
        raise TypeError(
            "Argument `file_format` must be a format's name (str), e.g. 'tflite'. "
            f"Received: {name!r}"
        )
    if name not in _FORMATS:
        raise ValueError(
            f"Argument `file_format` names no registered format. Received: {name!r}. "
            f"Formats: {', '.join(map(repr, _FORMATS))}"
        )
    return _FORMATS[name]


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
    for fmt in reversed(list(_FORMATS.values())):  # the latest registration wins a tie
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
        TypeError: an option the format's exporter does not take.
        ValueError: an unknown ending, and whatever the exporter raises.
    """
    import inspect

    fmt = format_for(path)
    params = inspect.signature(fmt.export).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        takes = [
            n for n, p in params.items() if p.kind is p.KEYWORD_ONLY or p.default is not p.empty
        ]
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise TypeError(
                f"Argument `{unknown[0]}` does not apply to {fmt.name} files "
                f"({', '.join(fmt.suffixes)}). Received: {unknown[0]}={options[unknown[0]]!r}. "
                f"Options of {getattr(fmt.export, '__name__', 'its exporter')}: {', '.join(takes)}"
            )
    return fmt.export(model, path, **options)
