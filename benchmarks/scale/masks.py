"""The cost of one pruning mask update against the model's parameter count.

For each model of `budget.mask_models`, on each side, the whole model is wrapped for
pruning and one mask update of every wrapper runs as one graph (`sides.*.mask_update`:
what a training step runs when the schedule says to prune), once untimed (tracing),
then `budget.mask_runs` times; the figure is the median.
"""

from __future__ import annotations

import gc
import time

import numpy as np

from benchmarks.coverage.measure import describe


def measure_masks(side, plan) -> list[dict]:
    """One row per model of `plan.mask_models` on `side`."""
    rows = []
    for spec in plan.mask_models:
        row = {"part": "mask", "side": side.name, "model": spec.label, "runs": plan.mask_runs}
        try:
            side.keras.backend.clear_session()
            gc.collect()
            model = side.build(spec)
            row["params"] = int(model.count_params())
            update, row["prunable_params"] = side.mask_update(model)
            start = time.perf_counter()
            update()
            row["first_update_s"] = time.perf_counter() - start
            times = []
            for _ in range(plan.mask_runs):
                start = time.perf_counter()
                update()
                times.append(time.perf_counter() - start)
            row["mask_update_ms"] = 1000 * float(np.median(times))
            row["mask_update_min_ms"] = 1000 * float(min(times))
        except Exception as err:
            row["error"] = describe(err)
        rows.append(row)
    return rows
