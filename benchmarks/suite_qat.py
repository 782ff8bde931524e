"""Quantization-aware training: tfopt.quantization (Keras 3) vs tfmot (tf_keras twin).

The suite lives in the package benchmarks/qat/ (protocol.py: what each side runs,
render.py: its section of BENCHMARKS.md); this module is what the harness loads.
"""

from benchmarks.qat.protocol import TITLE, run_tfmot, run_tfopt
from benchmarks.qat.render import render

__all__ = ["TITLE", "render", "run_tfmot", "run_tfopt"]
