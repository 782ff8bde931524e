"""A channels-last Conv1D computed as TF lowers it: ExpandDims -> Conv2D -> Squeeze.

The TFLite converter folds a per-channel fake-quant into CONV_2D only when it
feeds the Conv2D directly (on a Conv1D's 3-D kernel it fails to convert), so the
QAT wrapper runs a Conv1D this way, on a fake-quantized 4-D kernel.
"""

from __future__ import annotations

import tensorflow as tf

from tfopt.quantization import _trace


def conv1d_as_conv2d(layer, inputs, kernel, bias):
    """`layer`'s Conv1D on `inputs` with a (1, width, in, out) `kernel` and `bias`.

    Training and Keras inference run dilations as Keras does (space-to-batch: the
    CPU Conv2D has no dilated gradient); the export trace writes one dilated Conv2D,
    which the converter maps to CONV_2D's dilation factor (it does not fuse the
    space-to-batch form around a quantized kernel).
    """
    x = tf.convert_to_tensor(inputs)
    padding = layer.padding.upper()
    if padding == "CAUSAL":
        left = layer.dilation_rate[0] * (layer.kernel_size[0] - 1)
        x = tf.pad(x, [[0, 0], [left, 0], [0, 0]])
        padding = "VALID"
    conv = tf.nn.conv2d if _trace.tracing() else tf.nn.convolution
    y = conv(
        tf.expand_dims(x, 1),
        tf.cast(kernel, x.dtype),
        strides=(1, layer.strides[0]),
        padding=padding,
        dilations=(1, layer.dilation_rate[0]),
    )
    y = tf.squeeze(y, 1)
    if bias is not None:
        y = tf.nn.bias_add(y, tf.cast(bias, y.dtype))
    return layer.activation(y)
