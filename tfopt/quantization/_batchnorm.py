"""Folding a BatchNormalization into the conv/dense before it, for QAT (Jacob et al. 2018).

"Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference" (Jacob et al., CVPR 2018, section 3.2): the kernel is always folded with
the moving statistics (what inference and the exporters use); while training with
BN statistics not frozen, the output is corrected to the batch statistics:
y = conv_q(x) * sigma_moving / sigma_batch + bias_batch, and the batch statistics
update the moving ones.
"""

from __future__ import annotations

import tensorflow as tf

from tfopt.quantization._layouts import scale_channels


def fold(layer, bn, kernel, layout, bn_frozen, inputs, training):
    """(kernel, bias, correction) of `layer` with `bn` folded in.

    Args:
        layer: the conv/dense layer (its `bias`, `use_bias`; called on `inputs`
            for the batch statistics while training).
        bn: the BatchNormalization layer.
        kernel: the layer's float kernel value (pruned zeros applied).
        layout: the kernel's layout (where its output channels sit).
        bn_frozen: 0/1 variable: use the moving statistics while training too.
        inputs: the layer's inputs (read only while training).
        training: a Python bool.

    Returns:
        (folded kernel, folded bias, correction or None): `correction` multiplies
        the conv output while training with live batch statistics.
    """
    gamma = bn.gamma if bn.scale else 1.0
    beta = bn.beta if bn.center else 0.0
    correction = None
    if training:
        y = tf.stop_gradient(tf.cast(layer(inputs), tf.float32))
        axes = list(range(len(y.shape) - 1))
        mean, variance = tf.nn.moments(y, axes=axes)
        keep = bn.momentum + (1.0 - bn.momentum) * bn_frozen
        bn.moving_mean.assign(keep * bn.moving_mean + (1.0 - keep) * mean)
        bn.moving_variance.assign(keep * bn.moving_variance + (1.0 - keep) * variance)
    bias = layer.bias if _has_bias(layer) else 0.0
    scale = gamma * tf.math.rsqrt(bn.moving_variance + bn.epsilon)
    kernel = scale_channels(kernel, scale, layout)
    folded_bias = (bias - bn.moving_mean) * scale + beta
    if training:
        batch_scale = gamma * tf.math.rsqrt(variance + bn.epsilon)
        frozen = bn_frozen
        ratio = tf.sqrt(bn.moving_variance + bn.epsilon) * tf.math.rsqrt(variance + bn.epsilon)
        correction = frozen + (1.0 - frozen) * ratio
        batch_bias = (bias - mean) * batch_scale + beta
        folded_bias = frozen * folded_bias + (1.0 - frozen) * batch_bias
    return kernel, folded_bias, correction


def _has_bias(layer) -> bool:
    return bool(getattr(layer, "use_bias", False)) and getattr(layer, "bias", None) is not None


def check_fold(wrapper, kernel_variable, layout: str, name: str) -> None:
    """Checks that folding the wrapper's BatchNormalization computes what the float
    layer followed by that BatchNormalization computes (inference mode).

    A `LayerSpec` layout that puts the output channels on the wrong axis of a square
    kernel folds each channel's scale into the wrong weights without any shape
    error: this runs both on a random batch and compares. Skipped when the input
    shape is not fixed apart from the batch.

    Raises:
        ValueError: the two differ (a wrong layout in the layer's registration).
    """
    import keras
    import numpy as np

    layer, bn = wrapper.layer, wrapper.batchnorm
    shape = getattr(wrapper, "_build_shapes_dict", None) or {}
    shape = next(iter(shape.values()), None)
    if not shape or any(d is None for d in tuple(shape)[1:]):
        return
    x = np.random.default_rng(0).standard_normal((2, *tuple(shape)[1:])).astype("float32")
    reference = np.asarray(bn(layer(x), training=False))
    kernel, bias, _ = fold(layer, bn, tf.convert_to_tensor(kernel_variable), layout, 1.0, x, False)
    mapping = [(kernel_variable, kernel)]
    if _has_bias(layer):
        mapping.append((layer.bias, bias))
        bias = 0.0
    with keras.StatelessScope(state_mapping=mapping):
        folded = np.asarray(layer(x) + bias)
    peak = max(1.0, float(np.max(np.abs(reference))))
    worst = float(np.max(np.abs(folded - reference)))
    if not worst <= 1e-3 * peak:
        raise ValueError(
            f"Folding BatchNormalization {bn.name!r} into layer {layer.name!r} "
            f"({type(layer).__name__}) changes what the model computes (largest difference "
            f"{worst:.3g} on outputs up to {peak:.3g}): the layout {layout!r} of its weight "
            f"{name!r} does not put the output channels where the BatchNormalization "
            "normalizes them. Fix the layout in the class's LayerSpec "
            "(tfopt.quantization.register_layer(..., override=True)), or register it with "
            "folds_batchnorm=False."
        )
