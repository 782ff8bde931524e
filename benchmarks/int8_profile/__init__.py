"""The int8-profile suite (benchmarks/suite_int8_profile.py): `network` (MobileNetV2's
layers as blocks by kind and shape, their MACs and bytes, and the matching of profiled
ops to them), `profiler` (LiteRT's op profiler through its C API), `protocol` (the
exports and the alternating float/int8 profiling rounds) and `render` (its section of
BENCHMARKS.md, prose in benchmarks/templates/int8_profile.md). TensorFlow, Keras and
LiteRT are imported only inside the functions that run a side. This package exports
nothing itself (benchmarks/suite_int8_profile.py re-exports the suite's members).
"""
