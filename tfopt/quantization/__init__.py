"""Quantization-aware training (QAT) for Keras 3, ending in int8 TFLite and QDQ ONNX.

The names follow `tfmot.quantization.keras`: a tfmot user changes the import.

```python
qat = tfopt.quantization.quantize_model(model)
qat.compile(...); qat.fit(...)
tfopt.export.to_tflite(qat, "model_int8.tflite")
```
"""

from tfopt.quantization.annotate import QuantizeAnnotate
from tfopt.quantization.callbacks import QATCallback
from tfopt.quantization.config import PRESETS, QuantizationConfig
from tfopt.quantization.quantize import (
    is_qat_model,
    quantize_annotate_layer,
    quantize_annotate_model,
    quantize_apply,
    quantize_model,
)
from tfopt.quantization.quantize_config import LayerQuantizeConfig, QuantizeConfig
from tfopt.quantization.quantize_wrapper import QuantizeLayer, QuantizeWrapper
from tfopt.quantization.quantizers import (
    FixedRangeQuantizer,
    LastValueQuantizer,
    MovingAverageQuantizer,
    Quantizer,
)
from tfopt.quantization.registry import supported_layers

__all__ = [
    "PRESETS",
    "FixedRangeQuantizer",
    "LastValueQuantizer",
    "LayerQuantizeConfig",
    "MovingAverageQuantizer",
    "QATCallback",
    "QuantizationConfig",
    "QuantizeAnnotate",
    "QuantizeConfig",
    "QuantizeLayer",
    "QuantizeWrapper",
    "Quantizer",
    "is_qat_model",
    "quantize_annotate_layer",
    "quantize_annotate_model",
    "quantize_apply",
    "quantize_model",
    "supported_layers",
]
