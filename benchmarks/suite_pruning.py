"""Pruning: tfopt.pruning (Keras 3) vs tfmot.sparsity.keras (tf_keras), same code shape.

The suite lives in the package benchmarks/pruning/ (protocol.py: what each side runs,
render.py: its section of BENCHMARKS.md); this module is what the harness loads.
"""

from benchmarks.pruning.protocol import TITLE, run_tfmot, run_tfopt
from benchmarks.pruning.render import render

__all__ = ["TITLE", "render", "run_tfmot", "run_tfopt"]
