"""int8 latency op by op: MobileNetV2-224's float32 and int8 PTQ files in LiteRT, each
op timed by LiteRT's own profiler (reached through its C API), summed by op kind.

The suite lives in the package benchmarks/int8_profile/; this module is what the
harness loads.
"""

from benchmarks.int8_profile.protocol import TITLE, run_tfmot, run_tfopt
from benchmarks.int8_profile.render import render

__all__ = ["TITLE", "render", "run_tfmot", "run_tfopt"]
