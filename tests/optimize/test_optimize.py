"""tfopt.optimize end to end on the digits, with tiny budgets (1 epoch, 256 samples)."""

import json

import keras
import numpy as np
import pytest

import tfopt
from tests.optimize.conftest import trained_cnn
from tfopt.pipeline import (
    DistillStage,
    ExportStage,
    PruneStage,
    PTQStage,
    QATStage,
    Recipe,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _check_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 5_000, path  # a real plot, not an empty canvas


def _check_file(file, out_dir):
    """An exported file: on disk at its size, verified, timed, its accuracy its outputs'."""
    path = out_dir / file.name
    assert path.stat().st_size == file.result.bytes
    assert file.result.gzip_bytes > 0
    assert file.result.parity.num_samples == 128  # every validation sample
    assert file.result.parity.top1_agreement >= 0.9  # the exporters' own bar, met
    assert file.latency.median_ms > 0 and file.latency.runs == 5


def test_prune_then_qat_then_tflite_and_onnx(digits, small, tmp_path, fits):
    model = trained_cnn(digits)
    before = [w.copy() for w in model.get_weights()]
    fits.clear()
    recipe = Recipe(
        [
            PruneStage(sparsity=0.8, epochs=1),
            QATStage(epochs=1),
            ExportStage(formats=["tflite", "onnx"], latency_runs=5),
        ]
    )
    lines = []
    result = tfopt.optimize(
        model, *small, recipe, out_dir=tmp_path, verbose=0, log=lines.append,
        log_dir=tmp_path / "logs",
    )  # fmt: skip

    assert [s.name for s in result.stages] == ["prune", "qat"]
    assert len(fits) == 2  # one fit per training stage
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # untouched
    prune, qat = result["prune"], result["qat"]
    # PolynomialDecay reaches 0.8 at its end step inside the stage's 8 steps; each layer's
    # mask zeros round(0.8 * size) weights, so the total is 0.8 within a weight per layer.
    assert prune.sparsity == pytest.approx(0.8, abs=1e-3)
    assert qat.sparsity >= prune.sparsity - 1e-6  # preserve_sparsity=True after pruning
    assert tfopt.quantization.is_qat_model(qat.model)
    assert not any(
        isinstance(layer, tfopt.pruning.PruneLowMagnitude) for layer in prune.model.layers
    )  # stripped
    for s in (result.baseline, prune, qat):
        assert 0.0 <= s.metrics["val_accuracy"] <= 1.0 and s.metrics["val_loss"] > 0
        assert (tmp_path / f"{s.name}.keras").stat().st_size == s.bytes
    assert set(prune.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}

    names = [f.name for f in result.exports]
    assert names == ["baseline.tflite", "baseline.onnx", "optimized.tflite", "optimized.onnx"]
    for file in result.exports:
        _check_file(file, tmp_path)
    files = {f.name: f for f in result.exports}
    lite, onnx = files["optimized.tflite"], files["optimized.onnx"]
    assert lite.result.quantization == "int8-qat"
    assert onnx.result.quantization.startswith("qdq-")
    assert tfopt.export.op_census(lite.result.path).float_compute_ops() == []
    # The file's accuracy differs from the QAT model's only where their top-1 differ.
    for file in (lite, onnx):
        slack = 1 - file.result.parity.top1_agreement
        assert abs(file.accuracy - qat.metrics["val_accuracy"]) <= slack + 1e-9
    assert lite.sparsity == qat.sparsity
    # int8 weights are a quarter of float32's; on this 2,570-parameter CNN the flatbuffer's
    # own few KiB keep the file at about half the float file (measured 8.8 vs 18.6 KiB).
    assert lite.result.bytes < files["baseline.tflite"].result.bytes * 0.6
    assert any(line.startswith("export: optimized.onnx") for line in lines)

    report = json.loads((tmp_path / "report.json").read_text())
    assert report == json.loads(json.dumps(result.to_dict()))
    assert [a["name"] for a in report["artifacts"]] == [
        "baseline.keras", "prune.keras", "qat.keras", *names,
    ]  # fmt: skip
    assert Recipe.from_dict(report["recipe"]) == recipe
    markdown = (tmp_path / "report.md").read_text()
    assert "| optimized.tflite" in markdown and "gzip bytes" in markdown
    figures = [
        "accuracy-vs-size", "accuracy-vs-latency", "sparsity-schedule", "layer-sparsity",
        "quantization-error",
    ]  # fmt: skip
    assert sorted(result.figures) == sorted(figures)
    for name in figures:
        _check_png(tmp_path / f"{name}.png")
        assert f"]({name}.png)" in markdown
    for stage in ("prune", "qat"):  # TensorBoard: per-layer sparsity, quantization ranges
        assert list((tmp_path / "logs" / stage).rglob("events.out.tfevents*")), stage
    table = result.table().splitlines()
    assert len(table) == 2 + 7 and table[0].startswith("artifact")


def test_distill_then_two_four_pruning_then_int8_ptq(digits, small, tmp_path):
    teacher = trained_cnn(digits, filters=16, name="teacher", softmax=True)
    student = trained_cnn(digits, filters=4, name="student", softmax=True, epochs=1)
    recipe = Recipe(
        [
            DistillStage(epochs=1, temperature=2.0, alpha=0.5),
            PruneStage(sparsity_m_by_n=(2, 4), leave_dense=["conv1"], epochs=1),
            PTQStage(mode="int8", calibration_samples=64),
            ExportStage(formats=["tflite"], latency_runs=5, baseline=False),
        ]
    )
    result = tfopt.optimize(
        student, *small, recipe, teacher=teacher, out_dir=tmp_path, verbose=0, log=print
    )
    assert [s.name for s in result.stages] == ["distill", "prune", "ptq"]
    assert teacher.trainable  # the Distiller froze it for the stage only
    assert result.teacher.metrics["val_accuracy"] > 0.5  # a trained teacher, evaluated
    assert "from_logits=False" in result.notes[0]  # softmax outputs: told from the outputs

    report = tfopt.pruning.sparsity_report(result["prune"].model, m_by_n=(2, 4))
    rows = {r["layer"]: r for r in report.rows}
    assert rows["conv1"]["sparsity"] == 0.0  # left dense
    for name in ("conv2", "classes"):
        assert rows[name]["m_by_n_conformance"] == 1.0 and rows[name]["sparsity"] == 0.5

    (file,) = result.exports
    assert file.name == "optimized.tflite" and file.source == "ptq"
    _check_file(file, tmp_path)
    assert file.result.quantization == "int8"
    assert tfopt.export.op_census(file.result.path).float_compute_ops() == []
    assert result["ptq"].metrics == {"val_accuracy": file.accuracy, "val_loss": file.loss}
    assert sorted(result.figures) == [
        "accuracy-vs-latency", "accuracy-vs-size", "layer-sparsity", "sparsity-schedule",
    ]  # fmt: skip
    assert [a["name"] for a in result.artifacts()] == [
        "baseline.keras", "teacher.keras", "distill.keras", "prune.keras", "optimized.tflite",
    ]  # fmt: skip


def test_an_export_only_recipe_exports_the_model_once(small, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)], name="tiny"
    )
    result = tfopt.optimize(
        model, *small, {"stages": [{"stage": "export", "latency_runs": 5}]},
        out_dir=tmp_path, verbose=0, log=lambda _: None,
    )  # fmt: skip
    assert result.stages == [] and result.model is model
    assert [f.name for f in result.exports] == ["baseline.tflite"]
    assert result.exports[0].result.parity.max_abs_error < 1e-5
    assert "from_logits=True" in result.notes[0]  # raw Dense outputs are logits
