"""Pruning schedules: when to prune and to what sparsity, step by step.

Same names, arguments and numbers as `tfmot.sparsity.keras`: at every step
`schedule(step)` returns the same `(should_prune, sparsity)` as tfmot's schedule
with the same arguments (computed in float32 in the same order of operations).
Unlike tfmot's, `get_config()` is a flat dict that round-trips through
`from_config()`.
"""

from __future__ import annotations

import abc
import numbers

import keras
from keras import ops


def _check_int(name: str, value, minimum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Argument `{name}` must be an int. Received: {name}={value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"Argument `{name}` must be >= {minimum}. Received: {name}={value!r}")


def _check_sparsity(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Argument `{name}` must be a float in [0, 1). Received: {name}={value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"Argument `{name}` must be in [0, 1) (a fraction of weights set to zero, "
            f"e.g. 0.8 for 80%). Received: {name}={value!r}"
        )


# Steps are int64 tensors in the training graph.
_MAX_STEP = 2**62


def _check_steps(begin_step, end_step, frequency, allow_forever: bool) -> None:
    _check_int("begin_step", begin_step, minimum=0)
    _check_int("end_step", end_step)
    _check_int("frequency", frequency)
    for name, value in (
        ("begin_step", begin_step),
        ("end_step", end_step),
        ("frequency", frequency),
    ):
        if value > _MAX_STEP:
            raise ValueError(
                f"Argument `{name}` must be at most 2**62 (steps are int64). Received: {value!r}"
            )
    if frequency <= 0:
        raise ValueError(f"Argument `frequency` must be > 0. Received: frequency={frequency!r}")
    if allow_forever and end_step == -1:
        return
    if end_step <= begin_step:
        hint = " or -1 (prune until training ends)" if allow_forever else ""
        raise ValueError(
            f"Argument `end_step` must be > begin_step={begin_step}{hint}. "
            f"Received: end_step={end_step!r}"
        )


class PruningSchedule(abc.ABC):
    """Base class of pruning schedules: `schedule(step) -> (should_prune, sparsity)`.

    Subclass it for a schedule of your own: implement `__call__` and
    `get_config`, and register the class with
    `keras.saving.register_keras_serializable()` so models that use it load.

    Example:

    ```python
    should_prune, sparsity = tfopt.pruning.ConstantSparsity(0.5, 0)(step=200)
    ```
    """

    @staticmethod
    def _should_prune_in_step(step, begin_step: int, end_step: int, frequency: int):
        """True at `begin_step + k * frequency` inside [begin_step, end_step] (tfmot's rule)."""
        step = ops.convert_to_tensor(step)
        in_range = ops.greater_equal(step, begin_step)
        if end_step >= 0:
            in_range = ops.logical_and(in_range, ops.less_equal(step, end_step))
        turn = ops.equal(ops.mod(ops.subtract(step, begin_step), frequency), 0)
        return ops.logical_and(in_range, turn)

    @abc.abstractmethod
    def __call__(self, step):
        """Returns `(should_prune, sparsity)` as a bool and a float32 scalar tensor.

        Args:
            step: the training step (int or integer tensor).

        Returns:
            A tuple `(should_prune, sparsity)`.
        """

    @abc.abstractmethod
    def get_config(self) -> dict:
        """Returns the flat constructor arguments."""

    @classmethod
    def from_config(cls, config: dict) -> PruningSchedule:
        """Builds a schedule from the output of `get_config()`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))


@keras.saving.register_keras_serializable(package="tfopt")
class ConstantSparsity(PruningSchedule):
    """Prunes to one constant sparsity every `frequency` steps in [begin_step, end_step].

    Example:

    ```python
    schedule = tfopt.pruning.ConstantSparsity(0.8, begin_step=0, frequency=50)
    ```

    Args:
        target_sparsity: fraction of weights set to zero, in [0, 1).
        begin_step: first step at which to prune. Must be >= 0.
        end_step: last step at which to prune; `-1` prunes until training
            ends. Defaults to `-1`.
        frequency: prune every `frequency` steps. Defaults to `100`.

    Raises:
        ValueError: a sparsity outside [0, 1), `end_step <= begin_step`
            (other than -1), `frequency <= 0` or `begin_step < 0`.
        TypeError: an argument of the wrong type.
    """

    def __init__(
        self, target_sparsity: float, begin_step: int, end_step: int = -1, frequency: int = 100
    ):
        _check_sparsity("target_sparsity", target_sparsity)
        _check_steps(begin_step, end_step, frequency, allow_forever=True)
        self.target_sparsity = float(target_sparsity)
        self.begin_step = int(begin_step)
        self.end_step = int(end_step)
        self.frequency = int(frequency)

    def __call__(self, step):
        """Returns whether to prune at `step`, and `target_sparsity` as a float32 tensor."""
        should_prune = self._should_prune_in_step(
            step, self.begin_step, self.end_step, self.frequency
        )
        return should_prune, ops.convert_to_tensor(self.target_sparsity, dtype="float32")

    def get_config(self) -> dict:
        """Returns `target_sparsity`, `begin_step`, `end_step` and `frequency` as a dict."""
        return {
            "target_sparsity": self.target_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "frequency": self.frequency,
        }


@keras.saving.register_keras_serializable(package="tfopt")
class PolynomialDecay(PruningSchedule):
    """Raises sparsity from `initial_sparsity` to `final_sparsity` along a polynomial.

    `sparsity(step) = final + (initial - final) * (1 - p) ** power`, with
    `p = clip((step - begin_step) / (end_step - begin_step), 0, 1)`
    (Zhu & Gupta, https://arxiv.org/abs/1710.01878), applied every `frequency`
    steps in [begin_step, end_step].

    Example:

    ```python
    schedule = tfopt.pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000)
    ```

    Args:
        initial_sparsity: sparsity at `begin_step`, in [0, 1).
        final_sparsity: sparsity at and after `end_step`, in [0, 1).
        begin_step: first step at which to prune. Must be >= 0.
        end_step: step at which `final_sparsity` is reached; > begin_step.
        power: exponent of the decay. Defaults to `3`.
        frequency: prune every `frequency` steps. Defaults to `100`.

    Raises:
        ValueError: a sparsity outside [0, 1), `end_step <= begin_step`,
            `frequency <= 0` or `begin_step < 0`.
        TypeError: an argument of the wrong type.
    """

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        power: float = 3,
        frequency: int = 100,
    ):
        _check_sparsity("initial_sparsity", initial_sparsity)
        _check_sparsity("final_sparsity", final_sparsity)
        _check_steps(begin_step, end_step, frequency, allow_forever=False)
        if isinstance(power, bool) or not isinstance(power, numbers.Real):
            raise TypeError(f"Argument `power` must be a number. Received: power={power!r}")
        if not (0 < power <= 100):
            raise ValueError(
                "Argument `power` must be in (0, 100] (tfmot's default is 3): another value "
                f"makes sparsity leave [0, 1] or overflow. Received: power={power!r}"
            )
        self.initial_sparsity = float(initial_sparsity)
        self.final_sparsity = float(final_sparsity)
        self.begin_step = int(begin_step)
        self.end_step = int(end_step)
        self.power = power
        self.frequency = int(frequency)

    def __call__(self, step):
        """Returns whether to prune at `step`, and the polynomial's sparsity there (float32)."""
        # Same float32 operations, in the same order, as tfmot's PolynomialDecay.
        step = ops.convert_to_tensor(step)
        elapsed = ops.cast(ops.subtract(step, self.begin_step), "float32")
        span = ops.convert_to_tensor(self.end_step - self.begin_step, dtype="float32")
        p = ops.minimum(1.0, ops.maximum(0.0, ops.divide(elapsed, span)))
        decay = ops.power(ops.subtract(1.0, p), ops.cast(self.power, "float32"))
        scale = ops.convert_to_tensor(self.initial_sparsity - self.final_sparsity, "float32")
        sparsity = ops.add(ops.multiply(scale, decay), self.final_sparsity)
        should_prune = self._should_prune_in_step(
            step, self.begin_step, self.end_step, self.frequency
        )
        return should_prune, sparsity

    def get_config(self) -> dict:
        """Returns the six constructor arguments as a flat dict."""
        return {
            "initial_sparsity": self.initial_sparsity,
            "final_sparsity": self.final_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "power": self.power,
            "frequency": self.frequency,
        }


_BY_NAME = {"ConstantSparsity": ConstantSparsity, "PolynomialDecay": PolynomialDecay}


def as_schedule(schedule) -> PruningSchedule:
    """Returns `schedule` as a tfopt `PruningSchedule`.

    Accepts a tfopt schedule, a tfmot `ConstantSparsity`/`PolynomialDecay`
    (recognised by its class name and nested `get_config()`, without importing
    tfmot) or `None` (tfmot's default, `ConstantSparsity(0.5, begin_step=0)`).

    Args:
        schedule: the schedule to convert. Defaults to `None`.

    Returns:
        A `PruningSchedule`.

    Raises:
        TypeError: anything else.
    """
    if schedule is None:
        return ConstantSparsity(0.5, begin_step=0)
    if isinstance(schedule, PruningSchedule):
        return schedule
    name = type(schedule).__name__
    get_config = getattr(schedule, "get_config", None)
    if name in _BY_NAME and callable(get_config) and callable(schedule):
        config = get_config()
        if isinstance(config, dict) and isinstance(config.get("config"), dict):
            config = config["config"]  # tfmot nests {"class_name": ..., "config": {...}}
        return _BY_NAME[name](**config)
    raise TypeError(
        "Argument `pruning_schedule` must be a tfopt.pruning.PruningSchedule (e.g. "
        "tfopt.pruning.ConstantSparsity(0.5, begin_step=0)) or a tfmot ConstantSparsity/"
        f"PolynomialDecay. Received: pruning_schedule={schedule!r}"
    )
