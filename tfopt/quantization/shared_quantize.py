"""SharedQuantize: several tensors fake-quantized on one range (a Concatenate's inputs)."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfopt.quantization import quantizers
from tfopt.quantization.quantize_wrapper import QuantizeLayer, _add_flags, _flags


@keras.saving.register_keras_serializable(package="tfopt")
class SharedQuantize(QuantizeLayer):
    """One layer, called once per tensor, that puts every tensor on one shared grid.

    TFLite's int8 CONCATENATION takes its inputs on the output's scale: an input
    on another scale gets a requantize op (QUANTIZE int8 -> int8) in the file.
    That costs time, and XNNPACK's requantize rounds differently from an exact
    one (measured on a U-Net skip: 2.3% of elements one code off, against 0.009%
    for LiteRT's built-in kernel), so a Keras model cannot predict it.
    `quantize_model` therefore quantizes the tensors that meet in a Concatenate
    (a skip connection that also feeds other layers, the upsampled branch, the
    concat's output) with one `SharedQuantize`: the layer is called once per
    tensor with `member=i`; each call observes its own tensor's batch range (a
    moving average per member, as `MovingAverageQuantizer`) and fake-quantizes
    on the union of all members' ranges, which is what `min`/`max` hold.

    Example:

    ```python
    shared = tfopt.quantization.SharedQuantize(members=2)
    a, b = keras.Input((4,)), keras.Input((4,))
    out = keras.layers.Concatenate()([shared(a, member=0), shared(b, member=1)])
    ```

    Args:
        members: how many tensors share the range (calls with `member` 0 to
            `members - 1`); an int >= 1.
        quantizer: a `MovingAverageQuantizer`. Defaults to `None` (8-bit
            asymmetric moving average).
        **kwargs: Layer arguments (`name`...).

    Raises:
        ValueError: `members` is not an int >= 1, or `quantizer` is not a
            `MovingAverageQuantizer`.
    """

    def __init__(self, members: int = 1, quantizer=None, **kwargs):
        super().__init__(quantizer, **kwargs)
        if not isinstance(members, int) or isinstance(members, bool) or members < 1:
            raise ValueError(
                f"Argument `members` must be an int >= 1. Received: members={members!r}"
            )
        if not isinstance(self.quantizer, quantizers.MovingAverageQuantizer):
            raise ValueError(
                "Argument `quantizer` must be a MovingAverageQuantizer (the shared range is the "
                f"union of moving averages). Received: {type(self.quantizer).__name__}"
            )
        self.members = members

    def build(self, input_shape=None):
        """Creates the QAT flags, each member's range and the shared (union) range."""
        _add_flags(self)
        self._member_vars = [
            self.quantizer.build((), f"member_{i}", self) for i in range(self.members)
        ]
        self._vars = self.quantizer.build((), "shared", self)
        self.built = True

    def _union(self):
        """(min, max, count) over the members' ranges; count adds the observed batches."""
        lows = [tf.convert_to_tensor(v["min"]) for v in self._member_vars]
        highs = [tf.convert_to_tensor(v["max"]) for v in self._member_vars]
        counts = [tf.convert_to_tensor(v["count"]) for v in self._member_vars]
        return tf.reduce_min(lows), tf.reduce_max(highs), tf.add_n(counts)

    def __call__(self, *args, member=0, **kwargs):
        """Calls the layer for member `member` (checked: an int in [0, members))."""
        if not isinstance(member, int) or isinstance(member, bool):
            member = -1
        if not 0 <= member < self.members:
            raise ValueError(
                f"Argument `member` must be an int in [0, {self.members}). "
                f"Received: member={member!r}"
            )
        return super().__call__(*args, member=member, **kwargs)

    def call(self, inputs, member=0, training=None):
        """Fake-quantizes `inputs` (member `member`) on the shared range.

        While training, the member's range first observes `inputs` (unless the
        ranges are frozen) and the shared range is set to the union.
        """
        training = bool(training)
        flags = _flags(self, training)
        if not training:
            return self.quantizer(inputs, False, self._vars, **flags)
        # The member's moving average (its fake-quantized output is not used).
        self.quantizer(inputs, True, self._member_vars[member], **flags)
        low, high, count = self._union()
        self._vars["min"].assign(low)
        self._vars["max"].assign(high)
        self._vars["count"].assign(count)
        q = self.quantizer
        quantized = quantizers.fake_quant(inputs, low, high, q.num_bits, q.narrow_range, False)
        return quantizers._select(flags["quantize_active"], quantized, inputs)

    def get_config(self):
        """Returns the base config plus `members`."""
        config = super().get_config()
        config["members"] = self.members
        return config
