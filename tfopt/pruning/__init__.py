"""Magnitude pruning for Keras 3 with tfmot's API (`tfmot.sparsity.keras` -> `tfopt.pruning`).

```python
pruned = tfopt.pruning.prune_low_magnitude(model, tfopt.pruning.ConstantSparsity(0.8, 0))
pruned.fit(x, y, callbacks=[tfopt.pruning.UpdatePruningStep()])
small = tfopt.pruning.strip_pruning(pruned)
```
"""

from tfopt.pruning.prune import prune_low_magnitude, strip_pruning
from tfopt.pruning.prune_registry import (
    PrunableLayer,
    register_prunable,
    unregister_prunable,
)
from tfopt.pruning.pruning_callbacks import PruningSummaries, UpdatePruningStep
from tfopt.pruning.pruning_schedule import ConstantSparsity, PolynomialDecay, PruningSchedule
from tfopt.pruning.pruning_wrapper import PruneLowMagnitude
from tfopt.pruning.report import SparsityReport, sparsity_report

__all__ = [
    "ConstantSparsity",
    "PolynomialDecay",
    "PrunableLayer",
    "PruneLowMagnitude",
    "PruningSchedule",
    "PruningSummaries",
    "SparsityReport",
    "UpdatePruningStep",
    "prune_low_magnitude",
    "register_prunable",
    "sparsity_report",
    "strip_pruning",
    "unregister_prunable",
]
