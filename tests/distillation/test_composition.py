"""Distilling into compressed students: pruned (tfopt.pruning) and QAT (tfopt.quantization)."""

import keras
import numpy as np
import pytest

from tests.distillation.helpers import CE, make_mlp, tflite_weight_arrays
from tfopt.distillation import Distiller, FeatureDistillation

pruning = pytest.importorskip("tfopt.pruning")
quantization = pytest.importorskip("tfopt.quantization")


def _kernel_sparsity(model) -> float:
    kernels = [np.asarray(w).ravel() for w in model.weights if w.path.endswith("kernel")]
    return float(np.mean(np.concatenate(kernels) == 0))


@pytest.fixture(scope="module")
def pruned_distilled(digits, teacher):
    x, y, _, _ = digits
    keras.utils.set_random_seed(5)
    # 8 steps per epoch: 2 dense epochs, then 80% sparsity, masks updated every 4 steps.
    schedule = pruning.ConstantSparsity(0.8, begin_step=16, frequency=4)
    student = pruning.prune_low_magnitude(make_mlp(32, "student"), pruning_schedule=schedule)
    hint = FeatureDistillation(
        teacher_layer_name="teacher_hidden",
        student_layer_name=student.layers[1].name,  # the wrapped hidden Dense
        projection=True,
    )
    distiller = Distiller(teacher, student, ["soft", hint], distillation_loss_weights=[1.0, 0.1])
    distiller.compile(keras.optimizers.Adam(0.01), CE, metrics=["accuracy"])
    distiller.fit(
        x, y, epochs=6, batch_size=64, verbose=0, callbacks=[pruning.UpdatePruningStep()]
    )
    return distiller


def test_pruned_student_is_pruned_inside_distiller_fit(pruned_distilled, digits):
    _, _, x_test, y_test = digits
    wrappers = pruning.pruning_callbacks.collect_pruning_layers(pruned_distilled)
    assert wrappers, "UpdatePruningStep must find the student's wrappers through the Distiller"
    assert all(int(layer.pruning_step.numpy()) > 0 for layer in wrappers)
    stripped = pruning.strip_pruning(pruned_distilled.student)
    # ConstantSparsity(0.8) on both Dense kernels (64x32 and 32x10): 80% of them are zero.
    assert _kernel_sparsity(stripped) == pytest.approx(0.8, abs=0.01)
    accuracy = np.mean(stripped.predict(x_test, verbose=0).argmax(-1) == y_test)
    # Chance is 0.1; 4 sparse epochs on 512 samples is a tiny budget (measured ~0.55).
    assert accuracy > 0.35
    np.testing.assert_allclose(
        stripped.predict(x_test[:32], verbose=0),
        pruned_distilled.predict(x_test[:32], verbose=0),
        atol=1e-5,
    )


def test_qat_student_keeps_pruned_zeros_through_distillation_and_int8_export(
    pruned_distilled, teacher, digits, tmp_path
):
    from tfopt.export import to_tflite

    x, y, x_test, y_test = digits
    stripped = pruning.strip_pruning(pruned_distilled.student)
    zeros = {
        layer.name: np.asarray(layer.kernel) == 0
        for layer in stripped.layers
        if isinstance(layer, keras.layers.Dense)
    }
    qat = quantization.quantize_model(stripped, preserve_sparsity=True)
    distiller = Distiller(teacher, qat, "soft", alpha=0.9)
    distiller.compile(keras.optimizers.Adam(1e-3), CE, metrics=["accuracy"])
    # One step first: a QAT model's ranges are observed in training (before that its
    # predict refuses to run); the loss then drops over an epoch.
    distiller.fit(x[:64], y[:64], epochs=1, batch_size=64, verbose=0)
    before = distiller.evaluate(x_test, y_test, verbose=0, return_dict=True)
    distiller.fit(x, y, epochs=1, batch_size=64, verbose=0)
    after = distiller.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert after["distillation_loss"] < before["distillation_loss"]

    path = tmp_path / "student_int8.tflite"
    result = to_tflite(
        distiller.student,
        path,
        quantization="int8",
        representative_data=x[:100],
        verify_data=x_test,
    )
    assert result.parity.top1_agreement >= 0.95  # int8 file vs the fake-quant Keras model
    (file_logits,) = result.parity.outputs
    int8_accuracy = np.mean(file_logits.argmax(-1) == y_test)
    assert int8_accuracy > 0.35  # chance is 0.1; same budget note as above

    # The int8 file's FULLY_CONNECTED weights are the Keras kernels transposed (out, in):
    # every weight pruned before QAT is still exactly 0 after distilling as QAT and export.
    file_weights = tflite_weight_arrays(path)
    assert len(file_weights) == len(zeros) == 2
    for name, mask in zeros.items():
        (weights,) = [w for key, w in file_weights.items() if f"/{name}" in key]
        assert weights.dtype == np.int8
        assert np.all(weights.T[mask] == 0), name
        # ConstantSparsity(0.8) per kernel; int8 rounding may only add zeros.
        assert np.mean(weights == 0) >= 0.79, name


def test_distiller_with_pruned_student_saves_and_loads(pruned_distilled, digits, tmp_path):
    _, _, x_test, _ = digits
    path = tmp_path / "pruned_distiller.keras"
    pruned_distilled.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(x_test[:32], verbose=0),
        pruned_distilled.predict(x_test[:32], verbose=0),
        atol=1e-6,
    )
    steps = [
        int(w.pruning_step.numpy())
        for w in pruning.pruning_callbacks.collect_pruning_layers(loaded)
    ]
    expected = [
        int(w.pruning_step.numpy())
        for w in pruning.pruning_callbacks.collect_pruning_layers(pruned_distilled)
    ]
    assert steps == expected
