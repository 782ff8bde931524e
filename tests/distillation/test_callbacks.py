"""LinearSchedule values and serialization; the scheduler's per-epoch values in the logs."""

import keras
import pytest

from tests.distillation.helpers import CE
from tfopt.distillation import DistillationScheduler, Distiller, LinearSchedule


def test_linear_schedule_values_and_round_trip():
    schedule = LinearSchedule(8.0, 2.0, transition_epochs=4)
    # 8 -> 2 in 4 equal steps of 1.5, then constant.
    assert [schedule(e) for e in range(6)] == [8.0, 6.5, 5.0, 3.5, 2.0, 2.0]
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored.get_config() == schedule.get_config()
    assert LinearSchedule.from_config(schedule.get_config())(1) == 6.5


def test_linear_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`transition_epochs` must be an integer >= 1"):
        LinearSchedule(1.0, 2.0, transition_epochs=0)
    with pytest.raises(TypeError, match="`final_value` must be a number"):
        LinearSchedule(1.0, "2")


def test_scheduler_sets_values_each_epoch(digits, teacher, student):
    x, y, _, _ = digits
    distiller = Distiller(teacher, student, "soft")
    distiller.compile("adam", CE)
    scheduler = DistillationScheduler(
        temperature=LinearSchedule(6.0, 2.0, transition_epochs=2),
        alpha=LinearSchedule(0.9, 0.5, transition_epochs=2),
    )
    history = distiller.fit(x, y, epochs=3, batch_size=128, verbose=0, callbacks=[scheduler])
    assert history.history["temperature"] == pytest.approx([6.0, 4.0, 2.0])
    assert history.history["alpha"] == pytest.approx([0.9, 0.7, 0.5])
    assert distiller.temperature == pytest.approx(2.0)
