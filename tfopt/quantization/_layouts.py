"""Where a kernel's output channels sit, and moving them to the last axis and back.

Per-channel fake-quant ops take the channel on the last axis; kernels keep it
elsewhere: "depthwise" kernels (..., in, multiplier) hold in x multiplier output
channels on their last two axes, "transpose" kernels (..., out, in) on the second
to last. "tensor" weights have one range for the whole tensor.
"""

from __future__ import annotations

import tensorflow as tf

LAYOUTS = ("last", "depthwise", "transpose", "tensor")


def to_channels_last(value, layout):
    """The kernel with its output channels on the last axis."""
    if layout == "depthwise":  # (..., in, multiplier) -> (..., in * multiplier)
        shape = tf.shape(value)
        return tf.reshape(value, tf.concat([shape[:-2], [shape[-2] * shape[-1]]], 0))
    if layout == "transpose":  # (..., out, in) -> (..., in, out)
        perm = list(range(len(value.shape)))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        return tf.transpose(value, perm)
    return value


def from_channels_last(value, layout, shape):
    """Inverse of `to_channels_last`; `shape` is the kernel's own shape."""
    if layout == "depthwise":
        return tf.reshape(value, shape)
    if layout == "transpose":
        return to_channels_last(value, "transpose")
    return value


def channels_last_shape(shape, layout) -> tuple:
    """The static shape `to_channels_last` gives a kernel of `shape`."""
    shape = tuple(shape)
    if layout == "depthwise":
        return (*shape[:-2], shape[-2] * shape[-1])
    if layout == "transpose":
        return (*shape[:-2], shape[-1], shape[-2])
    return shape


def scale_channels(kernel, scale, layout):
    """kernel * scale, `scale` indexed by the kernel's output channel."""
    if layout == "depthwise":
        return kernel * tf.reshape(scale, kernel.shape[-2:])
    if layout == "transpose":
        return kernel * scale[:, None]
    return kernel * scale
