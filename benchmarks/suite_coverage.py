"""Coverage: which models reach fully int8 files, tfopt (Keras 3) beside tfmot (tf_keras).

The suite lives in the package benchmarks/coverage/ (protocol.py: what each side runs,
measure.py: one model's stages, render.py: its section of BENCHMARKS.md); this module
is what the harness loads.
"""

from benchmarks.coverage.protocol import TITLE, run_tfmot, run_tfopt
from benchmarks.coverage.render import render

__all__ = ["TITLE", "render", "run_tfmot", "run_tfopt"]
