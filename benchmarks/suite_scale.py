"""Scale: MobileNetV2 and ResNet50 training cost beside tfmot, and int8 deployment files.

The suite lives in the package benchmarks/scale/ (protocol.py: what each side runs,
training.py / masks.py / resnet.py / deployment.py: its four parts, render.py: its
section of BENCHMARKS.md); this module is what the harness loads.
"""

from benchmarks.scale.protocol import TITLE, run_tfmot, run_tfopt
from benchmarks.scale.render import render

__all__ = ["TITLE", "render", "run_tfmot", "run_tfopt"]
