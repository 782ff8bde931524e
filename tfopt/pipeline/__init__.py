"""`tfopt.optimize`: from a trained model to verified device files in one call.

A recipe of stages (distill -> prune -> qat or ptq -> export), each with its own
budget and optimizer, checked before any training; the result holds each stage's
model and metrics, each exported file with its parity and latency, and the run's
reports (`report.json`, `report.md`, PNG plots) in the output directory.

```python
from tfopt.pipeline import ExportStage, PruneStage, Recipe

recipe = Recipe([PruneStage(sparsity=0.8, epochs=2), ExportStage(formats=["tflite"])])
recipe.to_dict()["stages"][0]["sparsity"]    # 0.8: recipes are plain data
```
"""

import importlib

from tfopt.pipeline.recipe import Recipe
from tfopt.pipeline.stages import (
    DistillStage,
    ExportStage,
    PruneStage,
    PTQStage,
    QATStage,
    TrainingStage,
)

# Loaded on first use: recipes are plain data, and reading one loads no TensorFlow.
_LAZY = {
    "optimize": "run",
    "OptimizeResult": "result",
    "StageResult": "result",
    "ExportedFile": "result",
}

__all__ = [
    "DistillStage",
    "ExportStage",
    "ExportedFile",
    "OptimizeResult",
    "PTQStage",
    "PruneStage",
    "QATStage",
    "Recipe",
    "StageResult",
    "TrainingStage",
    "optimize",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
