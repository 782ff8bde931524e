"""Tables, plots and sensitivity analysis of compressed models.

Plots return `matplotlib.figure.Figure` objects (matplotlib is imported when a
plot is made, not with this package):

```python
figure = tfopt.report.plot_pareto([                   # accuracy against file size
    {"name": "float32", "accuracy": 0.978, "size_bytes": 195024},
    {"name": "int8", "accuracy": 0.975, "size_bytes": 57496},
])
sensitivity = tfopt.report.quantization_sensitivity(model, (x_test, y_test))
```
"""

from tfopt.report.plots import (
    pareto_front,
    plot_layer_sparsity,
    plot_pareto,
    plot_sparsity_schedule,
)
from tfopt.report.quantization_error import plot_quantization_error, quantization_error, sqnr_db
from tfopt.report.sensitivity import Sensitivity
from tfopt.report.sensitivity_analysis import pruning_sensitivity, quantization_sensitivity
from tfopt.report.table import format_bytes, render_table

__all__ = [
    "Sensitivity",
    "format_bytes",
    "pareto_front",
    "plot_layer_sparsity",
    "plot_pareto",
    "plot_quantization_error",
    "plot_sparsity_schedule",
    "pruning_sensitivity",
    "quantization_error",
    "quantization_sensitivity",
    "render_table",
    "sqnr_db",
]
