"""Bad input to tfopt.optimize: a clear error, raised before any training, nothing written."""

import keras
import numpy as np
import pytest

import tfopt
from tests.optimize.conftest import cnn
from tfopt.pipeline import DistillStage, ExportStage, PruneStage, QATStage, Recipe

PRUNE = Recipe([PruneStage(sparsity=0.5, epochs=1), ExportStage()])


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return cnn()


def _refused(fits, tmp_path, error, match, model, train, val, recipe=PRUNE, **kwargs):
    out = tmp_path / "out"
    with pytest.raises(error, match=match):
        tfopt.optimize(
            model, train, val, recipe, out_dir=out, verbose=0, log=lambda _: None, **kwargs
        )
    assert fits == []  # no training started
    assert not out.exists()  # nothing written


def test_data_whose_samples_do_not_fit_the_input(fits, tmp_path, model, small):
    (x, y), val = small
    flat = x.reshape(len(x), 64)
    _refused(
        fits,
        tmp_path,
        ValueError,
        r"Argument `train_data`: x_train samples have shape \(64,\), the model 'cnn' takes "
        r"\(8, 8, 1\)",
        model,
        (flat, y),
        val,
    )


def test_x_and_y_of_different_lengths(fits, tmp_path, model, small):
    train, (x, y) = small
    _refused(
        fits,
        tmp_path,
        ValueError,
        r"`val_data`: x_val and y_val must hold the same number",
        model,
        train,
        (x, y[:-1]),
    )


def test_class_ids_beyond_the_output_units(fits, tmp_path, model, small):
    (x, y), val = small
    bad = y.copy()
    bad[3] = 12
    _refused(
        fits,
        tmp_path,
        ValueError,
        r"`train_data`: y_train holds class ids in \[0, 12\], but the model has 10 output "
        r"units \(class ids 0..9",
        model,
        (x, bad),
        val,
    )


def test_one_hot_labels_of_another_width(fits, tmp_path, model, small):
    train, (x, y) = small
    one_hot = np.eye(12, dtype="float32")[y]
    _refused(
        fits,
        tmp_path,
        ValueError,
        r"`val_data`: y_val rows have 12 columns, but the model has 10 output units",
        model,
        train,
        (x, one_hot),
    )


def test_labels_of_two_kinds(fits, tmp_path, model, small):
    train, (x, y) = small
    _refused(
        fits,
        tmp_path,
        ValueError,
        r"y_train holds class ids, y_val one-hot rows",
        model,
        train,
        (x, np.eye(10, dtype="float32")[y]),
    )


def test_a_teacher_with_another_output_shape(fits, tmp_path, model, small):
    keras.utils.set_random_seed(0)
    teacher = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(12)]
    )
    recipe = Recipe([DistillStage(epochs=1), ExportStage()])
    _refused(
        fits,
        tmp_path,
        ValueError,
        r"Stage 'distill': the teacher's output shape \(None, 12\) differs from the "
        r"model's \(None, 10\)",
        model,
        *small,
        recipe,
        teacher=teacher,
    )


def test_distill_without_a_teacher_and_a_teacher_without_distill(fits, tmp_path, model, small):
    recipe = Recipe([DistillStage(epochs=1), ExportStage()])
    _refused(fits, tmp_path, ValueError, r"Stage 'distill' needs a teacher", model, *small, recipe)
    _refused(
        fits,
        tmp_path,
        ValueError,
        r"`teacher` is given but the recipe has no 'distill'",
        model,
        *small,
        PRUNE,
        teacher=model,
    )
    twice = Recipe([DistillStage(teacher="t.keras"), ExportStage()])
    _refused(fits, tmp_path, ValueError,
             r"teacher is given twice: model 'cnn' as the call's teacher argument and 't.keras'",
             model, *small, twice, teacher=model)  # fmt: skip
    missing = Recipe([DistillStage(teacher=str(tmp_path / "t.keras")), ExportStage()])
    _refused(
        fits, tmp_path, FileNotFoundError, r"Stage 'distill'.*no such file", model, *small, missing
    )


def test_an_optimizer_keras_does_not_know(fits, tmp_path, model, small):
    recipe = Recipe([PruneStage(sparsity=0.5, optimizer="adamm"), ExportStage()])
    _refused(
        fits,
        tmp_path,
        ValueError,
        r"Stage 'prune': Argument `optimizer` must be a Keras optimizer name.*"
        r"Received: optimizer='adamm'",
        model,
        *small,
        recipe,
    )


def test_an_m_by_n_pattern_a_layer_cannot_take(fits, tmp_path, model, small):
    recipe = Recipe([PruneStage(sparsity_m_by_n=(2, 4)), ExportStage()])
    _refused(
        fits,
        tmp_path,
        ValueError,
        r"Stage 'prune':.*layer 'conv1'.*PruneStage\(leave_dense=\['conv1'\]\).*"
        r"--leave-dense conv1",
        model,
        *small,
        recipe,
    )


def test_a_schedule_that_ends_after_the_stage(fits, tmp_path, model, small):
    # 256 samples in batches of 32: 8 steps, the last one step 7.
    recipe = Recipe([PruneStage(sparsity=0.5, epochs=1, end_step=8), ExportStage()])
    _refused(
        fits,
        tmp_path,
        ValueError,
        r"`end_step` must be at most 7.*never reached. Received: end_step=8",
        model,
        *small,
        recipe,
    )


def test_a_model_pruning_and_qat_cannot_take(fits, tmp_path, small):
    class Custom(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], 10))

        def call(self, x):
            return x @ self.w

    inp = keras.Input((8, 8, 1))
    model = keras.Model(inp, Custom()(keras.layers.Flatten()(inp)), name="custom")
    recipe = Recipe([QATStage(epochs=1), ExportStage()])
    _refused(fits, tmp_path, ValueError, r"Stage 'qat':.*Custom", model, *small, recipe)


def test_models_optimize_does_not_take(fits, tmp_path, small):
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(10)

        def call(self, x):
            return self.d(keras.ops.reshape(x, (-1, 64)))

    _refused(
        fits, tmp_path, TypeError, r"`model` must be a Sequential or functional", Sub(), *small
    )
    inp = keras.Input((8, 8, 1))
    regression = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(inp)))
    _refused(
        fits,
        tmp_path,
        ValueError,
        r"trains classifiers.*output shape \(None, 1\)",
        regression,
        *small,
    )


def test_a_lambda_model_needs_safe_mode_off(fits, tmp_path, small):
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inp)
    model = keras.Model(inp, keras.layers.Dense(10)(keras.layers.Flatten()(x)), name="lam")
    _refused(
        fits,
        tmp_path,
        ValueError,
        r"`model` 'lam' cannot be copied.*safe_mode=False",
        model,
        *small,
    )


def test_other_arguments(fits, tmp_path, model, small):
    _refused(
        fits,
        tmp_path,
        TypeError,
        r"`recipe` must be a tfopt.pipeline.Recipe",
        model,
        *small,
        recipe=["prune"],
    )
    _refused(
        fits,
        tmp_path,
        TypeError,
        r"`train_data` must be a pair \(x_train, y_train\)",
        model,
        small[0][0],
        small[1],
    )
    _refused(
        fits, tmp_path, TypeError, r"`safe_mode` must be a bool", model, *small, safe_mode="no"
    )
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"`out_dir` names a file"):
        tfopt.optimize(model, *small, PRUNE, out_dir=tmp_path / "file", verbose=0)
    assert fits == []


def test_a_sigmoid_output_is_not_read_as_logits(fits, tmp_path, small):
    """A multi-label (sigmoid) output would be trained as logits by the classification
    loss: refused, naming the layer; a softmax or logits model is taken."""
    inp = keras.Input((8, 8, 1))
    flat = keras.layers.Flatten()(inp)
    sigmoid = keras.Model(inp, keras.layers.Dense(10, activation="sigmoid", name="tags")(flat))
    _refused(fits, tmp_path, ValueError, r"`model`: its output layer 'tags' ends in sigmoid",
             sigmoid, *small)  # fmt: skip
    relu6 = keras.Model(inp, keras.layers.Dense(10, activation="relu6", name="clip")(flat))
    relu6.layers[-1].bias.assign(np.full(10, 0.5, "float32"))  # outputs in [0, 1]
    relu6.layers[-1].kernel.assign(np.zeros((64, 10), "float32"))
    _refused(fits, tmp_path, ValueError, r"outputs are all in \[0, 1\] without summing to 1",
             relu6, *small)  # fmt: skip


def test_an_out_dir_that_holds_files(fits, tmp_path, model, small):
    """A non-empty out_dir is refused before training, its files untouched; with
    overwrite=True only the files a run writes there (by name) are replaced."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "optimized.onnx").write_text("stale, from an earlier run")
    with pytest.raises(FileExistsError, match=r"`out_dir`: '.*out' already holds 2 file"):
        tfopt.optimize(model, *small, PRUNE, out_dir=out, verbose=0, log=lambda _: None)
    assert fits == []
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "optimized.onnx"]
    with pytest.raises(TypeError, match=r"`overwrite` must be a bool"):
        tfopt.optimize(model, *small, PRUNE, out_dir=out, overwrite="yes", verbose=0)
    recipe = Recipe([PruneStage(sparsity=0.5, epochs=1), ExportStage(formats=["tflite"])])
    tfopt.optimize(
        model, *small, recipe, out_dir=out, overwrite=True, verbose=0, log=lambda _: None
    )
    names = {p.name for p in out.iterdir()}
    assert (out / "notes.txt").read_text() == "mine"
    assert "optimized.onnx" not in names  # the stale file is gone, not left beside the new
    assert {"optimized.tflite", "report.json", "prune.keras"} <= names
