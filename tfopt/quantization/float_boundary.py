"""FloatBoundary: where the quantized part of a graph meets a layer left in float."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfopt.quantization import _trace


@keras.saving.register_keras_serializable(package="tfopt")
class FloatBoundary(keras.layers.Layer):
    """Keeps the layers on its float side float in a TFLite file.

    In Keras it passes its input through unchanged. `quantize_apply` puts one
    in front of every layer left unannotated whose input is quantized, and one
    after such a layer whose output a quantized layer reads. Without them the
    TFLite converter carries int8 into any op whose output scale it can infer:
    TANH, LOGISTIC and SOFTMAX have fixed output scales and MEAN, RESHAPE and the
    like keep their input's, so an unannotated `Activation("tanh")` after an int8
    conv ran as an int8 TANH, and a LayerNormalization left float ran its first
    MEAN in int8. While a TFLite export traces it, it writes a cast to float64
    and back (exact), which the converter neither quantizes nor looks through.

    Example:

    ```python
    x = tfopt.quantization.FloatBoundary()(keras.Input((8,)))
    ```

    Args:
        **kwargs: Layer arguments (`name`...).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # an identity: a padding mask passes on unchanged

    def call(self, inputs):
        """Returns `inputs` (a float64 round trip while a TFLite export traces it)."""
        if _trace.target() == "tflite":
            return tf.cast(tf.cast(inputs, tf.float64), inputs.dtype)
        return inputs

    def compute_output_shape(self, input_shape):
        """Returns `input_shape`."""
        return input_shape
