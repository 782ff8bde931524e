"""tfopt: make Keras 3 models small and fast for deployment.

`import tfopt` is cheap: it imports no TensorFlow, tfmot, tf_keras, tf2onnx or
onnxruntime. Subpackages load on first attribute access:

```python
import tfopt
tfopt.export.to_tflite(model, "model.tflite")
```
"""

import importlib

__version__ = "0.1.0"

# Subpackages, imported on first use (`tfopt.export`, ...). Each one that lands adds itself.
_SUBMODULES = (
    "datasets",
    "distillation",
    "export",
    "pruning",
    "quantization",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'tfopt' has no attribute '{name}'")


def __dir__():
    return sorted(__all__)
