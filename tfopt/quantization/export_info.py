"""What an exporter may know about a trained QAT model: the public seam to `tfopt.export`.

`tfopt.export` reads a QAT model only through this module: `is_qat_model`,
`export_info(model)` (a `QATExportInfo`: per-layer specs, activation ranges,
weight grids) and the `export_trace` context manager, which puts the model's
layers in the mode an exporter traces (ops the integer kernels compute natively
written as the converters read them). An exporter for a new format needs nothing
else.

Example:

```python
qat = tfopt.quantization.quantize_model(model)
qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
qat.fit(x, y, epochs=1)
info = tfopt.quantization.export_info(qat)
print(info.activation_bits, [w.layer for w in info.weights()])
with tfopt.quantization.export_trace(qat, "tflite"):
    out = qat(x[:1], training=False)
```
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from tfopt.quantization import _trace, grid, registry, tflite_scheme
from tfopt.quantization.quantize_wrapper import QuantizeLayer, QuantizeWrapper
from tfopt.quantization.quantizers import FixedRangeQuantizer, MovingAverageQuantizer


def is_qat_model(model) -> bool:
    """True when `model` holds fake-quantization layers made by tfopt.quantization.

    QAT models nested in another model count (a QAT model with a float head on
    top is a QAT model). A model that is only annotated (`quantize_annotate_layer`)
    and never went through `quantize_apply` is not.

    Args:
        model: any object; a Keras model is looked into.

    Returns:
        A bool.
    """
    return any(isinstance(layer, (QuantizeWrapper, QuantizeLayer)) for layer in leaf_layers(model))


def _constant_multiplies(model):
    """Names of the `ops.multiply` nodes of `model` (and nested models) with one tensor."""
    import keras

    for op in getattr(model, "operations", None) or []:
        if isinstance(op, keras.Model):
            yield from _constant_multiplies(op)
        elif (
            type(op).__name__ == "Multiply"
            and not isinstance(op, keras.layers.Layer)
            and any(len(node.input_tensors) < 2 for node in op._inbound_nodes)
        ):
            yield op.name


def leaf_layers(model) -> list:
    """The layers of `model` in order, nested models replaced by their own layers."""
    import keras

    found = []
    for layer in getattr(model, "layers", None) or []:
        if isinstance(layer, keras.Model):
            found.extend(leaf_layers(layer))
        else:
            found.append(layer)
    return found


@contextlib.contextmanager
def export_trace(model=None, target: str = "tflite"):
    """Puts QAT layers in export-trace mode for the block (this thread only).

    While an exporter traces a QAT model, ops the integer kernels compute natively
    (average pooling's rounding, a dilated Conv1D) are written as the converter of
    `target` reads them; for "onnx", narrow-range activation fake-quants are written
    as the same grid with one more code (tf2onnx converts only non-narrow ones).

    Example:

    ```python
    with tfopt.quantization.export_trace(qat, "onnx"):
        concrete = tf.function(lambda x: qat(x, training=False)).get_concrete_function(
            tf.TensorSpec((None, 8, 8, 1)))
    ```

    Args:
        model: the model being traced (unused but for the error; a float model
            needs no trace mode). Defaults to `None`.
        target: "tflite" or "onnx". Defaults to `"tflite"`.

    Raises:
        ValueError: an unknown `target`.
    """
    if target not in _trace.TARGETS:
        raise ValueError(
            f"Argument `target` must be one of {_trace.TARGETS}. Received: target={target!r}"
        )
    with _trace.trace(target):
        yield


@dataclasses.dataclass(frozen=True)
class ActivationRange:
    """The trained range of one activation quantizer.

    Attributes:
        layer: name of the QAT layer that owns it.
        min, max: the range (floats).
        count: batches observed in training (None for a fixed range).
        num_bits: 8 or 16.
        symmetric: zero point 0 (TensorRT, 16x8).
        narrow_range: the lowest code is unused.
        fixed: a constant range (softmax, sigmoid, tanh outputs).
    """

    layer: str
    min: float
    max: float
    count: float | None
    num_bits: int
    symmetric: bool
    narrow_range: bool
    fixed: bool

    @property
    def observed(self) -> bool:
        """True for a fixed range, or a trained one seen in at least one batch."""
        counted = self.count is None or self.count > 0
        return self.fixed or (counted and self.max > self.min)


@dataclasses.dataclass(frozen=True)
class QuantizedLayer:
    """One layer of a QAT model as the exporters see it.

    Attributes:
        name: the QAT model's layer name (e.g. "quant_conv").
        layer: the float Keras layer it runs (the wrapper's inner layer, or itself).
        quantized: True for QuantizeWrapper / QuantizeLayer layers.
        spec: the registry's `LayerSpec` of `layer`, or None.
        int16_calibrator: a 16x8 export must route it through TFLite's calibrator.
    """

    name: str
    layer: object
    quantized: bool
    spec: registry.LayerSpec | None
    int16_calibrator: bool


@dataclasses.dataclass(frozen=True)
class WeightGrid:
    """One fake-quantized weight as inference computes it (BatchNorm folded).

    Attributes:
        layer: name of the QAT layer (wrapper) that owns it.
        layer_class: class name of the float layer it belongs to.
        dense: the layer's kernel follows `dense_per_channel` (Dense-like).
        layout: where its output channels sit ("last", "depthwise", "transpose", "tensor").
        value: the fake-quantized value in the layer's own layout (float32 numpy).
        channels_last: the same with output channels on the last axis.
        min, max: the stored range (per channel or scalar; None if the quantizer
            has no min/max range, e.g. a custom one).
        num_bits, per_axis, symmetric, narrow_range: the quantizer's grid.
        folded_bias: the bias after BatchNorm folding, on its int32 grid, or None.
    """

    layer: str
    layer_class: str
    dense: bool
    layout: str
    value: np.ndarray
    channels_last: np.ndarray
    min: np.ndarray | None
    max: np.ndarray | None
    num_bits: int
    per_axis: bool
    symmetric: bool
    narrow_range: bool
    folded_bias: np.ndarray | None

    def scale_zero_point(self):
        """(scale, signed zero point) per channel (or scalar) of the nudged grid.

        Raises:
            ValueError: the quantizer has no min/max range.
        """
        if self.min is None:
            raise ValueError(
                f"The weight quantizer of layer {self.layer!r} has no min/max range "
                "(Quantizer.get_range returned None), so its grid is unknown."
            )
        return grid.nudged(self.min, self.max, self.num_bits, self.narrow_range)


class QATExportInfo:
    """A read-only description of a trained QAT model, for exporters.

    Attributes:
        layers: a `QuantizedLayer` per layer, in order.
        activations: the trained activation ranges.
        constant_multiplies: names of the `ops.multiply` nodes with a constant
            operand (MultiHeadAttention's 1/sqrt(key_dim) scaling): TF 2.21's
            converter cannot make their MUL int16 from fake-quant ops.

    Args:
        model: a QAT model (`is_qat_model(model)`).

    Raises:
        ValueError: `model` is not a QAT model.
    """

    def __init__(self, model):
        if not is_qat_model(model):
            raise ValueError(
                f"Model {getattr(model, 'name', model)!r} is not a QAT model from "
                "tfopt.quantization (quantize_model / quantize_apply)."
            )
        self._model = model
        self.model_name = model.name
        self.layers = tuple(self._describe(layer) for layer in leaf_layers(model))
        self.activations = tuple(self._activation_ranges())
        self.constant_multiplies = tuple(_constant_multiplies(model))

    @staticmethod
    def _describe(layer) -> QuantizedLayer:
        if isinstance(layer, QuantizeWrapper):
            inner, spec = layer.layer, layer.layer_spec
        else:
            inner, spec = layer, registry.spec_for(layer)
        return QuantizedLayer(
            name=layer.name,
            layer=inner,
            quantized=isinstance(layer, (QuantizeWrapper, QuantizeLayer)),
            spec=spec,
            int16_calibrator=tflite_scheme.int16_calibrator(inner, spec),
        )

    def _activation_ranges(self):
        for layer in leaf_layers(self._model):
            found = []
            if isinstance(layer, QuantizeLayer):
                found.append((layer.quantizer, layer._vars))
            elif isinstance(layer, QuantizeWrapper):
                found += [
                    (q, v)
                    for q, v in zip(layer._output_quantizers, layer._output_vars)
                    if isinstance(q, (MovingAverageQuantizer, FixedRangeQuantizer))
                ]
                if layer._pre_quantizer is not None:
                    found.append((layer._pre_quantizer, layer._pre_vars))
                found += [
                    (q, v)
                    for (_, q), v in zip(layer._activation_quantizers, layer._activation_vars)
                    if isinstance(q, MovingAverageQuantizer)
                ]
            for quantizer, qvars in found:
                fixed = isinstance(quantizer, FixedRangeQuantizer)
                found_range = quantizer.get_range(qvars)
                if found_range is None:  # a custom quantizer: the converter reads its op
                    continue
                low, high = found_range
                count = qvars.get("count")
                yield ActivationRange(
                    layer=layer.name,
                    min=float(np.asarray(low)),
                    max=float(np.asarray(high)),
                    count=None if fixed or count is None else float(np.asarray(count)),
                    num_bits=quantizer.num_bits,
                    symmetric=bool(getattr(quantizer, "symmetric", False)),
                    narrow_range=bool(quantizer.narrow_range),
                    fixed=fixed,
                )

    @property
    def activation_bits(self) -> int:
        """16 if the activations are 16-bit (TFLite's 16x8 mode), else 8.

        Raises:
            ValueError: 16-bit and 8-bit activation quantizers are mixed.
        """
        bits = {a.num_bits for a in self.activations}
        if 16 in bits and bits != {16}:
            raise ValueError(
                f"QAT model {self.model_name!r} mixes 16-bit and {min(bits)}-bit activation "
                "quantizers; TFLite runs one activation type per model. Quantize it with one "
                "config: config='tflite16x8' (16x8) or config='tflite' (int8)."
            )
        return 16 if 16 in bits else 8

    @property
    def symmetric_activations(self) -> bool:
        """True when any trained activation range is symmetric (zero point 0)."""
        return any(a.symmetric for a in self.activations if not a.fixed)

    def unobserved(self) -> list[str]:
        """Names of the layers with an activation range never observed in training."""
        return [a.layer for a in self.activations if not a.observed]

    def check_ranges_observed(self) -> None:
        """Raises unless every activation range was observed in training at least once.

        Raises:
            ValueError: naming the layers whose ranges were never observed.
        """
        never = self.unobserved()
        if never:
            shown = ", ".join(repr(n) for n in never[:5]) + (" ..." if len(never) > 5 else "")
            raise ValueError(
                f"QAT model {self.model_name!r} has activation ranges that were never observed "
                f"({len(never)} quantizers: {shown}), so its int8 export would compute zeros. "
                "Train it first (even one epoch of `fit`), or run it on data with "
                "`model(x, training=True)` to calibrate the ranges."
            )

    def weights(self) -> list[WeightGrid]:
        """Every fake-quantized weight, as inference computes it (runs the quantizers).

        Returns:
            A list of `WeightGrid`, in layer order.
        """
        out = []
        for layer in leaf_layers(self._model):
            if not isinstance(layer, QuantizeWrapper):
                continue
            dense = bool(getattr(layer.quantize_config, "dense", False))
            for entry in layer.quantized_weights():
                q = entry["quantizer"]
                out.append(
                    WeightGrid(
                        layer=layer.name,
                        layer_class=type(layer.layer).__name__,
                        dense=dense,
                        layout=entry["layout"],
                        value=entry["value"],
                        channels_last=entry["channels_last"],
                        min=entry["min"],
                        max=entry["max"],
                        num_bits=int(getattr(q, "num_bits", 8)),
                        per_axis=bool(getattr(q, "per_axis", False)),
                        symmetric=bool(getattr(q, "symmetric", False)),
                        narrow_range=bool(getattr(q, "narrow_range", False)),
                        folded_bias=entry["folded_bias"],
                    )
                )
        return out

    def weight_quantizers(self) -> list[tuple[str, bool, int, bool, bool, bool]]:
        """(layer, dense, num_bits, per_axis, symmetric, narrow_range) of every weight quantizer.

        Read off the quantizers' attributes, without running them.
        """
        out = []
        for layer in leaf_layers(self._model):
            if not isinstance(layer, QuantizeWrapper):
                continue
            dense = bool(getattr(layer.quantize_config, "dense", False))
            for _, q in layer._weight_quantizers:
                out.append(
                    (
                        layer.layer.name,
                        dense,
                        int(getattr(q, "num_bits", 8)),
                        bool(getattr(q, "per_axis", False)),
                        bool(getattr(q, "symmetric", False)),
                        bool(getattr(q, "narrow_range", False)),
                    )
                )
        return out


def export_info(model) -> QATExportInfo:
    """The `QATExportInfo` of a trained QAT model.

    Args:
        model: a QAT model from `quantize_model` / `quantize_apply`.

    Returns:
        A `QATExportInfo`.

    Raises:
        ValueError: `model` is not a QAT model.
    """
    return QATExportInfo(model)
