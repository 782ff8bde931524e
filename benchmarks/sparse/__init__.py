"""The sparse-inference suite (benchmarks/suite_sparse.py): `protocol` (the network,
its pruning and exports on each side, and the latency rounds) and `render` (its
section of BENCHMARKS.md, prose and source evidence in benchmarks/templates/sparse.md).
TensorFlow, Keras, tfmot and LiteRT are imported only inside the functions that run a
side. This package exports nothing itself (benchmarks/suite_sparse.py re-exports the
suite's members).
"""
