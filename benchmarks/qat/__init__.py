"""The QAT suite (benchmarks/suite_qat.py): `protocol` (what each side runs and
the rows it returns) and `render` (its section of BENCHMARKS.md, prose in
benchmarks/templates/qat.md). TensorFlow, Keras and tfmot are imported only
inside the functions that run a side. This package exports nothing itself
(benchmarks/suite_qat.py re-exports the suite's members).
"""
