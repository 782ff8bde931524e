"""The pruning suite (benchmarks/suite_pruning.py): `protocol` (what each side runs and
the rows it returns) and `render` (its section of BENCHMARKS.md, prose in
benchmarks/templates/pruning.md). TensorFlow, Keras and tfmot are imported only
inside the functions that run a side. This package exports nothing itself
(benchmarks/suite_pruning.py re-exports the suite's members).
"""
