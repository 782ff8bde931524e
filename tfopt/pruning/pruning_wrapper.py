"""`PruneLowMagnitude`: the Keras 3 wrapper that prunes a layer's weights during training."""

from __future__ import annotations

import numbers

import keras
import numpy as np
from keras import ops

from tfopt.pruning import masks as _masks
from tfopt.pruning import prune_registry
from tfopt.pruning._limits import (
    _inside_message,
    _m_by_n_message,
    _m_by_n_misfits,
    _running_inside,
)
from tfopt.pruning._train_step import _in_train_step
from tfopt.pruning.pruning_schedule import PruningSchedule, as_schedule

_CALLBACK_MESSAGE = (
    "PruneLowMagnitude needs the UpdatePruningStep callback during training, which sets "
    "the pruning step. Add it to fit: model.fit(..., "
    "callbacks=[tfopt.pruning.UpdatePruningStep()])."
)
MASK_TYPES = ("magnitude", "random")


class _MaskConstraint(keras.constraints.Constraint):
    """Keeps pruned weights at exactly zero after every optimizer update.

    Keras optimizers apply `variable.constraint` after each update, on every
    replica; the user's own constraint, if any, runs first. It multiplies by the
    mask (one elementwise op per step, as tfmot's weight-mask op does): pruned
    negative weights become -0.0 here, and `apply_masks` (every epoch end, through
    `UpdatePruningStep`) and `strip_pruning` store them as +0.0.
    """

    def __init__(self, mask, previous=None):
        self.mask = mask
        self.previous = previous

    def __call__(self, w):
        if self.previous is not None:
            w = self.previous(w)
        # Half the cost of _masked's select (3.7 vs 7.7 ms per step on 5.4M weights).
        return w * ops.cast(self.mask, w.dtype)


def _masked(w, mask):
    """`w` where `mask` is nonzero, else +0.0.

    `w * mask` leaves -0.0 for pruned negative weights (about half of them), whose bytes
    differ from +0.0 and cost gzip size in the saved and exported files.
    """
    return ops.where(ops.not_equal(mask, 0), w, ops.zeros_like(w))


def _check_block_size(block_size) -> tuple[int, int]:
    try:
        values = tuple(block_size)
    except TypeError:
        values = ()
    if len(values) != 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise ValueError(
            "Argument `block_size` must be a pair of ints >= 1, e.g. (1, 1) or (4, 1). "
            f"Received: block_size={block_size!r}"
        )
    return int(values[0]), int(values[1])


def _check_m_by_n(m_by_n, argument: str = "sparsity_m_by_n") -> tuple[int, int] | None:
    if m_by_n is None:
        return None
    try:
        values = tuple(m_by_n)
    except TypeError:
        values = ()
    if len(values) != 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values
    ):
        raise ValueError(
            f"Argument `{argument}` must be a pair of ints (m, n), e.g. (2, 4). "
            f"Received: {argument}={m_by_n!r}"
        )
    m, n = int(values[0]), int(values[1])
    if not 0 < m < n:
        raise ValueError(
            f"Argument `{argument}` must be (m, n) with 0 < m < n (m zeros in every n "
            f"weights), e.g. (2, 4). Received: {argument}={m_by_n!r}"
        )
    return m, n


def _check_params(pruning_schedule, block_size, block_pooling_type, sparsity_m_by_n, mask_type):
    """Validates the pruning arguments; returns them normalized."""
    if isinstance(pruning_schedule, dict):
        try:
            pruning_schedule = keras.saving.deserialize_keras_object(pruning_schedule)
        except Exception as err:
            raise TypeError(
                "Argument `pruning_schedule` is a dict that is no saved schedule "
                f"({type(err).__name__}: {str(err).splitlines()[0][:200]}). Pass a schedule, "
                "e.g. tfopt.pruning.ConstantSparsity(0.5, begin_step=0)."
            ) from err
    schedule = as_schedule(pruning_schedule)
    size = _check_block_size(block_size)
    if not isinstance(block_pooling_type, str) or block_pooling_type not in ("AVG", "MAX"):
        raise ValueError(
            'Argument `block_pooling_type` must be "AVG" or "MAX". '
            f"Received: block_pooling_type={block_pooling_type!r}"
        )
    m_by_n = _check_m_by_n(sparsity_m_by_n)
    if m_by_n and size != (1, 1):
        raise ValueError(
            "Use either `block_size` or `sparsity_m_by_n`, not both. Received: "
            f"block_size={block_size!r}, sparsity_m_by_n={sparsity_m_by_n!r}"
        )
    if not isinstance(mask_type, str) or mask_type not in MASK_TYPES:
        raise ValueError(
            f"Argument `mask_type` must be one of {MASK_TYPES}. Received: mask_type={mask_type!r}"
        )
    return {
        "pruning_schedule": schedule,
        "block_size": size,
        "block_pooling_type": block_pooling_type,
        "sparsity_m_by_n": m_by_n,
        "mask_type": mask_type,
    }


def _in_replica_of_strategy() -> bool:
    """True inside `strategy.run` of a real distribution strategy (e.g. MirroredStrategy)."""
    import tensorflow as tf

    return tf.distribute.has_strategy() and not tf.distribute.in_cross_replica_context()


@keras.saving.register_keras_serializable(package="tfopt")
class PruneLowMagnitude(keras.layers.Wrapper):
    """Wraps a layer and prunes its weights by magnitude as training runs.

    Use `prune_low_magnitude` to wrap layers or whole models. At every step the
    schedule says to prune, the mask of each prunable weight is recomputed
    (magnitude, block-pooled magnitude, m:n or random) and the pruned weights
    are set to zero; they stay exactly zero after every optimizer update.
    Training needs the `UpdatePruningStep` callback.

    Example:

    ```python
    layer = tfopt.pruning.PruneLowMagnitude(
        keras.layers.Dense(10), tfopt.pruning.ConstantSparsity(0.8, begin_step=0)
    )
    ```

    Args:
        layer: the Keras layer to prune.
        pruning_schedule: a `PruningSchedule` (or a tfmot schedule). Defaults
            to `None` (tfmot's default, `ConstantSparsity(0.5, begin_step=0)`).
        block_size: (rows, cols) of the blocks pruned together in rank-2
            weights. Defaults to `(1, 1)`.
        block_pooling_type: "AVG" or "MAX", how a block's magnitude is pooled.
            Defaults to `"AVG"`.
        sparsity_m_by_n: `(m, n)` to zero m weights in every n along the
            input-channel axis (e.g. `(2, 4)`); the schedule then only says
            when. A weight with fewer than n weights on that axis holds no
            group and is refused. Defaults to `None`.
        mask_type: "magnitude" or "random" (a baseline for studies: positions
            ranked by fixed random scores, within each group under m:n).
            Defaults to `"magnitude"`.
        seed: seed of the random scores. Defaults to `None`.
        **kwargs: base layer arguments (`name`, ...).

    Raises:
        ValueError: a bad argument, an already-pruned layer, a layer tfopt
            does not know how to prune, or a block / m:n shape the weight
            cannot take.
        TypeError: `layer` is not a Keras layer.
    """

    def __init__(
        self,
        layer: keras.layers.Layer,
        pruning_schedule: PruningSchedule | None = None,
        block_size: tuple[int, int] = (1, 1),
        block_pooling_type: str = "AVG",
        sparsity_m_by_n: tuple[int, int] | None = None,
        mask_type: str = "magnitude",
        seed: int | None = None,
        **kwargs,
    ):
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                f"Argument `layer` must be a keras.layers.Layer. Received: layer={layer!r}"
            )
        if isinstance(layer, PruneLowMagnitude):
            raise ValueError(
                f"Layer {layer.name!r} is already pruned (a PruneLowMagnitude); wrap each "
                "layer once. Received: layer=PruneLowMagnitude(...)"
            )
        if layer.built:
            self._check_known(layer)
        checked = _check_params(
            pruning_schedule, block_size, block_pooling_type, sparsity_m_by_n, mask_type
        )
        self.pruning_schedule = checked["pruning_schedule"]
        self.block_size = checked["block_size"]
        self.block_pooling_type = checked["block_pooling_type"]
        self.sparsity_m_by_n = checked["sparsity_m_by_n"]
        self.mask_type = checked["mask_type"]
        if layer.built:  # refuse a pattern that cannot apply now, not at the first fit
            self._check_fits(layer)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(
                f"Argument `seed` must be None or an int >= 0. Received: seed={seed!r}"
            )
        self.seed = seed
        kwargs.setdefault("name", f"prune_low_magnitude_{layer.name}")
        super().__init__(layer, **kwargs)
        # A padding mask goes on through the wrapped layer as through the layer itself.
        self.supports_masking = bool(getattr(layer, "supports_masking", False))
        # Set by UpdatePruningStep.on_train_begin; checked when a training step is traced.
        self._step_ready = False

    def compute_mask(self, inputs, mask=None):
        """The wrapped layer's output mask (None for a layer that does not mask)."""
        if not self.supports_masking:
            return None
        return self.layer.compute_mask(inputs, mask)

    def _check_not_inside(self):
        outer = _running_inside()
        if outer is not None:
            raise ValueError(
                _inside_message(type(outer).__name__, type(self.layer).__name__, outer.name)
            )

    @staticmethod
    def _check_known(layer):
        if not prune_registry.is_known(layer) and layer.weights:
            raise ValueError(
                f"Layer {layer.name!r} of class {type(layer).__name__} is not supported for "
                "pruning: tfopt does not know which of its weights to prune. Make it a "
                "tfopt.pruning.PrunableLayer (implement get_prunable_weights()), or leave "
                f"it dense with prune_low_magnitude(..., leave_dense=[{layer.name!r}])."
            )

    def build(self, input_shape=None):
        """Builds the wrapped layer, then a mask per prunable weight and the pruning step.

        Each pruned weight gets a constraint that multiplies it by its mask after
        every optimizer update; `mask_type="random"` also draws the fixed scores.
        """
        self._check_not_inside()
        if not self.layer.built:
            self.layer.build(input_shape)
        self._check_known(self.layer)
        self._check_fits(self.layer)
        pairs = prune_registry.prunable_weights(self.layer)
        self._prunable = [w for w, _ in pairs]
        self._axes = [axis for _, axis in pairs]
        rng = np.random.default_rng(self.seed)
        masks, scores = [], []
        for weight in self._prunable:
            masks.append(self._state(np.ones(weight.shape), weight.dtype, f"{weight.name}_mask"))
            if self.mask_type == "random":
                scores.append(
                    self._state(rng.random(weight.shape), "float32", f"{weight.name}_score")
                )
        self.masks = masks
        self.scores = scores
        # -1 until UpdatePruningStep starts training (0 if it already has: lazy builds).
        start = 0 if self._step_ready else -1
        self.pruning_step = self._state(np.array(start), "int64", "pruning_step")
        for weight, mask in zip(self._prunable, self.masks):
            if not isinstance(weight.constraint, _MaskConstraint):
                weight.constraint = _MaskConstraint(mask, weight.constraint)
        self.built = True

    @staticmethod
    def _state(value, dtype, name):
        # One copy per replica, updated locally (no cross-replica sync inside the
        # training step); every replica computes the same value from the same
        # mirrored weights. Reads outside replicas and saving use the first one.
        # An initializer, not a value: Keras defers it when the wrapper is built in a
        # stateless scope (a subclassed model built by its first fit step).
        value = np.asarray(value)
        return keras.Variable(
            lambda shape, dtype: ops.cast(value, dtype),
            shape=value.shape,
            dtype=dtype,
            trainable=False,
            synchronization="on_read",
            aggregation="only_first_replica",
            name=name,
        )

    def _check_fits(self, layer):
        """Refuses a block size or an m:n pattern that the built layer's weights cannot take."""
        if self.sparsity_m_by_n:
            misfits = _m_by_n_misfits(layer, self.sparsity_m_by_n)
            if misfits:
                raise ValueError(_m_by_n_message({layer: misfits}, self.sparsity_m_by_n))
        if self.block_size == (1, 1):
            return
        for weight, _ in prune_registry.prunable_weights(layer):
            shape = tuple(int(d) for d in weight.shape)
            if len(shape) != 2 or any(s < b for s, b in zip(shape, self.block_size)):
                raise ValueError(
                    f"Argument `block_size` does not fit: weight {weight.name!r} of layer "
                    f"{layer.name!r} has shape {shape}; blocks need a rank-2 weight at least "
                    "as large as the block. Use block_size=(1, 1) for this layer. "
                    f"Received: block_size={self.block_size}"
                )

    @property
    def pruned_weights(self) -> list:
        """The wrapped layer's variables that are pruned."""
        return list(getattr(self, "_prunable", []))

    def pruning_vars(self) -> list[tuple]:
        """(weight, mask) pairs."""
        return list(zip(self.pruned_weights, self.masks))

    def _new_mask(self, index, weight, sparsity):
        source = self.scores[index] if self.mask_type == "random" else weight
        if self.sparsity_m_by_n:
            m, n = self.sparsity_m_by_n
            mask = _masks.m_by_n_mask(ops.convert_to_tensor(source), m, n, self._axes[index])
            return ops.cast(mask, weight.dtype)
        if self.block_size != (1, 1):
            mask = _masks.block_mask(source, sparsity, self.block_size, self.block_pooling_type)
        else:
            mask = _masks.magnitude_mask(ops.convert_to_tensor(source), sparsity)
        return ops.cast(mask, weight.dtype)

    def _training_update(self):
        import tensorflow as tf

        current = ops.convert_to_tensor(self.pruning_step)  # -1 until UpdatePruningStep runs
        step = ops.add(current, 1)  # tfmot's convention: the first batch is step 1
        should_prune, _ = self.pruning_schedule(step)  # unused sparsity ops get pruned
        # One branch per step: a missing callback (step -1) also enters it and fails there.
        enter = ops.logical_or(ops.cast(should_prune, "bool"), ops.less(current, 0))
        mask_weights = not _in_replica_of_strategy()

        def update():
            check = tf.debugging.assert_greater_equal(
                current, tf.constant(0, tf.int64), message=_CALLBACK_MESSAGE
            )
            with tf.control_dependencies([check]):
                _, sparsity = self.pruning_schedule(step)
                for index, (weight, mask) in enumerate(zip(self._prunable, self.masks)):
                    new_mask = self._new_mask(index, ops.convert_to_tensor(weight), sparsity)
                    mask.assign(new_mask)
                    if mask_weights:  # in replicas the optimizer's constraint zeros them
                        weight.assign(_masked(weight, new_mask))
            return tf.constant(True)

        done = tf.cond(enter, update, lambda: tf.constant(False))
        with tf.control_dependencies([done]):  # not reached when the check fails
            self.pruning_step.assign(step)

    def call(self, inputs, *args, training=None, **kwargs):
        """Runs the wrapped layer; in training, first advances the step and prunes on schedule.

        `training=None` (Keras gave no value, e.g. in a subclassed model whose
        `call()` takes no `training`) counts as training inside the model's fit
        train step, and as inference elsewhere.

        Raises:
            ValueError: in training, when `UpdatePruningStep` has not started the step.
        """
        if training is None:
            training = _in_train_step()
        if training is True:
            self._check_not_inside()
        if training is True and self._prunable:
            if not self._step_ready:
                # Caught when the training step is built, before any graph runs; the
                # in-graph check covers graphs traced earlier (it is ignored under XLA).
                raise ValueError(_CALLBACK_MESSAGE)
            self._training_update()
        return self.layer(inputs, *args, **kwargs)

    def apply_masks(self):
        """Sets every pruned weight to +0.0 where its mask is 0 (outside training)."""
        for weight, mask in zip(self._prunable, self.masks):
            weight.assign(_masked(weight, mask))

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> PruneLowMagnitude:
        """Creates the wrapper and its inner layer from the dict `get_config` returned."""
        if "go_backwards" in config:  # keras.layers.Bidirectional making its backward copy
            inner = config.get("layer", {})
            inner = inner.get("class_name", "LSTM") if isinstance(inner, dict) else "LSTM"
            raise ValueError(_inside_message("Bidirectional", inner))
        # keras.layers.Wrapper.from_config pops "layer"; leave the caller's dict intact.
        return super().from_config(dict(config), custom_objects=custom_objects)

    def get_config(self) -> dict:
        """Returns the serialized inner layer and schedule, and every pruning argument."""
        config = super().get_config()
        config.update(
            {
                "pruning_schedule": keras.saving.serialize_keras_object(self.pruning_schedule),
                "block_size": list(self.block_size),
                "block_pooling_type": self.block_pooling_type,
                "sparsity_m_by_n": (list(self.sparsity_m_by_n) if self.sparsity_m_by_n else None),
                "mask_type": self.mask_type,
                "seed": self.seed,
            }
        )
        return config
