"""`tfopt inspect MODEL.keras --sensitivity --data DATA.npz`: the ranking, and usage errors."""

import numpy as np
import pytest

from tfopt.cli import main


@pytest.fixture(scope="module")
def files(trained_bn_cnn, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect")
    trained_bn_cnn.save(out / "model.keras")
    np.savez(out / "data.npz", x_train=digits.x_train[:64], y_train=digits.y_train[:64],
             x_val=digits.x_test, y_val=digits.y_test)  # fmt: skip
    return out


def test_prints_the_ranking_and_a_suggestion(files, capsys):
    model, data = str(files / "model.keras"), str(files / "data.npz")
    assert main(["inspect", model, "--sensitivity", "--data", data, "--max-drop", "0.005"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{model}: bn_cnn, each layer alone quantized")
    assert "359 samples" in lines[0]
    table = lines[lines.index("") + 1 :]
    assert table[0].startswith("quantization sensitivity: baseline accuracy 0.9694")
    header = table[1].split()
    assert header[:3] == ["rank", "layer", "class"]
    ranked = [line.split()[1] for line in table[3:7]]
    assert sorted(ranked) == ["conv", "conv2", "fc", "logits"]
    assert lines[-1].startswith("to stay within 0.005 of the baseline, leave in float: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sensitivity"], "pass --data DATA.npz"),
        (["--data", "{data}"], "--data is read by --sensitivity only"),
        (["--sensitivity", "--data", "{model}"], "has no arrays x_train, y_train"),
        (["--sensitivity", "--data", "{short}"], "has no arrays x_val, y_val"),
        (["--sensitivity", "--data", "{wide}"], "x_val samples have shape (9, 9, 1)"),
        (["--sensitivity", "--data", "{labels}"], "y_val holds class ids in [0, 11]"),
        (["--sensitivity", "--data", "{data}", "--max-drop", "1.5"], "--max-drop must be"),
    ],
)
def test_usage_errors(files, tmp_path, capsys, args, message):
    np.savez(tmp_path / "short.npz", x_train=np.zeros((2, 8, 8, 1)), y_train=np.zeros(2))
    np.savez(tmp_path / "wide.npz", x_train=np.zeros((2, 9, 9, 1)), y_train=np.zeros(2),
             x_val=np.zeros((2, 9, 9, 1)), y_val=np.zeros(2))  # fmt: skip
    np.savez(tmp_path / "labels.npz", x_train=np.zeros((2, 8, 8, 1)), y_train=np.zeros(2),
             x_val=np.zeros((2, 8, 8, 1)), y_val=np.array([0, 11]))  # fmt: skip
    paths = {"data": files / "data.npz", "model": files / "model.keras",
             "short": tmp_path / "short.npz", "wide": tmp_path / "wide.npz",
             "labels": tmp_path / "labels.npz"}  # fmt: skip
    argv = ["inspect", str(files / "model.keras")] + [a.format(**paths) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfopt inspect: error: ") and message in err


def test_a_model_that_is_no_classifier_is_refused(files, tmp_path, capsys):
    """The same checks as tfopt optimize: a 1-unit regression model has no accuracy."""
    import keras

    inp = keras.Input((8, 8, 1))
    keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(inp))).save(
        tmp_path / "regression.keras"
    )
    argv = ["inspect", str(tmp_path / "regression.keras"), "--sensitivity", "--data",
            str(files / "data.npz")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfopt inspect: error: ") and "trains classifiers" in err, err
