"""Quantization-aware training (QAT) for Keras 3, ending in int8 TFLite and QDQ ONNX.

The names follow `tfmot.quantization.keras`: a tfmot user changes the import.

```python
qat = tfopt.quantization.quantize_model(model)
qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
qat.fit(x_train, y_train, epochs=1)
tfopt.export.to_tflite(qat, "model_int8.tflite")
```
"""

from tfopt.quantization import grid, quantizers, tflite_scheme  # the scheme registers layers
from tfopt.quantization.annotate import QuantizeAnnotate
from tfopt.quantization.callbacks import QATCallback
from tfopt.quantization.config import PRESETS, QuantizationConfig
from tfopt.quantization.export_info import (
    ActivationRange,
    QATExportInfo,
    QuantizedLayer,
    WeightGrid,
    export_info,
    export_trace,
    is_qat_model,
)
from tfopt.quantization.float_boundary import FloatBoundary
from tfopt.quantization.quantize import (
    quantize_annotate_layer,
    quantize_annotate_model,
    quantize_apply,
    quantize_model,
    quantize_scope,
)
from tfopt.quantization.quantize_config import LayerQuantizeConfig, QuantizeConfig
from tfopt.quantization.quantize_wrapper import QuantizeLayer, QuantizeWrapper
from tfopt.quantization.quantizers import (
    FixedRangeQuantizer,
    LastValueQuantizer,
    MovingAverageQuantizer,
    Quantizer,
)
from tfopt.quantization.registry import (
    KINDS,
    LayerSpec,
    register_layer,
    spec_for,
    supported_layers,
    unregister_layer,
)
from tfopt.quantization.shared_quantize import SharedQuantize
from tfopt.quantization.summaries import QuantizationSummaries

__all__ = [
    "KINDS",
    "PRESETS",
    "ActivationRange",
    "FixedRangeQuantizer",
    "FloatBoundary",
    "LastValueQuantizer",
    "LayerQuantizeConfig",
    "LayerSpec",
    "MovingAverageQuantizer",
    "QATCallback",
    "QATExportInfo",
    "QuantizationConfig",
    "QuantizationSummaries",
    "QuantizeAnnotate",
    "QuantizeConfig",
    "QuantizeLayer",
    "QuantizeWrapper",
    "QuantizedLayer",
    "Quantizer",
    "SharedQuantize",
    "WeightGrid",
    "export_info",
    "export_trace",
    "grid",
    "is_qat_model",
    "quantize_annotate_layer",
    "quantize_annotate_model",
    "quantize_apply",
    "quantize_model",
    "quantize_scope",
    "quantizers",
    "register_layer",
    "spec_for",
    "supported_layers",
    "tflite_scheme",
    "unregister_layer",
]
