"""Sparse inference: pruned 1x1 convolutions exported with sparse weights, timed in LiteRT.

Both sides prune the same XNNPACK-shaped network (tfopt with `leave_dense`, tfmot with
its `PruneForLatencyOnXNNPack` policy) at 0/50/75/90% and time the dense and the sparse
file in alternating rounds. The suite lives in the package benchmarks/sparse/; this
module is what the harness loads.
"""

from benchmarks.sparse.protocol import TITLE, run_tfmot, run_tfopt
from benchmarks.sparse.render import render

__all__ = ["TITLE", "render", "run_tfmot", "run_tfopt"]
