"""The distillation suite (benchmarks/suite_distillation.py), one concern per module.

- `config`: architectures, budgets, the recipes and (T, alpha) grid chosen from.
- `data`: the "digits" and "harder" variants, pre-drawn training streams, validation.
- `training`: teacher, Distiller and students from shared initial weights.
- `selection`: the choices made on validation data.
- `compressed`: the distilled, pruned, then QAT student in int8 files.
- `protocol`: the runs and their rows (`run_tfopt`, `run_tfmot`); the full recipe.
- `render`: the BENCHMARKS.md section (prose in benchmarks/templates/distillation.md).

TensorFlow, Keras and tfopt are imported only inside the functions that train.
benchmarks/suite_distillation.py, which the harness loads, re-exports the suite's four
members; this package exports nothing itself (a `render` here would hide the module).
"""
