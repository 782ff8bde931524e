import numpy as np
import pytest

from tests.pruning._pruning_reference import GRID, STEPS
from tfopt.pruning import ConstantSparsity, PolynomialDecay, PruningSchedule
from tfopt.pruning.pruning_schedule import as_schedule


def _ours(name, kwargs):
    cls = {"ConstantSparsity": ConstantSparsity, "PolynomialDecay": PolynomialDecay}[name]
    schedule = cls(**kwargs)
    # Schedules are elementwise, so one call with every step at once.
    should, sparsity = schedule(np.asarray(STEPS, dtype=np.int64))
    should = np.broadcast_to(np.asarray(should), (len(STEPS),))
    sparsity = np.broadcast_to(np.asarray(sparsity, dtype=np.float32), (len(STEPS),))
    return [bool(v) for v in should], [v.item() for v in sparsity]


@pytest.mark.tfmot
def test_schedules_equal_tfmot_at_every_step(tfmot_reference):
    for (name, kwargs), (t_should, t_sparsity) in zip(GRID, tfmot_reference["schedules"]):
        should, sparsity = _ours(name, kwargs)
        assert should == t_should, (name, kwargs)
        # Bit-for-bit: both sides are float32 results of the same operations.
        assert sparsity == t_sparsity, (name, kwargs)


@pytest.mark.parametrize(("name", "kwargs"), GRID)
def test_get_config_is_flat_and_round_trips(name, kwargs):
    cls = {"ConstantSparsity": ConstantSparsity, "PolynomialDecay": PolynomialDecay}[name]
    schedule = cls(**kwargs)
    config = schedule.get_config()
    assert all(not isinstance(v, dict) for v in config.values())
    again = cls.from_config(config)
    assert again == schedule and again.get_config() == config
    import keras

    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored == schedule


def test_polynomial_values():
    # Hand-computed: at the midpoint p=0.5, 0.8 + (0 - 0.8) * 0.5**3 = 0.7.
    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=100, frequency=50)
    should, sparsity = schedule(50)
    assert bool(should) and float(sparsity) == pytest.approx(0.7, abs=1e-6)
    assert not bool(schedule(25)[0])
    assert float(schedule(1000)[1]) == pytest.approx(0.8, abs=1e-6)
    assert not bool(schedule(150)[0])  # after end_step: no more pruning


def test_tfmot_like_object_is_converted():
    class ConstantSparsity:  # duck-typed stand-in with tfmot's nested get_config
        def __call__(self, step):
            raise AssertionError("not called")

        def get_config(self):
            return {
                "class_name": "ConstantSparsity",
                "config": {
                    "target_sparsity": 0.7,
                    "begin_step": 2,
                    "end_step": -1,
                    "frequency": 10,
                },
            }

    converted = as_schedule(ConstantSparsity())
    assert isinstance(converted, PruningSchedule)
    assert converted.get_config() == {
        "target_sparsity": 0.7,
        "begin_step": 2,
        "end_step": -1,
        "frequency": 10,
    }
    with pytest.raises(TypeError, match="pruning_schedule"):
        as_schedule(lambda step: (True, 0.5))


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: ConstantSparsity(1.0, 0), "target_sparsity.*Received: target_sparsity=1.0"),
        (lambda: ConstantSparsity(-0.1, 0), "target_sparsity"),
        (lambda: PolynomialDecay(0.0, 1.5, 0, 10), "final_sparsity"),
        (lambda: PolynomialDecay(0.0, 0.5, 10, 10), "end_step.*Received: end_step=10"),
        (lambda: PolynomialDecay(0.0, 0.5, 10, 5), "end_step"),
        (lambda: ConstantSparsity(0.5, 5, end_step=5), "end_step"),
        (
            lambda: ConstantSparsity(0.5, 0, frequency=0),
            "frequency` must be > 0. Received: frequency=0",
        ),
        (lambda: ConstantSparsity(0.5, -1), "begin_step"),
    ],
)
def test_bad_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_bad_types():
    with pytest.raises(TypeError, match="begin_step"):
        ConstantSparsity(0.5, 1.5)
    with pytest.raises(TypeError, match="target_sparsity"):
        ConstantSparsity("0.5", 0)
