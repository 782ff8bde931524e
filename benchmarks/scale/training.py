"""Training steps of float, QAT and pruning, timed alternately in one process.

Each model is built from the same seed, compiled (Adam, sparse cross-entropy on
logits: `common.compile_cnn`) and fits one batch first, untimed except as its
"first step" figure (tracing the train function and the first step). Then
`common.interleaved_fits` times `budget.train_rounds` rounds, each model fitting one
epoch of `budget.train_steps` steps in turn, so that all of them meet the same machine
load. A step's wall time is the fastest round's epoch over its steps; CPU ratios come
from the median round. A model that fails to build, quantize, prune or take its first
step records the error and drops out; the others are still timed.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import common
from benchmarks.coverage.measure import describe
from benchmarks.scale import data

VARIANTS = ("float", "qat", "prune")


def _variant(side, name, spec):
    model = side.build(spec)
    if name == "qat":
        return side.quantize(model), []
    if name == "prune":
        return side.prune(model)
    return model, []


def measure_training(side, plan) -> dict:
    """The training row of `side` (a `sides.TfoptSide` or `TfmotSide`) under `plan`."""
    spec, batch = plan.train_model, plan.train_batch
    row = {"part": "training", "side": side.name, "model": spec.label, "batch": batch}
    row.update({"steps_per_epoch": plan.train_steps, "rounds": plan.train_rounds})
    train = data.training_set(plan.train_steps * batch, spec.size)
    runs = []
    for name in VARIANTS:
        try:
            model, callbacks = _variant(side, name, spec)
            if name == "float":
                row["params"] = int(model.count_params())
            common.compile_cnn(model, side.keras)
            start = time.perf_counter()
            model.fit(
                train.x_train[:batch],
                train.y_train[:batch],
                batch_size=batch,
                callbacks=list(callbacks),
                verbose=0,
            )
            row[f"{name}_first_step_s"] = time.perf_counter() - start
            runs.append((name, model, callbacks))
        except Exception as err:  # recorded; the other variants are still timed
            row[f"{name}_error"] = describe(err)
    if runs:
        try:
            times = common.interleaved_fits(
                runs, train, plan.train_rounds, epochs=1, batch_size=batch
            )
        except Exception as err:
            row["timing_error"] = describe(err)
            times = {}
        for name, figures in times.items():
            row[f"{name}_step_s"] = min(figures["wall"]) / plan.train_steps
            row[f"{name}_cpu_step_s"] = float(np.median(figures["cpu"])) / plan.train_steps
        for name in ("qat", "prune"):
            row[f"{name}_ratio"] = common.ratio(row.get(f"{name}_step_s"), row.get("float_step_s"))
            row[f"{name}_cpu_ratio"] = common.ratio(
                row.get(f"{name}_cpu_step_s"), row.get("float_cpu_step_s")
            )
    row["peak_rss_mb"] = common.peak_rss_mb()
    return row
