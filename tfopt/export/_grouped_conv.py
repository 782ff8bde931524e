"""Grouped convolutions traced without XLA, for tf2onnx.

Keras 3's TensorFlow backend runs a grouped convolution (`Conv2D(groups=...)`,
e.g. keras.applications.ConvNeXt's 7x7 depthwise convs) inside a
`tf.function(jit_compile=True)`, because TensorFlow's CPU kernel cannot run it.
tf2onnx keeps such a function as an opaque call it cannot convert, so ONNX files
of these models failed. While an ONNX trace is active (`onnx_trace()`), the
backend's `conv` writes a grouped convolution as the plain grouped Conv2D op
inside that function, which tf2onnx converts to an ONNX Conv with `group` set (and
onnxruntime runs); the trace only builds the graph, TensorFlow never runs it on
the CPU (a grouped Conv3D, which tf2onnx converts without its groups, is written
as one convolution per group and a concat). Outside the trace, and in other
threads, Keras's own `conv` runs unchanged.
"""

from __future__ import annotations

import contextlib
import threading

_STATE = threading.local()
_LOCK = threading.Lock()
_INSTALLED = {"count": 0, "original": None}


def _grouped(original):
    import tensorflow as tf
    from keras.src import backend
    from keras.src.backend.tensorflow.nn import _convert_data_format

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        if not getattr(_STATE, "active", False):
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        fmt = backend.standardize_data_format(data_format)
        channels = inputs.shape[-1 if fmt == "channels_last" else 1]
        if channels is None or channels == kernel.shape[-2]:
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        tf_format = _convert_data_format(data_format, len(inputs.shape))
        if len(inputs.shape) == 5:  # tf2onnx's Conv3D takes no group: one conv per group
            axis = -1 if fmt == "channels_last" else 1
            groups = int(channels) // int(kernel.shape[-2])
            pairs = zip(tf.split(inputs, groups, axis=axis), tf.split(kernel, groups, axis=-1))
            return tf.concat(
                [
                    tf.nn.convolution(x, k, strides, padding.upper(), tf_format, dilation_rate)
                    for x, k in pairs
                ],
                axis=axis,
            )
        # The graph op Keras's XLA function wraps: one grouped Conv2D, which tf2onnx
        # writes as an ONNX Conv with its `group` (never executed here on the CPU).
        return tf.nn.convolution(
            inputs,
            kernel,
            strides,
            padding.upper(),
            data_format=tf_format,
            dilations=dilation_rate,
        )

    return conv


@contextlib.contextmanager
def onnx_trace():
    """Within the block (this thread), Keras writes grouped convolutions as ops tf2onnx
    converts (see the module docstring)."""
    from keras.src.backend.tensorflow import nn as tf_nn

    with _LOCK:
        if _INSTALLED["count"] == 0:
            _INSTALLED["original"] = tf_nn.conv
            tf_nn.conv = _grouped(tf_nn.conv)
        _INSTALLED["count"] += 1
    previous = getattr(_STATE, "active", False)
    _STATE.active = True
    try:
        yield
    finally:
        _STATE.active = previous
        with _LOCK:
            _INSTALLED["count"] -= 1
            if _INSTALLED["count"] == 0:
                tf_nn.conv = _INSTALLED["original"]
