"""Distillation losses: soft (KL at a temperature), hard, MSE and feature (hint) losses.

Each loss is a `keras.distillation.DistillationLoss`, so it also works inside
`keras.distillation.Distiller`. Inside `tfopt.distillation.Distiller` the
temperature of a `SoftDistillation` lives in a variable that
`DistillationScheduler` can anneal during `fit`.
"""

from __future__ import annotations

import keras
from keras import ops
from keras.distillation import DistillationLoss
from keras.distillation import FeatureDistillation as _KerasFeatureDistillation

__all__ = [
    "FeatureDistillation",
    "HardDistillation",
    "MSEDistillation",
    "SoftDistillation",
    "get",
]

_EPSILON = 1e-7


def _check_temperature(temperature) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(
            "Argument `temperature` must be a number > 0 such as 3.0. "
            f"Received: temperature={temperature!r} of type {type(temperature).__name__}"
        )
    if not 0 < temperature <= 1e4:
        raise ValueError(
            "Argument `temperature` must be in (0, 10000] (typical values are 1 to 10). "
            f"Received: temperature={temperature}"
        )
    return float(temperature)


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"Argument `{name}` must be True or False. Received: {name}={value!r}")
    return value


def _as_logits(outputs, from_logits: bool):
    """Returns logits; probabilities become log-probabilities (valid logits up to a constant)."""
    if from_logits:
        return outputs
    return ops.log(ops.clip(outputs, _EPSILON, 1.0))


def _single(outputs, what: str):
    flat = keras.tree.flatten(outputs)
    if len(flat) != 1:
        raise ValueError(
            f"{what} supports single-output models; the models have {len(flat)} outputs. "
            "Use one loss per output with `keras.distillation.FeatureDistillation`."
        )
    return flat[0]


@keras.saving.register_keras_serializable(package="tfopt")
class SoftDistillation(DistillationLoss):
    """Soft-target loss: KL(softmax(teacher / T) || softmax(student / T)) * T².

    The T² factor (Hinton et al., 2015) keeps the gradient scale independent of
    `temperature`, so annealing T does not silently change the loss weight.

    Example:

    ```python
    loss = tfopt.distillation.SoftDistillation(temperature=4.0)
    distiller = tfopt.distillation.Distiller(teacher, student, loss, alpha=0.7)
    ```

    Args:
        temperature: Softmax temperature T (> 0). Defaults to `3.0`.
        from_logits: Whether both models output logits. If `False` they output
            probabilities, whose logarithms are used as logits. Defaults to `True`.

    Raises:
        ValueError: If `temperature <= 0`.
        TypeError: If `temperature` is not a number or `from_logits` not a bool.
    """

    def __init__(self, temperature: float = 3.0, from_logits: bool = True):
        self.temperature = _check_temperature(temperature)
        self.from_logits = _check_bool("from_logits", from_logits)

    def compute_loss(self, teacher_outputs, student_outputs, temperature=None, **kwargs):
        """Returns the scalar soft-target loss (mean over the batch).

        Args:
            teacher_outputs: Teacher logits (or probabilities), shape `(batch, ..., classes)`.
            student_outputs: Student logits (or probabilities), same shape.
            temperature: Overrides `self.temperature` (a float or a scalar variable; the
                Distiller passes its scheduled variable here). Defaults to `None`.
            **kwargs: Ignored.

        Returns:
            Scalar loss tensor.
        """
        t = self.temperature if temperature is None else temperature
        teacher = _as_logits(_single(teacher_outputs, "SoftDistillation"), self.from_logits)
        student = _as_logits(_single(student_outputs, "SoftDistillation"), self.from_logits)
        t = ops.cast(t, student.dtype)
        teacher_log_p = ops.log_softmax(ops.stop_gradient(teacher) / t, axis=-1)
        student_log_p = ops.log_softmax(student / t, axis=-1)
        kl = ops.sum(ops.exp(teacher_log_p) * (teacher_log_p - student_log_p), axis=-1)
        return ops.mean(kl) * t * t

    def get_config(self) -> dict:
        """Returns `temperature` and `from_logits` as a dict."""
        return {"temperature": self.temperature, "from_logits": self.from_logits}

    @classmethod
    def from_config(cls, config: dict) -> SoftDistillation:
        """Creates the loss from the dict `get_config` returned."""
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfopt")
class HardDistillation(DistillationLoss):
    """Hard-target loss: cross-entropy of the student against the teacher's argmax.

    Example:

    ```python
    distiller = tfopt.distillation.Distiller(teacher, student, "hard", alpha=0.5)
    ```

    Args:
        from_logits: Whether the student outputs logits (else probabilities).
            Defaults to `True`.

    Raises:
        TypeError: If `from_logits` is not a bool.
    """

    def __init__(self, from_logits: bool = True):
        self.from_logits = _check_bool("from_logits", from_logits)

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        """Returns the mean cross-entropy against `argmax(teacher)` (a scalar tensor)."""
        teacher = _single(teacher_outputs, "HardDistillation")
        student = _single(student_outputs, "HardDistillation")
        labels = ops.stop_gradient(ops.argmax(teacher, axis=-1))
        ce = keras.losses.sparse_categorical_crossentropy(
            labels, student, from_logits=self.from_logits
        )
        return ops.mean(ce)

    def get_config(self) -> dict:
        """Returns `from_logits` as a dict."""
        return {"from_logits": self.from_logits}

    @classmethod
    def from_config(cls, config: dict) -> HardDistillation:
        """Creates the loss from the dict `get_config` returned."""
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfopt")
class MSEDistillation(DistillationLoss):
    """Mean squared error between teacher and student outputs (logits or regression values).

    Example:

    ```python
    distiller = tfopt.distillation.Distiller(teacher, student, "mse", alpha=0.5)
    distiller.compile(optimizer="adam", loss="mse")
    ```
    """

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        """Returns the mean of (teacher - student)² over each output, summed over outputs."""
        pairs = zip(keras.tree.flatten(teacher_outputs), keras.tree.flatten(student_outputs))
        terms = [ops.mean(ops.square(ops.stop_gradient(t) - s)) for t, s in pairs]
        return terms[0] if len(terms) == 1 else ops.sum(ops.stack(terms))

    def get_config(self) -> dict:
        """Returns an empty dict: the loss has no arguments."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> MSEDistillation:
        """Creates the loss from the (empty) dict `get_config` returned."""
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfopt")
class FeatureDistillation(_KerasFeatureDistillation):
    """Hint loss between intermediate layers, with an optional learned projection.

    Extends `keras.distillation.FeatureDistillation`: with `projection=True` the
    `tfopt.distillation.Distiller` owns a trainable `Dense` layer (a 1x1
    convolution on feature maps) that maps the student's features to the
    teacher's width before the loss (FitNets, Romero et al., 2015). The
    projection is trained with the student and is not part of the student, so
    it disappears on export.

    Example:

    ```python
    hint = tfopt.distillation.FeatureDistillation(
        teacher_layer_name="t_hidden", student_layer_name="s_hidden", projection=True
    )
    distiller = tfopt.distillation.Distiller(teacher, student, ["soft", hint],
                                             distillation_loss_weights=[1.0, 0.1])
    ```

    Args:
        loss: Loss between features (name or `keras.losses.Loss`). Defaults to `"mse"`.
        teacher_layer_name: Teacher layer whose output is the hint. Defaults to `None`
            (the final output).
        student_layer_name: Student layer whose output is matched. Defaults to `None`
            (the final output).
        projection: Learn a projection from the student's feature width to the
            teacher's. Required when the last dimensions differ. Defaults to `False`.

    Raises:
        TypeError: If `projection` is not a bool.
    """

    def __init__(
        self,
        loss="mse",
        teacher_layer_name: str | None = None,
        student_layer_name: str | None = None,
        projection: bool = False,
    ):
        super().__init__(
            loss=loss,
            teacher_layer_name=teacher_layer_name,
            student_layer_name=student_layer_name,
        )
        self.projection = _check_bool("projection", projection)

    def get_config(self) -> dict:
        """Returns Keras' config (serialized `loss`, both layer names) plus `projection`."""
        config = super().get_config()
        config["projection"] = self.projection
        return config


_BY_NAME = {
    "soft": SoftDistillation,
    "kl": SoftDistillation,
    "hard": HardDistillation,
    "mse": MSEDistillation,
}


def get(identifier) -> DistillationLoss:
    """Returns a distillation loss from a name (`"soft"`, `"hard"`, `"mse"`) or an instance.

    Example:

    ```python
    tfopt.distillation.losses.get("soft")  # SoftDistillation(temperature=3.0)
    ```

    Args:
        identifier: A name or a `keras.distillation.DistillationLoss`.

    Returns:
        A `DistillationLoss` instance.

    Raises:
        ValueError: If the name is unknown.
        TypeError: If `identifier` is neither a name nor a `DistillationLoss`.
    """
    if isinstance(identifier, DistillationLoss):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _BY_NAME:
            raise ValueError(
                "Argument `distillation_losses` has an unknown loss name. "
                f"Received: {identifier!r}. Expected one of {sorted(_BY_NAME)} or a "
                "keras.distillation.DistillationLoss instance."
            )
        return _BY_NAME[key]()
    raise TypeError(
        "Argument `distillation_losses` must hold loss names ('soft', 'hard', 'mse') or "
        "keras.distillation.DistillationLoss instances. "
        f"Received: {identifier!r} of type {type(identifier).__name__}"
    )
