"""Distillation: a small student distilled from a larger teacher vs the same student from scratch.

tfopt side only (tfmot has no distillation): `run_tfmot` returns no rows. The suite
lives in the package benchmarks/distillation/ (the recipe: its `protocol` module);
this module is what the harness discovers and loads.
"""

from benchmarks.distillation.config import TITLE
from benchmarks.distillation.protocol import run_tfmot, run_tfopt
from benchmarks.distillation.render import render

__all__ = ["TITLE", "render", "run_tfmot", "run_tfopt"]
