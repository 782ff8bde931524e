"""What builds, quantizes and prunes on each side: tfopt on Keras 3, tfmot on tf_keras.

Both sides give `training` and `masks` the same calls: `build(spec)`, `quantize(model)`,
`prune(model)` -> (pruned model, callbacks) and `mask_update(model)` -> (a callable
running one whole-model mask update, prunable parameter count). Built in the process
that measures; the modules are imported in `__init__`.
"""

from __future__ import annotations

from benchmarks.scale.budget import CLASSES, SEED

# The training figures' pruning schedule (tfmot's defaults for frequency: a mask update
# every 100 steps; the per-update cost is measured on its own by `masks`).
PRUNING_SCHEDULE = {
    "initial_sparsity": 0.0,
    "final_sparsity": 0.8,
    "begin_step": 0,
    "end_step": 1000,
    "frequency": 100,
}
# The mask-update timing's schedule: every step prunes, so every call updates the masks.
MASK_SPARSITY = 0.5


def build(keras_module, spec):
    """`spec` (a `budget.ModelSpec`) from `keras_module.applications`, seeded."""
    keras_module.utils.set_random_seed(SEED)
    shape = (spec.size, spec.size, 3)
    common = {"input_shape": shape, "weights": None, "classes": CLASSES}
    common["classifier_activation"] = None
    if spec.kind == "MobileNetV2":
        return keras_module.applications.MobileNetV2(alpha=spec.alpha, **common)
    if spec.kind == "ResNet50":
        return keras_module.applications.ResNet50(**common)
    raise ValueError(f"Unknown model kind {spec.kind!r}; expected MobileNetV2 or ResNet50.")


def _timed_graph(tf, body):
    """A callable running `body` as one tf.function and waiting for its result."""
    function = tf.function(body)

    def call():
        function().numpy()

    return call


class TfoptSide:
    """tfopt.quantization.quantize_model and tfopt.pruning.prune_low_magnitude."""

    name = "tfopt"

    def __init__(self):
        import keras
        import tensorflow as tf

        import tfopt

        self.keras, self._tf, self._tfopt = keras, tf, tfopt

    def build(self, spec):
        return build(self.keras, spec)

    def quantize(self, model):
        return self._tfopt.quantization.quantize_model(model)

    def prune(self, model):
        pruning = self._tfopt.pruning
        schedule = pruning.PolynomialDecay(**PRUNING_SCHEDULE)
        pruned = pruning.prune_low_magnitude(model, pruning_schedule=schedule)
        return pruned, [pruning.UpdatePruningStep()]

    def mask_update(self, model):
        """One mask update of every wrapper, as in training: `_training_update`, the
        body of `PruneLowMagnitude.call` in a training step (schedule check, new masks,
        masked weights, step + 1), under a schedule that prunes at every step."""
        pruning = self._tfopt.pruning
        schedule = pruning.ConstantSparsity(MASK_SPARSITY, begin_step=0, frequency=1)
        pruned = pruning.prune_low_magnitude(model, pruning_schedule=schedule)
        wrappers = [la for la in pruned.layers if isinstance(la, pruning.PruneLowMagnitude)]
        for wrapper in wrappers:
            wrapper.pruning_step.assign(0)  # what UpdatePruningStep does at train begin

        def body():
            for wrapper in wrappers:
                wrapper._training_update()
            return self._tf.constant(0)

        count = sum(int(w.numpy().size) for wr in wrappers for w in wr.pruned_weights)
        return _timed_graph(self._tf, body), count


class TfmotSide:
    """tfmot's quantize_model and prune_low_magnitude on tf_keras models."""

    name = "tfmot"

    def __init__(self):
        import tensorflow as tf
        import tensorflow_model_optimization as tfmot
        import tf_keras

        self.keras, self._tf, self._tfmot = tf_keras, tf, tfmot

    def build(self, spec):
        return build(self.keras, spec)

    def quantize(self, model):
        return self._tfmot.quantization.keras.quantize_model(model)

    def prune(self, model):
        sparsity = self._tfmot.sparsity.keras
        schedule = sparsity.PolynomialDecay(**PRUNING_SCHEDULE)
        pruned = sparsity.prune_low_magnitude(model, pruning_schedule=schedule)
        return pruned, [sparsity.UpdatePruningStep()]

    def mask_update(self, model):
        """One mask update of every wrapper, as in training: the wrapper's
        `pruning_obj.conditional_mask_update()` then `weight_mask_op()` (what its
        `call` adds as updates in a training step), under a schedule that prunes at
        every step."""
        from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

        sparsity = self._tfmot.sparsity.keras
        schedule = sparsity.ConstantSparsity(MASK_SPARSITY, begin_step=0, frequency=1)
        pruned = sparsity.prune_low_magnitude(model, pruning_schedule=schedule)
        wrappers = [
            la for la in pruned.layers if isinstance(la, pruning_wrapper.PruneLowMagnitude)
        ]
        for wrapper in wrappers:
            wrapper.pruning_step.assign(1)  # tfmot's first training step

        def body():
            for wrapper in wrappers:
                update = wrapper.pruning_obj.conditional_mask_update()
                with self._tf.control_dependencies([update]):
                    wrapper.pruning_obj.weight_mask_op()
            return self._tf.constant(0)

        count = sum(int(w.numpy().size) for wr in wrappers for w, _, _ in wr.pruning_vars)
        return _timed_graph(self._tf, body), count


SIDES = {"tfopt": TfoptSide, "tfmot": TfmotSide}
