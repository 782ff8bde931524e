"""`tfopt optimize` and `tfopt demo --save`, run as a user runs them."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfopt.cli import main


def _tfopt(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "tfopt", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=900,
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """`tfopt demo --save`: the demo's model and data files (2 epochs: the files matter here)."""
    root = tmp_path_factory.mktemp("demo")
    run = _tfopt("demo", "--epochs", 2, "--out", root / "demo", "--save", root / "inputs")
    assert run.returncode == 0, run.stderr
    return root / "inputs", run


def test_demo_save_writes_the_model_and_its_data(saved, digits):
    inputs, run = saved
    model = keras.saving.load_model(inputs / "model.keras")
    assert model.name == "digits_cnn" and model.output_shape == (None, 10)
    with np.load(inputs / "data.npz") as data:
        assert sorted(data.files) == ["x_train", "x_val", "y_train", "y_val"]
        assert data["x_train"].shape[1:] == model.input_shape[1:]
        assert len(data["x_train"]) + len(data["x_val"]) == 1797  # every digit, split once
        assert np.array_equal(data["y_val"], digits.y_test)  # the demo's held-out split
    assert "tfopt optimize" in run.stdout


def test_optimize_prints_progress_exports_and_a_table(saved, tmp_path):
    inputs, _ = saved
    out = tmp_path / "out"
    run = _tfopt(
        "optimize", inputs / "model.keras", "--data", inputs / "data.npz", "--prune", "0.5",
        "--epochs", 1, "--export", "tflite", "--out", out,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    # Keras's own progress bar: 1,438 samples in batches of 32 are 45 steps.
    assert "45/45" in run.stdout and "val_accuracy" in run.stdout
    assert "export: optimized.tflite from prune: float32" in run.stdout
    header = next(line for line in run.stdout.splitlines() if line.startswith("artifact"))
    assert "gzip bytes" in header and "latency ms" in header
    assert "prune.keras" in run.stdout and "baseline.tflite" in run.stdout
    report = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in report["stages"]] == ["prune"]
    assert report["stages"][0]["sparsity"] == pytest.approx(0.5, abs=1e-3)
    for name in ("report.md", "accuracy-vs-size.png", "sparsity-schedule.png"):
        assert (out / name).stat().st_size > 0


@pytest.mark.slow
def test_optimize_json_with_a_recipe_file(saved, tmp_path):
    inputs, _ = saved
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "stages:\n"
        "  - {stage: prune, sparsity: 0.5, epochs: 1}\n"
        "  - {stage: qat, epochs: 1}\n"
        "  - {stage: export, formats: [tflite, onnx], latency_runs: 5, baseline: false}\n"
    )
    out = tmp_path / "out"
    run = _tfopt(
        "optimize", inputs / "model.keras", "--data", inputs / "data.npz", "--recipe", recipe,
        "--out", out, "--json",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)  # nothing but the JSON on stdout
    assert [s["name"] for s in result["stages"]] == ["prune", "qat"]
    exports = {e["name"]: e for e in result["exports"]}
    assert exports["optimized.tflite"]["export"]["quantization"] == "int8-qat"
    assert exports["optimized.onnx"]["export"]["quantization"].startswith("qdq-")
    assert result == json.loads((out / "report.json").read_text())
    assert "export: optimized.onnx" in run.stderr  # the progress lines went to stderr


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """A small saved classifier, a Lambda model and an .npz for the error cases."""
    root = tmp_path_factory.mktemp("files")
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    flat = keras.layers.Flatten()(inp)
    keras.Model(inp, keras.layers.Dense(10)(flat)).save(root / "model.keras")
    doubled = keras.layers.Lambda(lambda t: t * 2.0)(flat)
    keras.Model(inp, keras.layers.Dense(10)(doubled)).save(root / "lambda.keras")
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((32, 8, 8, 1), dtype=np.float32),
        "y_train": rng.integers(0, 10, 32),
        "x_val": rng.random((16, 8, 8, 1), dtype=np.float32),
        "y_val": rng.integers(0, 10, 16),
    }
    np.savez(root / "data.npz", **arrays)
    return root, arrays


def _error(capsys, *args):
    code = main(["optimize", *map(str, args)])
    assert code == 2
    return capsys.readouterr().err


def test_a_lambda_model_is_refused_without_unsafe(tiny_files, tmp_path, capsys):
    root, _ = tiny_files
    out = tmp_path / "out"
    err = _error(capsys, root / "lambda.keras", "--data", root / "data.npz", "--out", out)
    assert "MODEL:" in err and "safe mode refuses" in err and "pass --unsafe" in err
    assert not out.exists()
    code = main(
        ["optimize", str(root / "lambda.keras"), "--data", str(root / "data.npz"), "--out",
         str(out), "--unsafe", "--prune", "0.5", "--epochs", "1", "--json"]
    )  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in result["stages"]] == ["prune"]


def test_an_npz_without_an_array_is_named(tiny_files, tmp_path, capsys):
    root, arrays = tiny_files
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=arrays["x_train"], y_train=arrays["y_train"], x_val=arrays["x_val"])
    err = _error(capsys, root / "model.keras", "--data", partial, "--out", tmp_path / "o")
    assert "--data:" in err and "has no array y_val" in err and "It holds: x_train" in err
    np.save(tmp_path / "one.npy", arrays["x_train"])
    err = _error(capsys, root / "model.keras", "--data", tmp_path / "one.npy", "--out", tmp_path)
    assert "--data must be an .npz archive" in err


def test_labels_that_do_not_fit_name_the_flag(tiny_files, tmp_path, capsys):
    root, arrays = tiny_files
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{**arrays, "y_train": arrays["y_train"] + 5})
    err = _error(capsys, root / "model.keras", "--data", bad, "--out", tmp_path / "o")
    assert "--data: y_train holds class ids in [" in err and "10 output units" in err
    assert "train_data" not in err  # the message speaks in the command line's terms


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--prune", "1.5"], "--prune takes a sparsity in [0, 1)"),
        (["--prune", "4:2"], "or an m:n pattern with 0 < m < n"),
        (["--quantize", "int8", "--export", "tflite,onnx"], "quantizes the TFLite file only"),
        (["--export", "coreml"], "--export takes tflite, onnx or tflite,onnx"),
        (["--export", ""], "--export takes tflite, onnx or tflite,onnx"),
        (["--epochs", "2"], "--epochs sets the budget of the training stages"),
        (["--leave-dense", "conv"], "--leave-dense keeps layers dense while pruning"),
        (["--recipe", "r.yaml", "--prune", "0.5"], "--recipe sets the stages"),
        (["--recipe", "missing.yaml"], "Recipe file not found"),
    ],
)
def test_flags_that_cannot_make_a_recipe(tiny_files, tmp_path, capsys, flags, message):
    root, _ = tiny_files
    err = _error(
        capsys, root / "model.keras", "--data", root / "data.npz", "--out", tmp_path / "o", *flags
    )
    assert message in err
    assert not (tmp_path / "o").exists()


def test_a_file_that_is_no_keras_archive_says_so(tiny_files, tmp_path, capsys):
    """Keras answers "File not found" for a .keras file that is there but no zip."""
    root, _ = tiny_files
    garbage = tmp_path / "garbage.keras"
    garbage.write_text("not a model")
    err = _error(capsys, garbage, "--data", root / "data.npz", "--out", tmp_path / "o")
    assert "MODEL: '" in err and "is not a .keras archive" in err and "11 bytes" in err
    assert not (tmp_path / "o").exists()
