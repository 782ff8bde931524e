"""Post-training quantization: tfopt.export.to_tflite (Keras 3) vs the TFLite converter (tf_keras).

The suite lives in the package benchmarks/ptq/ (protocol.py: what each side runs,
render.py: its section of BENCHMARKS.md); this module is what the harness loads.
"""

from benchmarks.ptq.protocol import TITLE, run_tfmot, run_tfopt
from benchmarks.ptq.render import render

__all__ = ["TITLE", "render", "run_tfmot", "run_tfopt"]
