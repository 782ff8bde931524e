import keras
import numpy as np

from tests.pruning.conftest import small_cnn
from tfopt import pruning
from tfopt.pruning import PolynomialDecay, UpdatePruningStep
from tfopt.pruning.pruning_callbacks import collect_pruning_layers

SCHEDULE = {"initial_sparsity": 0.1, "final_sparsity": 0.8, "begin_step": 2, "end_step": 15,
            "frequency": 3}  # fmt: skip


def _new_pruned(seed=7):
    model = pruning.prune_low_magnitude(small_cnn(seed=seed), PolynomialDecay(**SCHEDULE))
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _fit(model, digits, epochs, callbacks=(), initial_epoch=0):
    model.fit(digits.x_train[:192], digits.y_train[:192], batch_size=32, epochs=epochs,
              shuffle=False, verbose=0, initial_epoch=initial_epoch,
              callbacks=[UpdatePruningStep(), *callbacks])  # fmt: skip


def _state(model):
    layers = collect_pruning_layers(model)
    return (
        [int(layer.pruning_step.numpy()) for layer in layers],
        [m.numpy() for layer in layers for m in layer.masks],
        [w.numpy() for layer in layers for w in layer.pruned_weights],
    )


def _assert_same(a, b, atol=0.0):
    assert a[0] == b[0]
    for x, y in zip(a[1], b[1]):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a[2], b[2]):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


def test_keras_file_loads_without_custom_objects_and_resumes(digits, tmp_path):
    model = _new_pruned()
    _fit(model, digits, 1)
    path = str(tmp_path / "pruned.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects
    _assert_same(_state(loaded), _state(model))
    assert _state(model)[0] == [6] * 4
    for a, b in zip(collect_pruning_layers(model), collect_pruning_layers(loaded)):
        assert b.pruning_schedule == a.pruning_schedule == PolynomialDecay(**SCHEDULE)
    # One more epoch on both: same step, masks and weights (optimizer state came along).
    _fit(model, digits, 1)
    _fit(loaded, digits, 1)
    _assert_same(_state(loaded), _state(model), atol=1e-6)
    assert _state(model)[0] == [12] * 4


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise RuntimeError("interrupted on purpose")


def test_backup_and_restore_resume_matches_uninterrupted_run(digits, tmp_path):
    straight = _new_pruned()
    _fit(straight, digits, 3)  # 18 steps

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    first = _new_pruned()
    try:
        _fit(first, digits, 3, callbacks=[backup, _Interrupt()])
    except RuntimeError as error:
        assert "interrupted on purpose" in str(error)
    resumed = _new_pruned()  # a fresh process would rebuild the model the same way
    _fit(
        resumed, digits, 3, callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))]
    )
    state = _state(resumed)
    assert state[0] == [18] * 4
    _assert_same(state, _state(straight), atol=1e-6)
    # Last pruning step is 14 (2 + 3 * 4; 17 > end_step): sparsity there is
    # 0.8 - 0.7 * (1 / 13) ** 3 = 0.7997, so about 20% of each kernel is kept.
    assert all(0.19 < m.mean() < 0.22 for m in state[1])
