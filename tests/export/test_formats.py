"""The export-format registry: validation, shadowing, built-ins kept, option checks."""

from __future__ import annotations

import dataclasses

import pytest

from tests.export import models
from tfopt import export


def _fmt(**changes):
    base = dict(
        name="mine",
        suffixes=(".mine",),
        runtime="litert",
        export=lambda model, path, **kw: None,
        open_runner=lambda path, num_threads=None: None,
        census=lambda path: None,
    )
    return export.ExportFormat(**{**base, **changes})


@pytest.mark.parametrize(
    "changes, error, says",
    [
        ({"suffixes": ".mine"}, TypeError, "tuple of file endings"),
        ({"suffixes": None}, TypeError, "tuple of file endings"),
        ({"suffixes": (".",)}, ValueError, "a '.' and at"),
        ({"suffixes": ("mine",)}, ValueError, "a '.' and at"),
        ({"suffixes": (".a/b",)}, ValueError, "no path separator"),
        ({"suffixes": ()}, ValueError, "non-empty"),
        ({"name": 3}, TypeError, "`name` must be a non-empty str"),
        ({"export": "to_c_array"}, TypeError, "`export` must be callable"),
        ({"runtime": None}, TypeError, "`runtime` must be a str"),
    ],
)
def test_export_format_validates_its_fields(changes, error, says):
    with pytest.raises(error, match=says):
        _fmt(**changes)


def test_suffixes_are_lower_case_and_unique():
    assert _fmt(suffixes=(".H", ".h")).suffixes == (".h",)


def test_built_ins_stay_and_an_override_shadows_until_unregistered(tmp_path):
    with pytest.raises(ValueError, match="built in and cannot be unregistered"):
        export.unregister_format("tflite")
    with pytest.raises(ValueError, match="is a built-in format's"):
        export.register_format(_fmt(name="onnx", suffixes=(".onnx",)), override=True)
    with pytest.raises(ValueError, match="clashes with the registered format"):
        export.register_format(_fmt(suffixes=(".tflite",)))
    export.register_format(_fmt(suffixes=(".tflite", ".onnx")), override=True)
    try:
        assert export.format_for("m.tflite").name == "mine"  # shadowed
        # tfopt's own exporters still verify their files with the built-in runners.
        result = export.to_tflite(models.mlp(), tmp_path / "m.tflite")
        assert result.format == "tflite" and result.parity.runtime == "litert"
        assert export.op_census(result.path, file_format="tflite").format == "tflite"
    finally:
        export.unregister_format("mine")
    assert export.format_for("M.TFLITE").name == "tflite"  # back, case-insensitive
    with pytest.raises(TypeError, match="format's name"):
        export.unregister_format(["mine"])


def test_longest_ending_wins_and_unknown_names_are_clear(tmp_path):
    export.register_format(_fmt(suffixes=(".int8.tflite",)))
    try:
        assert export.format_for("model.int8.tflite").name == "mine"
        assert export.format_for("model.tflite").name == "tflite"
    finally:
        export.unregister_format("mine")
    with pytest.raises(ValueError, match="names no registered format"):
        export.get_format("tfl")
    with pytest.raises(TypeError, match="must be a str or os.PathLike"):
        export.op_census(models.mlp())


def test_export_model_refuses_options_its_exporter_does_not_take(tmp_path):
    with pytest.raises(TypeError, match=r"`quantization` does not apply to onnx files"):
        export.export_model(models.mlp(), tmp_path / "m.onnx", quantization="int8")
    result = export.export_model(models.mlp(), tmp_path / "m.onnx", opset=17)
    assert result.format == "onnx" and not list(tmp_path.glob(".*"))
    assert dataclasses.asdict(result)["quantization"] == "float32"
