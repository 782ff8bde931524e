"""tfopt: make Keras 3 models small and fast for deployment.

`import tfopt` is cheap: it imports no TensorFlow, tfmot, tf_keras, tf2onnx or
onnxruntime. Subpackages load on first attribute access:

```python
import tfopt
tfopt.export.to_tflite(model, "model.tflite")
```

`tfopt.optimize(model, train_data, val_data, recipe)` (from `tfopt.pipeline`)
runs a recipe of stages, distill -> prune -> QAT or PTQ -> export, in one call.

Saved models that hold tfopt layers (pruning and QAT wrappers, quantizers, a
`Distiller` and its losses, schedules) load with `keras.saving.load_model` after
`import tfopt`, in any order with `import keras`: tfopt registers its classes with
Keras as soon as Keras is imported (right away if it already is).

TensorFlow 2.19+ logs a few lines when it loads (CUDA probing, oneDNN) before it
reads TF_CPP_MIN_LOG_LEVEL. When Keras (and with it TensorFlow) is first imported
after `import tfopt`, those lines follow the level too: with
`os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"` set first, the start-up is silent.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"

# Subpackages, imported on first use (`tfopt.export`, ...). Each one that lands adds itself.
_SUBMODULES = (
    "datasets",
    "distillation",
    "distribute",
    "export",
    "pipeline",
    "pruning",
    "quantization",
    "report",
)

# Functions of subpackages offered at the top level, imported on first use.
_FUNCTIONS = {"optimize": "pipeline"}

# The subpackages whose classes Keras must know by name to load a saved model.
_SAVEABLES = ("pruning", "quantization", "distillation")

__all__ = ["__version__", *_SUBMODULES, *_FUNCTIONS]


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    if name in _FUNCTIONS:
        function = getattr(importlib.import_module(f"{__name__}.{_FUNCTIONS[name]}"), name)
        globals()[name] = function
        return function
    raise AttributeError(f"module 'tfopt' has no attribute '{name}'")


def __dir__():
    return sorted(__all__)


def _register_saveables() -> None:
    """Imports the subpackages that register tfopt's classes with Keras."""
    for name in _SAVEABLES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except Exception as err:  # never break the user's `import keras`
            warnings.warn(
                f"tfopt could not register its {name} classes with Keras ({err!r}); "
                f"saved models using them need `import tfopt.{name}` first.",
                stacklevel=2,
            )


class _RegisterAfterKerasImport(importlib.abc.MetaPathFinder):
    """Runs `_register_saveables` right after `keras` is first imported (once)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_then_register(module):
            from tfopt import _native_log

            # Keras loads TensorFlow here, whose libraries log a few lines before
            # TensorFlow reads TF_CPP_MIN_LOG_LEVEL: they follow that level too.
            level = 0 if "tensorflow" in sys.modules else _native_log.min_log_level()
            with _native_log.filtered_stderr(level, survive_abort=True):
                exec_module(module)
            _register_saveables()

        loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules:
    _register_saveables()
elif not any(isinstance(f, _RegisterAfterKerasImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKerasImport())
