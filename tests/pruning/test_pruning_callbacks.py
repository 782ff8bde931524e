import glob
import os

import keras
import numpy as np
import pytest

from tests.pruning.conftest import compile_for_digits, small_cnn
from tfopt import pruning
from tfopt.pruning import ConstantSparsity, PruningSummaries, UpdatePruningStep
from tfopt.pruning.pruning_callbacks import collect_pruning_layers


def _fit_cnn(digits, steps_per_execution, callbacks=()):
    model = pruning.prune_low_magnitude(small_cnn(seed=5), ConstantSparsity(0.6, 3, frequency=4))
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=steps_per_execution,
    )
    x, y = digits.x_train[:320], digits.y_train[:320]
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0,
              callbacks=[UpdatePruningStep(), *callbacks])  # fmt: skip
    return model


def test_steps_per_execution_keeps_step_and_masks(digits):
    one = _fit_cnn(digits, 1)
    five = _fit_cnn(digits, 5)
    for a, b in zip(collect_pruning_layers(one), collect_pruning_layers(five)):
        assert int(a.pruning_step.numpy()) == int(b.pruning_step.numpy()) == 10  # 10 batches
        for (wa, ma), (wb, mb) in zip(a.pruning_vars(), b.pruning_vars()):
            np.testing.assert_array_equal(ma.numpy(), mb.numpy())
            np.testing.assert_allclose(wa.numpy(), wb.numpy(), rtol=1e-5, atol=1e-6)
        assert a.masks[0].numpy().mean() < 0.45  # pruned at steps 3 and 7


def test_pruning_summaries_write_sparsity(digits, tmp_path):
    import tensorflow as tf

    _fit_cnn(digits, 1, callbacks=[PruningSummaries(log_dir=str(tmp_path))])
    files = glob.glob(os.path.join(str(tmp_path), "metrics", "events.out.tfevents.*"))
    assert files
    values = {}
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                values.setdefault(v.tag, []).append(float(tf.make_ndarray(v.tensor)))
    tag = "prune_low_magnitude_fc/kernel/sparsity"
    assert values[tag][0] == 0.0  # epoch begin: nothing pruned yet
    assert values[tag][-1] == pytest.approx(0.6, abs=0.01)  # train end
    assert values["prune_low_magnitude_fc/target_sparsity"][-1] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="log_dir"):
        PruningSummaries(log_dir="")


def test_callbacks_work_inside_a_distiller(digits, tmp_path):
    teacher = compile_for_digits(small_cnn(seed=1))
    student = pruning.prune_low_magnitude(small_cnn(seed=2), ConstantSparsity(0.5, 2))
    distiller = keras.distillation.Distiller(
        teacher=teacher,
        student=student,
        distillation_losses=keras.distillation.LogitsDistillation(temperature=2.0),
        student_loss_weight=0.5,
    )
    distiller.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    distiller.fit(digits.x_train[:128], digits.y_train[:128], batch_size=32, epochs=1,
                  verbose=0, callbacks=[UpdatePruningStep(),
                                        PruningSummaries(log_dir=str(tmp_path))])  # fmt: skip
    assert glob.glob(os.path.join(str(tmp_path), "metrics", "events.out.tfevents.*"))
    layers = collect_pruning_layers(distiller)
    assert len(layers) == 4
    for layer in layers:
        assert int(layer.pruning_step.numpy()) == 4
        # 0.5 of each kernel (conv_a: 72 weights -> 36 kept).
        assert layer.masks[0].numpy().mean() == pytest.approx(0.5, abs=0.01)
        assert np.all(layer.pruned_weights[0].numpy()[layer.masks[0].numpy() == 0] == 0)
