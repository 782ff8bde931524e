"""The command line, run as a user runs it (a subprocess)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfopt.cli import main


def _tfopt(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "tfopt", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    # Two epochs instead of the default 30: the test checks the pipeline, not the accuracy.
    run = _tfopt("demo", "--epochs", "2", "--out", str(out))
    assert run.returncode == 0, run.stderr
    return out, run


def test_demo_writes_a_report_for_five_verified_exports(demo):
    out, run = demo
    report = json.loads((out / "report.json").read_text())
    assert [(e["format"], e["quantization"]) for e in report["exports"]] == [
        ("tflite", "float32"),
        ("tflite", "float16"),
        ("tflite", "dynamic"),
        ("tflite", "int8"),
        ("onnx", "float32"),
    ]
    for entry in report["exports"]:
        assert (out / entry["file"]).stat().st_size == entry["bytes"]
        assert entry["gzip_bytes"] > 0 and entry["latency_median_ms"] > 0
        assert 0.0 <= entry["test_accuracy"] <= 1.0
    by_quant = {(e["format"], e["quantization"]): e for e in report["exports"]}
    assert by_quant[("tflite", "float32")]["max_abs_error"] <= 1e-5
    assert by_quant[("onnx", "float32")]["max_abs_error"] <= 1e-5
    assert by_quant[("tflite", "int8")]["bytes"] < by_quant[("tflite", "float32")]["bytes"] / 2
    assert (out / "digits_cnn.keras").exists()
    markdown = (out / "report.md").read_text()
    assert markdown.count("| tflite") == 4 and markdown.count("| onnx") == 1
    # The table is printed too, with its header.
    assert "gzip bytes" in run.stdout and "max abs error vs Keras" in run.stdout
    assert run.stderr.strip() == ""  # TensorFlow's start-up notices are kept off the terminal


def test_inspect_prints_census_and_sizes(demo, capsys):
    out, _ = demo
    assert main(["inspect", str(out / "digits_cnn_int8.tflite")]) == 0
    printed = capsys.readouterr().out
    assert "CONV_2D" in printed and "int8,int8,int32 -> int8" in printed
    assert "every compute op" in printed
    assert main(["inspect", str(out / "digits_cnn_float32.onnx")]) == 0
    printed = capsys.readouterr().out
    assert "Conv" in printed and "take float inputs" in printed


def test_export_a_saved_model(demo, tmp_path, capsys):
    out, _ = demo
    data = tmp_path / "calibration.npy"
    rng = np.random.default_rng(0)
    np.save(data, rng.uniform(0, 1, (50, 8, 8, 1)).astype("float32"))
    target = tmp_path / "cli_int8.tflite"
    argv = ["export", str(out / "digits_cnn.keras"), str(target), "--quantization", "int8"]
    assert main([*argv, "--data", str(data)]) == 0
    printed = capsys.readouterr().out
    assert target.exists() and "int8" in printed and "max abs error" in printed


def test_export_flags_that_do_not_fit_the_format(demo, tmp_path, capsys):
    out, _ = demo
    model = str(out / "digits_cnn.keras")
    assert main(["export", model, str(tmp_path / "m.onnx"), "--quantization", "int8"]) == 2
    err = capsys.readouterr().err
    assert "--quantization does not apply to onnx files (.onnx)" in err
    assert main(["export", model, str(tmp_path / "m.pb")]) == 2
    assert "Argument `output` has no known file ending" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).uniform(0, 1, (8, 8, 8, 1)).astype("float32"))
    assert main(["export", model, str(tmp_path / "m.onnx"), "--data", str(data)]) == 0
    assert "8 data samples" in capsys.readouterr().out  # --data verifies the ONNX file


def test_export_a_saved_qat_model_in_a_fresh_process(tmp_path):
    """A QAT .keras file loads in a new process: the CLI registers tfopt's layers."""
    import keras

    import tfopt
    from tfopt import quantization as tq

    data = tfopt.datasets.load_digits(flatten=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    qat = tq.quantize_model(model)
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(data.x_train, data.y_train, epochs=1, verbose=0)
    qat.save(tmp_path / "qat.keras")
    target = tmp_path / "qat.tflite"
    run = _tfopt("export", str(tmp_path / "qat.keras"), str(target))
    assert run.returncode == 0, run.stderr
    assert target.exists() and "int8-qat" in run.stdout, run.stdout


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.tflite")]) == 2
    assert "no such file" in capsys.readouterr().err.lower()
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "--epochs must be >= 1" in capsys.readouterr().err


def test_bare_tfopt_prints_help(capsys):
    assert main([]) == 0
    assert "usage: tfopt" in capsys.readouterr().out


def test_export_of_a_file_that_is_no_model(tmp_path, capsys):
    (tmp_path / "notes.keras").write_text("not a model")
    assert main(["export", str(tmp_path / "notes.keras"), str(tmp_path / "m.tflite")]) == 2
    err = capsys.readouterr().err
    assert "MODEL: '" in err and "is not a Keras model file" in err
    assert main(["export", str(tmp_path / "none.keras"), str(tmp_path / "m.tflite")]) == 2
    assert "MODEL: no such file" in capsys.readouterr().err
    assert not (tmp_path / "m.tflite").exists()


def test_export_of_a_saved_distiller_exports_its_student(tmp_path, capsys):
    import keras

    import tfopt

    def cnn(name, filters):
        inp = keras.Input((8, 8, 1))
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(filters, 3)(inp))
        return keras.Model(inp, keras.layers.Dense(10)(x), name=name)

    distiller = tfopt.distillation.Distiller(cnn("teacher", 8), cnn("student", 2))
    distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    distiller.fit(x, np.zeros(16, "int32"), epochs=1, verbose=0)
    distiller.save(tmp_path / "d.keras")
    with pytest.raises(TypeError, match=r"export its student: model.student"):
        tfopt.export.to_tflite(distiller, tmp_path / "x.tflite")
    assert main(["export", str(tmp_path / "d.keras"), str(tmp_path / "s.tflite")]) == 0
    assert "exporting its student, 'student'" in capsys.readouterr().out
    parity = tfopt.export.verify(tmp_path / "s.tflite", distiller.student, x)
    assert parity.max_abs_error < 1e-5


@pytest.fixture(scope="module")
def flatten_keras(tmp_path_factory):
    """A saved float model whose Flatten leaves shape ops in a file with a free batch."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    path = tmp_path_factory.mktemp("flatten") / "flatten.keras"
    model.save(path)
    return path


def test_export_batch_size_gives_static_shapes(flatten_keras, tmp_path, capsys):
    from tfopt.export import op_census

    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).uniform(0, 1, (40, 8, 8, 1)).astype("float32"))
    target = tmp_path / "static.tflite"
    argv = ["export", str(flatten_keras), str(target), "--quantization", "int8"]
    assert main([*argv, "--data", str(data), "--batch-size", "1"]) == 0
    assert "40 data samples" in capsys.readouterr().out
    counts = op_census(target).counts()
    assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & set(counts), counts
    assert main(["inspect", str(target)]) == 0
    assert "float32 [1, 8, 8, 1]" in capsys.readouterr().out  # the input line
    onnx_target = tmp_path / "static.onnx"
    assert main(["export", str(flatten_keras), str(onnx_target), "--batch-size", "1"]) == 0
    capsys.readouterr()
    assert main(["export", str(flatten_keras), str(tmp_path / "m.onnx"), "--batch-size", "0"]) == 2
    err = capsys.readouterr().err
    assert "--batch-size must be" in err and "Received: --batch-size 0" in err, err


def test_inspect_says_whether_a_file_is_fully_integer(flatten_keras, tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).uniform(0, 1, (40, 8, 8, 1)).astype("float32"))
    model = str(flatten_keras)
    int8 = ["--quantization", "int8", "--data", str(data)]
    runs = {
        "float.tflite": [],
        "int8.tflite": int8,
        "int8_io.tflite": [*int8, "--int8-io"],
        "float.onnx": [],
    }
    for name, flags in runs.items():
        assert main(["export", model, str(tmp_path / name), *flags]) == 0
    capsys.readouterr()
    said = {}
    for name in runs:
        assert main(["inspect", str(tmp_path / name)]) == 0
        lines = capsys.readouterr().out.splitlines()
        said[name] = [line for line in lines if line.startswith("fully integer: ")]
    assert said["float.tflite"] == [
        "fully integer: no — ops left in float: CONV_2D, SHAPE, RESHAPE, FULLY_CONNECTED; "
        "float input/output (float32)"
    ]
    assert said["int8.tflite"] == [
        "fully integer: no — float input/output (float32); compute ops all integer"
    ]
    assert said["int8_io.tflite"] == ["fully integer: yes (int8 input, int8 output)"]
    assert said["float.onnx"][0].startswith("fully integer: no — ops left in float: ")
