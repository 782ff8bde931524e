"""Distiller: `keras.distillation.Distiller` with more losses, schedules and caching.

Schedulable alpha/temperature, hard/MSE/hint losses, learned projections,
teacher-output caching and correct multi-replica loss scaling.
"""

from __future__ import annotations

import keras
from keras import ops
from keras.distillation import DistillationLoss

from tfopt.distillation import _cache
from tfopt.distillation import losses as _losses

__all__ = ["Distiller"]


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(
            "Argument `alpha` must be a number in [0, 1] (the weight of the distillation "
            f"loss). Received: alpha={alpha!r} of type {type(alpha).__name__}"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(
            "Argument `alpha` must be in [0, 1]: the loss is alpha * distillation + "
            f"(1 - alpha) * student loss. Received: alpha={alpha}"
        )
    return float(alpha)


def _check_models(teacher, student) -> None:
    for name, model in (("teacher", teacher), ("student", student)):
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"Argument `{name}` must be a Keras 3 `keras.Model`. Received: {name} of type "
                f"{type(model).__module__}.{type(model).__name__}. (A tf_keras model must be "
                "rebuilt with Keras 3.)"
            )
    if teacher is student:
        raise ValueError(
            "Arguments `teacher` and `student` are the same model object "
            f"({teacher.name!r}); the teacher is frozen, so nothing would train. Pass a "
            "separate (usually smaller) student, e.g. keras.models.clone_model(teacher) "
            "for self-distillation."
        )
    t_out = getattr(teacher, "outputs", None)
    s_out = getattr(student, "outputs", None)
    if not t_out or not s_out:
        return  # subclassed models: shapes are checked when the losses run
    t_shapes = [tuple(o.shape) for o in t_out]
    s_shapes = [tuple(o.shape) for o in s_out]
    compatible = len(t_shapes) == len(s_shapes) and all(
        len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))
        for a, b in zip(t_shapes, s_shapes)
    )
    if not compatible:
        raise ValueError(
            "Arguments `teacher` and `student` must produce outputs of the same shape "
            f"(the losses compare them element-wise). Received: teacher outputs {t_shapes}, "
            f"student outputs {s_shapes}. Give the student the teacher's output layer "
            "size (e.g. the same number of classes)."
        )


def _check_weights(weights, n: int) -> list[float] | None:
    if weights is None:
        return None
    if not isinstance(weights, (list, tuple)) or len(weights) != n:
        raise ValueError(
            f"Argument `distillation_loss_weights` must be a list of {n} numbers, one per "
            f"distillation loss. Received: distillation_loss_weights={weights!r}"
        )
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
            raise ValueError(
                "Argument `distillation_loss_weights` must hold numbers >= 0. "
                f"Received: distillation_loss_weights={weights!r}"
            )
    return [float(w) for w in weights]


def _layer_output_shape(model, layer_name: str) -> tuple:
    return tuple(model.get_layer(layer_name).output.shape)


@keras.saving.register_keras_serializable(package="tfopt")
class Distiller(keras.distillation.Distiller):
    """Trains a student to match a frozen teacher; a `keras.Model` for `compile`/`fit`/`evaluate`.

    Builds on `keras.distillation.Distiller` (same feature extraction and
    `DistillationLoss` protocol) and adds: `alpha` and the soft-loss temperature
    held in variables (so `DistillationScheduler` anneals them without
    retracing, and a saved model resumes with them), soft/hard/MSE/hint losses
    by name, learned hint projections, teacher-output caching, one student
    forward pass per step with hint losses, student regularization losses, and
    loss scaling that is correct under `tf.distribute` strategies.

    The loss is `alpha * sum(w_i * distillation_loss_i) + (1 - alpha) * student_loss`
    where `student_loss` is the `loss` given to `compile` (against the labels).
    The teacher runs with `training=False` and is frozen. `predict` and
    `__call__` run the student; `distiller.student` is the trained model to export.

    With a random input pipeline (augmentation, mixup, noise in a `tf.data` map or a
    `keras.utils.PyDataset`), the teacher runs on the very batch the student sees,
    each step: "consistent teaching" (Beyer et al., 2022, "Knowledge distillation: A
    good teacher is patient and consistent"). Leave `cache_teacher_outputs=False`
    for such pipelines (the cache refuses them).

    Example:

    ```python
    distiller = tfopt.distillation.Distiller(teacher, student, "soft", alpha=0.7)
    distiller.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    distiller.fit(x, y, epochs=5)
    tfopt.export.to_tflite(distiller.student, "student.tflite")
    ```

    Args:
        teacher: Trained Keras 3 model; frozen by the Distiller.
        student: Keras 3 model to train; its outputs must have the teacher's shape.
        distillation_losses: A loss name (`"soft"`, `"hard"`, `"mse"`), a
            `keras.distillation.DistillationLoss` (e.g. `SoftDistillation`,
            `FeatureDistillation`), or a list of them. Defaults to `"soft"`.
        distillation_loss_weights: One weight per distillation loss. Defaults to
            `None` (all 1.0).
        alpha: Weight of the distillation loss against the student's own loss, in
            [0, 1]. Defaults to `0.5`.
        cache_teacher_outputs: Run the teacher once per `fit` over fixed inputs and
            reuse its outputs every epoch. Refused for random pipelines. Defaults
            to `False`.
        name: Model name. Defaults to `"distiller"`.
        **kwargs: Passed to `keras.Model`.

    Raises:
        TypeError: If `teacher`/`student` are not Keras 3 models, or an argument has
            the wrong type.
        ValueError: If the teacher is the student, the output shapes differ,
            `alpha` is outside [0, 1], a temperature is <= 0, or hint layers cannot
            be matched.
    """

    def __init__(
        self,
        teacher: keras.Model,
        student: keras.Model,
        distillation_losses: str | DistillationLoss | list = "soft",
        distillation_loss_weights: list[float] | None = None,
        alpha: float = 0.5,
        cache_teacher_outputs: bool = False,
        name: str = "distiller",
        **kwargs,
    ):
        _check_models(teacher, student)
        alpha = _check_alpha(alpha)
        if not isinstance(cache_teacher_outputs, bool):
            raise TypeError(
                "Argument `cache_teacher_outputs` must be True or False. "
                f"Received: cache_teacher_outputs={cache_teacher_outputs!r}"
            )
        if distillation_losses is None:
            raise ValueError(
                "Argument `distillation_losses` must not be None. Received: None. "
                "Use 'soft', 'hard', 'mse' or a keras.distillation.DistillationLoss."
            )
        if not isinstance(distillation_losses, (list, tuple)):
            distillation_losses = [distillation_losses]
        loss_objects = [_losses.get(item) for item in distillation_losses]
        if not loss_objects:
            raise ValueError("Argument `distillation_losses` must not be empty. Received: []")
        weights = _check_weights(distillation_loss_weights, len(loss_objects))
        try:
            super().__init__(
                teacher=teacher,
                student=student,
                distillation_losses=loss_objects,
                distillation_loss_weights=weights,
                student_loss_weight=1.0 - alpha,
                name=name,
                **kwargs,
            )
        except ValueError as err:
            if "No such layer" not in str(err):
                raise
            raise ValueError(
                "Argument `distillation_losses`: a feature loss names a layer the model does "
                f"not have ({str(err).splitlines()[0]}). Check its teacher_layer_name and "
                "student_layer_name against teacher.layers / student.layers."
            ) from err
        self.cache_teacher_outputs = cache_teacher_outputs
        self._alpha_var = self.add_weight(
            name="alpha",
            shape=(),
            initializer=keras.initializers.Constant(alpha),
            trainable=False,
        )
        temperatures = {}
        for index, loss in enumerate(self.distillation_losses):
            if isinstance(loss, _losses.SoftDistillation):
                temperatures[index] = self.add_weight(
                    name=f"temperature_{index}",
                    shape=(),
                    initializer=keras.initializers.Constant(loss.temperature),
                    trainable=False,
                )
        object.__setattr__(self, "_temperature_vars", temperatures)
        object.__setattr__(self, "_pending_student_features", {})
        self.projections = self._build_projections()
        if teacher.built and student.built:
            self.built = True

    # ----------------------------------------------------------------- alpha / temperature

    @property
    def alpha(self) -> float:
        """Current weight of the distillation loss (a Python float)."""
        return float(keras.ops.convert_to_numpy(self._alpha_var))

    @alpha.setter
    def alpha(self, value: float) -> None:
        self._alpha_var.assign(_check_alpha(value))

    @property
    def student_loss_weight(self) -> float:
        """`1 - alpha`, the name `keras.distillation.Distiller` uses."""
        if getattr(self, "_alpha_var", None) is None:
            return self._initial_student_loss_weight
        return 1.0 - self.alpha

    @student_loss_weight.setter
    def student_loss_weight(self, value: float) -> None:
        if getattr(self, "_alpha_var", None) is None:
            object.__setattr__(self, "_initial_student_loss_weight", float(value))
        else:
            self.alpha = 1.0 - value

    @property
    def temperature(self) -> float | None:
        """Current temperature of the soft losses (`None` if there is no `SoftDistillation`)."""
        if not self._temperature_vars:
            return None
        first = next(iter(self._temperature_vars.values()))
        return float(keras.ops.convert_to_numpy(first))

    @temperature.setter
    def temperature(self, value: float) -> None:
        if not self._temperature_vars:
            raise ValueError(
                "This Distiller has no SoftDistillation loss, so it has no temperature to set. "
                f"Received: temperature={value}. Add 'soft' to `distillation_losses`."
            )
        value = _losses._check_temperature(value)
        for variable in self._temperature_vars.values():
            variable.assign(value)

    # ------------------------------------------------------------------------ projections

    def _build_projections(self) -> dict:
        projections = {}
        for index, loss in enumerate(self.distillation_losses):
            t_name = getattr(loss, "teacher_layer_name", None)
            s_name = getattr(loss, "student_layer_name", None)
            if t_name is None and s_name is None:
                continue
            t_shape = (
                _layer_output_shape(self.teacher, t_name)
                if t_name
                else tuple(self.teacher.outputs[0].shape)
            )
            s_shape = (
                _layer_output_shape(self.student, s_name)
                if s_name
                else tuple(self.student.outputs[0].shape)
            )
            wants_projection = getattr(loss, "projection", False)
            if len(t_shape) != len(s_shape) or t_shape[1:-1] != s_shape[1:-1]:
                raise ValueError(
                    f"Hint loss {index} ({type(loss).__name__}) compares teacher layer "
                    f"{t_name!r} with output shape {t_shape} and student layer {s_name!r} with "
                    f"output shape {s_shape}; all dimensions but the last must match. Choose "
                    "layers at the same resolution."
                )
            if t_shape[-1] != s_shape[-1] and not wants_projection:
                raise ValueError(
                    f"Hint loss {index} compares teacher layer {t_name!r} ({t_shape[-1]} "
                    f"features) with student layer {s_name!r} ({s_shape[-1]} features). "
                    "Received: projection=False. Use tfopt.distillation.FeatureDistillation("
                    "..., projection=True) to learn a projection between the widths."
                )
            if wants_projection:
                layer = keras.layers.Dense(t_shape[-1], name=f"projection_{index}")
                layer.build(s_shape)
                projections[str(index)] = layer
        return projections

    # ------------------------------------------------------------------------------- call

    def call(self, inputs, training=None, **kwargs):
        """Runs the student (one pass that also yields hint features when training)."""
        if training and self._student_feature_extractor is not None and not kwargs:
            features = self._student_feature_extractor(inputs, training=True)
            y_pred = features["final_output"]
            pending = self._pending_student_features
            if len(pending) > 16:
                pending.clear()
            pending[id(y_pred)] = (y_pred, features)
            return y_pred
        return self.student(inputs, training=training, **kwargs)

    def _student_features(self, x, y_pred):
        entry = self._pending_student_features.pop(id(y_pred), None)
        if entry is not None and entry[0] is y_pred:
            return entry[1]
        return self._extract_all_student_features(x, y_pred)

    # ------------------------------------------------------------------------------- loss

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """Configures training; `loss` is the student's own loss against the labels.

        Args:
            optimizer: Optimizer for the student (and hint projections). Defaults to `"adam"`.
            loss: Student loss, e.g. `keras.losses.SparseCategoricalCrossentropy(from_logits=
                True)`. Required. Defaults to `None`.
            metrics: List of metrics computed on the student's predictions. Defaults to `None`.
            **kwargs: Passed to `keras.Model.compile`.

        Raises:
            ValueError: If `loss` is None.
        """
        if loss is None:
            raise ValueError(
                "Argument `loss` (the student's own loss against the labels) is required. "
                "Received: loss=None. For example: "
                "loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)."
            )
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def _student_loss_value(self, y, y_pred, sample_weight):
        def one(loss_fn, target, prediction):
            if loss_fn is None:
                return ops.zeros(())
            fn = loss_fn.call if isinstance(loss_fn, keras.losses.Loss) else loss_fn
            values = ops.convert_to_tensor(fn(target, prediction))
            if sample_weight is not None:
                weight = ops.cast(sample_weight, values.dtype)
                while len(weight.shape) < len(values.shape):
                    weight = ops.expand_dims(weight, -1)
                values = values * weight
            return ops.mean(values)

        values = keras.tree.flatten(keras.tree.map_structure(one, self._student_loss, y, y_pred))
        return values[0] if len(values) == 1 else ops.sum(ops.stack(values))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Returns `alpha * distillation + (1 - alpha) * student_loss + regularization`.

        Scaled for distribution like Keras' own losses (divided by the number of replicas).
        """
        y, cached = _cache.unpack(y)
        if y_pred is None:
            y_pred = self(x, training=training)
        alpha = ops.cast(self._alpha_var, "float32")

        student_loss = ops.zeros(())
        if y is not None and getattr(self, "_student_loss", None) is not None:
            student_loss = ops.cast(self._student_loss_value(y, y_pred, sample_weight), "float32")

        teacher_features = cached
        if teacher_features is None:
            teacher_features = self._extract_all_teacher_features(x)
        needs_student_features = self._student_feature_extractor is not None
        student_features = self._student_features(x, y_pred) if needs_student_features else None

        distillation = ops.zeros(())
        for index, (loss_fn, weight) in enumerate(
            zip(self.distillation_losses, self.distillation_loss_weights)
        ):
            t_name = getattr(loss_fn, "teacher_layer_name", None)
            s_name = getattr(loss_fn, "student_layer_name", None)
            teacher_out = teacher_features[t_name or "final_output"]
            student_out = student_features[s_name] if s_name else y_pred
            teacher_out = keras.tree.map_structure(
                lambda t: ops.stop_gradient(ops.convert_to_tensor(t)), teacher_out
            )
            if str(index) in self.projections:
                student_out = self.projections[str(index)](student_out)
            kwargs = {}
            if index in self._temperature_vars:
                kwargs["temperature"] = self._temperature_vars[index]
            loss_fn.validate_outputs(teacher_out, student_out)
            value = ops.cast(loss_fn.compute_loss(teacher_out, student_out, **kwargs), "float32")
            if len(value.shape) > 0:
                raise ValueError(
                    f"Distillation loss {type(loss_fn).__name__}.compute_loss must return a "
                    f"scalar. Received shape {value.shape}."
                )
            distillation = distillation + weight * value

        total = alpha * distillation + (1.0 - alpha) * student_loss
        extra = list(self.student.losses)
        for layer in self.projections.values():
            extra.extend(layer.losses)
        if extra:
            total = total + ops.sum(ops.stack([ops.cast(ops.sum(e), "float32") for e in extra]))

        self.student_loss_tracker.update_state(student_loss)
        self.distillation_loss_tracker.update_state(distillation)
        self.total_loss_tracker.update_state(total)
        return _scale_for_replicas(total)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Updates the compiled metrics against the labels (cached teacher outputs removed)."""
        y, _ = _cache.unpack(y)
        if y is None:  # unlabeled distillation: the compiled metrics have no target
            results = {}
            for metric in self.metrics:
                if metric is self._compile_metrics and not metric.built:
                    continue
                result = metric.result()
                results.update(result if isinstance(result, dict) else {metric.name: result})
            return results
        return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    # ------------------------------------------------------------------------ caching / fit

    def teacher_outputs(self, x, batch_size: int = 32) -> dict:
        """Runs the frozen teacher once (inference mode) and returns the features the losses use.

        Args:
            x: Input arrays.
            batch_size: Batch size of the teacher's pass. Defaults to `32`.

        Returns:
            Dict of NumPy arrays: `"final_output"` plus one entry per hint layer.
        """
        if self._teacher_feature_extractor is not None:
            return self._teacher_feature_extractor.predict(x, batch_size=batch_size, verbose=0)
        return {"final_output": self.teacher.predict(x, batch_size=batch_size, verbose=0)}

    def fit(self, x=None, y=None, batch_size=None, epochs=1, **kwargs):
        """`keras.Model.fit`; with `cache_teacher_outputs=True` the teacher runs once first.

        The cached outputs are computed at the start of each `fit` call and reused
        for all its epochs (and its `validation_split`); `validation_data` is not
        cached (the teacher runs on it).

        Args:
            x: Inputs, as for `keras.Model.fit`. Defaults to `None`.
            y: Labels; may be `None` for label-free distillation with `alpha=1`.
                Defaults to `None`.
            batch_size: As for `keras.Model.fit`. Defaults to `None` (32).
            epochs: As for `keras.Model.fit`. Defaults to `1`.
            **kwargs: Passed to `keras.Model.fit`.

        Returns:
            The `keras.callbacks.History`.

        Raises:
            ValueError: If `cache_teacher_outputs=True` and the inputs are not fixed
                (a generator, a `PyDataset`, or a tf.data pipeline with random ops).
        """
        kwargs["batch_size"] = batch_size
        if self.cache_teacher_outputs:
            x, y, kwargs = _cache.prepare_fit_data(self, x, y, kwargs)
        return super().fit(x, y, epochs=epochs, **kwargs)

    # ---------------------------------------------------------------------- serialization

    def get_config(self) -> dict:
        """Returns the Keras Distiller config with `alpha` and `cache_teacher_outputs`.

        `alpha` replaces `student_loss_weight`; the teacher's and student's configs
        leave out their own compile configs.
        """
        config = super().get_config()
        config.pop("student_loss_weight", None)
        for key in ("teacher", "student"):
            # The inner models' own compile state (optimizer) is not the Distiller's.
            if isinstance(config.get(key), dict):
                config[key] = {k: v for k, v in config[key].items() if k != "compile_config"}
        config["alpha"] = self.alpha
        config["cache_teacher_outputs"] = self.cache_teacher_outputs
        return config

    def get_compile_config(self) -> dict:
        """Returns the compile config with `loss` set to the student loss given to `compile`."""
        config = super().get_compile_config()
        if config and hasattr(self, "_student_loss_for_serialization"):
            config["loss"] = keras.saving.serialize_keras_object(
                self._student_loss_for_serialization
            )
        return config

    def compile_from_config(self, config: dict) -> None:
        """Compiles from a `get_compile_config` dict on load; builds the optimizer if built."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)


def _scale_for_replicas(value):
    """Divides by the number of replicas, as Keras' own losses do, so summed gradients average."""
    if keras.backend.backend() != "tensorflow":
        return value
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value / replicas if replicas > 1 else value
