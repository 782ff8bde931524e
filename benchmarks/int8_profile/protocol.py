"""Where the int8 LiteRT time of MobileNetV2 goes: LiteRT's own per-op profile.

The network is Keras 3's `keras.applications.MobileNetV2` (alpha 1.0, weights=None,
1000 classes, softmax head), exported with `tfopt.export.to_tflite` to float32 and to
int8 PTQ (float input and output, tfopt's default; random calibration images in
[-1, 1]). Both files run as LiteRT compiled models on the CPU (XNNPACK, 1 thread) with
LiteRT's op profiler on (`profiler.OpProfiler`), in rounds that alternate the float
and the int8 file; each profiled op is matched to its layer (`network.attribute`),
which gives its kind, shape and MACs. An op's time is its mean over the quieter half
of the profiled runs (`_node_rows`); the whole run's is its "Invoke" event. In the
same rounds both files are also timed the way the other suites time them
(`tfopt.export.benchmark_latency`: LiteRT's `Interpreter`, no profiler), as a check
that profiling does not change the picture.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import common
from benchmarks.int8_profile import network

TITLE = "int8 latency op by op: MobileNetV2-224 in LiteRT, from LiteRT's op profiler"
SIZE, QUICK_SIZE = 224, 96
ALPHA = 1.0
CLASSES = 1000
ROUNDS, QUICK_ROUNDS = 10, 3
RUNS, QUICK_RUNS = 200, 20  # profiled runs per file per round
WARMUP = 10
CALIBRATION, QUICK_CALIBRATION = 32, 4
SEED = 1234
PRECISIONS = ("float", "int8")


def _images(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(n, size, size, 3)).astype("float32")


def _census(path: Path) -> dict:
    from tfopt.export import op_census

    counts = op_census(path).counts()
    return {
        "ops": int(sum(counts.values())),
        "quantize_ops": int(counts.get("QUANTIZE", 0)),
        "dequantize_ops": int(counts.get("DEQUANTIZE", 0)),
        "op_counts": ", ".join(f"{op} {n}" for op, n in sorted(counts.items())),
    }


def _node_rows(precision: str, runs: list, blocks: list, size: int) -> tuple[list, dict]:
    """One row per profiled op and the whole run's figures.

    The profiler counts whole microseconds, so an op's time is a mean, not a median (a
    median of 2 µs and 3 µs readings stays on the µs grid): the mean over the quieter
    half of the runs, those whose whole "Invoke" took at most the median, so that a
    burst of other load on the machine does not weigh in.
    """
    tags = [tag for tag, _, _ in runs[0][:-1]]
    same = [r for r in runs if [t for t, _, _ in r[:-1]] == tags]
    micros = np.array([[us for _, _, us in r] for r in same], dtype=float)
    quiet = micros[micros[:, -1] <= np.median(micros[:, -1])]
    means = quiet.mean(axis=0) / 1e3  # ms; the last column is "Invoke"
    rows = []
    for i, ((tag, delegated, _), (kind, b)) in enumerate(
        zip(same[0][:-1], network.attribute(blocks, tags))
    ):
        block = blocks[b] if b is not None else None
        first_of_block = block is not None and network.op_class(tag) not in (
            "reshape",
            "softmax",
            "pad",
        )
        if kind == "quantize":
            values = size * size * 3
        elif kind == "dequantize":
            values = CLASSES
        else:
            values = None
        rows.append(
            {
                "kind": "node",
                "precision": precision,
                "index": i,
                "tag": tag,
                "delegated": bool(delegated),
                "op": kind,
                "block": b,
                "shape": block.key.split(" ", 1)[1] if block else None,
                # MACs and bytes on the block's main op only (not its Reshape/Softmax).
                "macs": block.macs() if first_of_block else (values or 0),
                "values": (block.weights() + block.activations())
                if first_of_block
                else (2 * values if values else 0),
                "ms": float(means[i]),
            }
        )
    whole = {
        "profiled_runs": len(same),
        "quiet_runs": len(quiet),
        "invoke_ms": float(means[-1]),
        "ops_ms": float(np.sum(means[:-1])),
        "unmatched": sum(1 for r in rows if r["op"] == "other"),
    }
    return rows, whole


def run_tfopt(quick: bool) -> list[dict]:
    import keras

    from benchmarks.int8_profile.profiler import OpProfiler
    from tfopt.export import benchmark_latency, to_tflite

    size = QUICK_SIZE if quick else SIZE
    calibration = QUICK_CALIBRATION if quick else CALIBRATION
    rounds, runs = (QUICK_ROUNDS, QUICK_RUNS) if quick else (ROUNDS, RUNS)
    keras.utils.set_random_seed(SEED)
    model = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=ALPHA, weights=None, classes=CLASSES
    )
    blocks = network.describe(model)
    rows = [
        {
            "kind": "setup",
            "size": size,
            "alpha": ALPHA,
            "classes": CLASSES,
            "rounds": rounds,
            "runs": runs,
            "warmup": WARMUP,
            "calibration": calibration,
            "blocks": len(blocks),
            "params": int(model.count_params()),
            "macs": int(sum(b.macs() for b in blocks)),
        }
    ]
    with tempfile.TemporaryDirectory(prefix="tfopt-int8-profile-") as tmp:
        paths = {p: Path(tmp) / f"mobilenet_v2_{p}.tflite" for p in PRECISIONS}
        x = _images(calibration, size, SEED)
        convert_s = {}
        for precision, path in paths.items():
            start = time.perf_counter()
            to_tflite(
                model,
                path,
                quantization="int8" if precision == "int8" else None,
                representative_data=x if precision == "int8" else None,
                verify_data=x[:2],
                num_calibration_samples=calibration,
                parity_bar=False,
            )
            convert_s[precision] = time.perf_counter() - start
        profilers = {p: OpProfiler(paths[p], num_threads=1) for p in PRECISIONS}
        profiled = {p: [] for p in PRECISIONS}
        interpreter = {p: [] for p in PRECISIONS}
        for _ in range(rounds):
            for p in PRECISIONS:  # float, int8, float, int8, ...
                profiled[p] += profilers[p].profile(runs, warmup=WARMUP)
            for p in PRECISIONS:
                result = benchmark_latency(
                    paths[p], num_threads=1, warmup=common.LATENCY_WARMUP, runs=runs
                )
                interpreter[p].append(result.median_ms)
        for p in PRECISIONS:
            nodes, whole = _node_rows(p, profiled[p], blocks, size)
            rows += nodes
            rows.append(
                {
                    "kind": "whole",
                    "precision": p,
                    **whole,
                    "interpreter_ms": float(min(interpreter[p])),
                    "bytes": paths[p].stat().st_size,
                    "convert_s": convert_s[p],
                    **_census(paths[p]),
                }
            )
    rows.append({"kind": "memory", "peak_rss_mb": common.peak_rss_mb()})
    return rows


def run_tfmot(quick: bool) -> list[dict]:
    """Nothing to compare: the profile is of LiteRT's kernels on one file, and tfmot's
    int8 files come from the same TFLite converter."""
    return []
