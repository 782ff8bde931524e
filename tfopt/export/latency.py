"""benchmark_latency(): median per-inference latency of an exported file."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from tfopt.export import _runtime


@dataclasses.dataclass(frozen=True)
class LatencyResult:
    """Per-inference latency at batch 1, in milliseconds.

    `notes` says how the runtime had to be set up (e.g. without LiteRT's XNNPACK
    delegate, which cannot prepare some files).
    """

    path: str
    runtime: str
    num_threads: int
    runs: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        """Returns the fields as a flat dict (e.g. for a JSON report)."""
        return dataclasses.asdict(self)


def _sample(spec: _runtime.IOSpec, rng) -> np.ndarray:
    shape = tuple(1 if d is None else d for d in spec.shape) or ()
    if shape and spec.shape[0] is None:
        shape = (1, *shape[1:])
    if np.issubdtype(spec.dtype, np.integer):
        info = np.iinfo(spec.dtype)
        return rng.integers(max(info.min, -100), min(info.max, 100), size=shape).astype(spec.dtype)
    return rng.standard_normal(shape).astype(spec.dtype)


def benchmark_latency(
    path, *, num_threads: int = 1, warmup: int = 10, runs: int = 100, seed: int = 0
) -> LatencyResult:
    """Times single-sample inference of a `.tflite` (LiteRT) or `.onnx` (onnxruntime) file.

    Inputs are random samples of batch 1 in the file's own input dtypes; only the
    runtime's invoke/run call is timed, after `warmup` untimed calls.

    Args:
        path: the exported file.
        num_threads: runtime threads, fixed so that figures compare. Defaults to `1`.
        warmup: untimed calls first. Defaults to `10`.
        runs: timed calls. Defaults to `100`.
        seed: seed of the random inputs. Defaults to `0`.

    Returns:
        A `LatencyResult` (median, 10th and 90th percentile in ms).
    """
    for name, value, low in (
        ("num_threads", num_threads, 1),
        ("runs", runs, 1),
        ("warmup", warmup, 0),
        ("seed", seed, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"Argument `{name}` must be an int >= {low}. Received: {value!r}")
    runner = _runtime.open_runner(path, num_threads=num_threads)
    rng = np.random.default_rng(seed)
    if runner.runtime == "litert":
        call, notes = _tflite_call(runner, rng)
    else:
        call, notes = _onnx_call(runner, rng), ()
    for _ in range(warmup):
        call()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        call()
        times[i] = (time.perf_counter_ns() - start) / 1e6
    return LatencyResult(
        path=str(path),
        runtime=runner.runtime,
        num_threads=num_threads,
        runs=runs,
        median_ms=float(np.median(times)),
        p10_ms=float(np.percentile(times, 10)),
        p90_ms=float(np.percentile(times, 90)),
        notes=notes,
    )


def _tflite_call(runner, rng):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    def prepared(options):
        # A bare interpreter (not the runner's signature runner): only invoke() is timed.
        it = Interpreter(model_path=str(runner.path), num_threads=runner.num_threads, **options)
        for d in it.get_input_details():
            shape = tuple(int(s) for s in d["shape"])
            free = tuple(int(s) for s in d.get("shape_signature", ()))[:1] == (-1,)
            if shape and shape[0] != 1 and free:  # a fixed batch (batch_size=N) stays as it is
                it.resize_tensor_input(d["index"], (1, *shape[1:]))
        it.allocate_tensors()
        for d in it.get_input_details():
            shape = tuple(int(s) for s in d["shape"])
            spec = _runtime.IOSpec(d["name"], shape, np.dtype(d["dtype"]))
            it.set_tensor(d["index"], _sample(spec, rng))
        it.invoke()  # XNNPACK may refuse the file only here (sparse int8 FULLY_CONNECTED)
        return it

    builtin = {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    if getattr(runner, "without_default_delegates", False):
        return prepared(builtin).invoke, _BUILTIN_NOTE
    try:
        with _runtime.quiet_litert():
            return prepared({}).invoke, ()
    except RuntimeError as err:
        if "delegate" not in str(err).lower():
            raise
        return prepared(builtin).invoke, _BUILTIN_NOTE


_BUILTIN_NOTE = (
    "timed on LiteRT's built-in kernels: its default XNNPACK delegate cannot prepare this "
    "file (e.g. int8 FULLY_CONNECTED with sparse weights)",
)


def _onnx_call(runner, rng):
    session = runner._session
    feeds = {s.name: _sample(s, rng) for s in runner.inputs}
    return lambda: session.run(None, feeds)
