"""Exported files measured outside `tfopt.export.verify`, and each runtime against itself.

`tfopt.export.verify` takes Keras 3 models only; the tfmot side's files are compared
with their tf_keras model here, with the same figures (`parity`): the fraction of
output elements within one output quantization step, the largest error in steps,
top-1 agreement. The same top-1 rule serves rank-3 outputs (a tagger's per-token
classes), which `verify` leaves without one.

The runtime's agreement with itself (`litert_self_agreement`, `ort_self_agreement`)
is the floor the issue sets for deep models: two correct int8 kernels may round a
requantization differently near a half-step boundary, and in a deep network those
one-step differences compound.

TensorFlow-free until called; each function imports what it runs.
"""

from __future__ import annotations

import numpy as np

STEP_SLACK = 1e-4  # float32 rounding of an output one step off, in steps (as in verify)


def run_file(path, x: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, float]:
    """(the file's first output on `x`, dequantized; its output step, 0.0 if float).

    Runs in LiteRT (.tflite) or onnxruntime (.onnx) through tfopt's runners; a file
    that only runs at its traced batch size is fed one sample at a time.
    """
    from tfopt.export import _runtime

    runner = _runtime.open_runner(path)
    chunks = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        try:
            chunks.append(runner.run([batch])[0])
        except (RuntimeError, ValueError):
            chunks.append(
                np.concatenate([runner.run([batch[i : i + 1]])[0] for i in range(len(batch))])
            )
    return np.concatenate(chunks), float(runner.output_steps()[0] or 0.0)


def top1_agreement(got: np.ndarray, expected: np.ndarray) -> float | None:
    """Fraction of samples (rank 2) or tokens (rank 3) whose expected class is a top
    score of `got` (ties count, as in `verify`); None for a single output unit."""
    if got.ndim < 2 or got.shape[-1] < 2:
        return None
    g = got.reshape(-1, got.shape[-1])
    e = expected.reshape(-1, expected.shape[-1])
    best = g[np.arange(len(g)), np.argmax(e, axis=1)]
    return float(np.mean(best >= np.max(g, axis=1)))


def parity(path, runtime: str, got: np.ndarray, expected: np.ndarray, step: float):
    """A `tfopt.export.VerifyResult` of `got` (a file's output) against `expected`."""
    from tfopt.export import VerifyResult
    from tfopt.quantization import grid

    err = np.abs(got.astype(np.float64) - expected.astype(np.float64)).ravel()
    within = max_steps = None
    if step:
        steps = err / step
        slack = grid.one_step_slack(float(np.max(np.abs(expected))), step)
        within, max_steps = float(np.mean(steps <= 1.0 + slack)), float(steps.max())
    return VerifyResult(
        path=str(path),
        runtime=runtime,
        num_samples=len(got),
        max_abs_error=float(err.max()),
        mean_abs_error=float(err.mean()),
        top1_agreement=top1_agreement(got, expected),
        output_step=step or None,
        max_error_steps=max_steps,
        within_one_step=within,
        reference_peak=float(np.max(np.abs(expected))),
        outputs=[got],
    )


def bar_failures(parity_result, quantization: str) -> str:
    """What `parity_result` misses of the default bar of `quantization` ("" if it passes)."""
    from tfopt.export import acceptance

    return "; ".join(acceptance.resolve_bar(None, quantization).failures(parity_result))


def _in_steps(a: np.ndarray, b: np.ndarray, step: float) -> tuple[float, float]:
    steps = np.abs(a.astype(np.float64) - b.astype(np.float64)) / step
    return float(np.mean(steps <= 1.0 + STEP_SLACK)), float(steps.max())


def _litert_outputs(path, x: np.ndarray, **options) -> np.ndarray:
    """The first output of a .tflite file on `x` (dequantized), one call, or one call per
    sample for a file that only runs at its traced batch size."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), **options)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def call(batch):
        if tuple(inp["shape"]) != batch.shape:
            interpreter.resize_tensor_input(inp["index"], batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], batch.astype(inp["dtype"]))
        interpreter.invoke()
        y = np.asarray(interpreter.get_tensor(out["index"]), np.float64)
        scale, zero = out["quantization"]
        return (y - zero) * scale if scale else y

    try:
        return call(x)
    except (RuntimeError, ValueError):
        if len(x) == 1:
            raise
    return np.concatenate([_litert_outputs(path, x[i : i + 1], **options) for i in range(len(x))])


def litert_self_agreement(path, x: np.ndarray, step: float) -> tuple[float, float]:
    """(fraction within one output step, worst steps) between LiteRT's default kernels
    (XNNPACK) and its reference kernels (`OpResolverType.BUILTIN_REF`) on `x`."""
    from ai_edge_litert.interpreter import OpResolverType

    default = _litert_outputs(path, x)
    reference = _litert_outputs(path, x, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    return _in_steps(default, reference, step)


def ort_self_agreement(path, x: np.ndarray, step: float) -> tuple[float, float]:
    """(fraction within one output step, worst steps) between onnxruntime's optimized
    graph (QDQ pairs fused into integer kernels) and its unoptimized one on `x`."""
    import onnxruntime as ort

    def run(level):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        inp = session.get_inputs()[0]
        dtype = {"tensor(int32)": np.int32, "tensor(int64)": np.int64}.get(inp.type, np.float32)
        return np.asarray(session.run(None, {inp.name: x.astype(dtype)})[0], np.float64)

    optimized = run(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    plain = run(ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return _in_steps(optimized, plain, step)
