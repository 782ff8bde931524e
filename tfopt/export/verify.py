"""verify(): does an exported file compute what the Keras model computes?"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from tfopt.export import _data, _model, _runtime
from tfopt.quantization import grid


def _slack(expected, step) -> float:
    """Float32 rounding, in steps, of an output one step off (see grid.one_step_slack)."""
    peak = float(np.max(np.abs(expected))) if np.size(expected) else 0.0
    return grid.one_step_slack(peak, step)


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    """Parity figures of an exported file against its Keras model.

    Attributes:
        path: the file that was run.
        runtime: "litert" or "onnxruntime".
        num_samples: how many input samples were compared.
        max_abs_error: largest |file - keras| over all outputs and samples.
        mean_abs_error: mean |file - keras| over all outputs and samples.
        top1_agreement: for classifier outputs (rank 2, two or more classes), the
            fraction of samples whose Keras argmax is a top score of the file (a
            quantized output may tie it with other classes); None otherwise.
        output_step: the quantization step of the file's output where the output
            is quantized (int8/int16 tensors, or a DEQUANTIZE of one); None otherwise.
        max_error_steps: max_abs_error in units of `output_step`; None if not quantized.
        within_one_step: fraction of output elements whose error is at most one
            `output_step` (plus 1e-4 of a step for float32 rounding); None if not
            quantized.
        reference_peak: the largest |output| of the Keras model on these inputs
            (the scale relative errors are measured against).
        runtime_notes: how the runtime had to be set up to run the file (e.g.
            without LiteRT's default XNNPACK delegate).
        outputs: the file's outputs (dequantized to float), one array per output.
    """

    path: str
    runtime: str
    num_samples: int
    max_abs_error: float
    mean_abs_error: float
    top1_agreement: float | None
    output_step: float | None
    max_error_steps: float | None
    within_one_step: float | None
    reference_peak: float = 0.0
    runtime_notes: tuple = ()
    outputs: list = dataclasses.field(default_factory=list, repr=False, compare=False)

    def as_dict(self) -> dict:
        """Returns the parity figures as a dict, without the `outputs` arrays."""
        d = dataclasses.asdict(self)
        d.pop("outputs")
        return d


def _order(runner_inputs, specs):
    """Index into the model's inputs for each runner input: by name, else by position."""
    names = [s.name for s in specs]
    wanted = [i.name.split(":")[0] for i in runner_inputs]
    if sorted(wanted) == sorted(names):
        return [names.index(w) for w in wanted]
    if len(runner_inputs) != len(specs):
        raise ValueError(
            f"The file has {len(runner_inputs)} inputs {wanted}; the model has {len(specs)} "
            f"{names}. Is this the file exported from this model?"
        )
    return list(range(len(specs)))


def _output_order(runner_outputs, model):
    """Index into the file's outputs for each model output.

    By name where the file names its outputs as the model's dict of outputs does (LiteRT
    lists "out_2" before "out_10", Keras after), else by position.
    """
    names = _model.output_keys(model)
    got = [o.name.split(":")[0] for o in runner_outputs]
    if names and sorted(names) == sorted(got) and len(set(got)) == len(got):
        return [got.index(n) for n in names]
    return list(range(len(runner_outputs)))


def _fixed_batch(runner):
    """The batch size the file's inputs are fixed at, or None for a free batch."""
    batches = {s.shape[0] if s.shape else None for s in runner.inputs}
    return batches.pop() if len(batches) == 1 and None not in batches else None


def _run_file(runner, inputs, batch_size):
    fixed = _fixed_batch(runner)
    batch_size = fixed or batch_size
    n = inputs[0].shape[0]
    chunks = []
    for start in range(0, n, batch_size):
        batch = [x[start : start + batch_size] for x in inputs]
        if fixed and batch[0].shape[0] < fixed:  # a last, short batch: pad it, drop the pad
            rows = batch[0].shape[0]
            pad = [np.concatenate([x, np.repeat(x[-1:], fixed - rows, axis=0)]) for x in batch]
            chunks.append([o[:rows] for o in runner.run(pad)])
            continue
        try:
            chunks.append(runner.run(batch))
        except (RuntimeError, ValueError):
            # Some graphs (e.g. unrolled recurrent ones) only run at their traced batch size.
            rows = [runner.run([x[i : i + 1] for x in batch]) for i in range(batch[0].shape[0])]
            chunks.append([np.concatenate([r[k] for r in rows]) for k in range(len(rows[0]))])
    return [np.concatenate([c[k] for c in chunks], axis=0) for k in range(len(chunks[0]))]


def _runtime_notes(runner) -> tuple:
    if getattr(runner, "without_default_delegates", False):
        return (
            "LiteRT's default XNNPACK delegate cannot prepare this file (e.g. int8 "
            "FULLY_CONNECTED with sparse weights): it was run on LiteRT's built-in kernels; "
            "on a device create the interpreter with experimental_op_resolver_type="
            "OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES",
        )
    return ()


def verify(
    path,
    model: keras.Model,
    inputs,
    *,
    input_signature=None,
    batch_size: int = 256,
    num_threads: int | None = None,
    file_format: str | None = None,
) -> VerifyResult:
    """Runs an exported file and the Keras model on the same inputs and compares them.

    The .tflite file runs in LiteRT (`ai_edge_litert`), the .onnx file in
    onnxruntime. Integer inputs are quantized and integer outputs dequantized
    for the caller, so `inputs` are always the float inputs the Keras model takes.

    Example:

    ```python
    result = tfopt.export.verify("model.tflite", model, x_test)
    assert result.max_abs_error < 1e-5
    ```

    Args:
        path: a `.tflite` or `.onnx` file.
        model: the Keras 3 model the file was exported from.
        inputs: float inputs: a numpy array, a dict of arrays keyed by input name
            (any order), a list of arrays in `model.inputs` order, a tf.data.Dataset,
            or a generator of batches. A model built on a dict of inputs whose keys
            are not sorted takes a dict only (Keras orders its inputs by key).
        input_signature: for subclassed models only, as in `to_tflite`.
            Defaults to `None`.
        batch_size: samples per call. A file exported with a fixed batch
            (`batch_size=` of the exporters) is fed batches of its own size, the
            last one padded. Defaults to `256`.
        num_threads: runtime threads. Defaults to `None` (the runtime's choice).
        file_format: the registered format's name ("tflite", "onnx"...).
            Defaults to `None`: told by the file's ending.

    Returns:
        A `VerifyResult`.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: inputs that do not match the model, or a file whose inputs
            do not match the model's.
    """
    _model.check_keras_model(model, input_signature=input_signature)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"Argument `batch_size` must be an int >= 1. Received: {batch_size!r}")
    specs = _model.input_specs(model, input_signature)
    arrays = _data.collect(inputs, specs, "inputs")
    runner = _runtime.open_runner(path, num_threads=num_threads, file_format=file_format)
    order = _order(runner.inputs, specs)
    expected = _model.keras_outputs(model, arrays, batch_size)
    outputs = _output_order(runner.outputs, model)
    got = _run_file(runner, [arrays[i] for i in order], batch_size)
    got = [got[k] for k in outputs] if len(got) == len(outputs) else got
    if len(got) != len(expected):
        raise ValueError(
            f"The file has {len(got)} outputs, the model {len(expected)}: is '{path}' the file "
            "exported from this model?"
        )
    errors = []
    for g, e in zip(got, expected):
        if g.shape != e.shape:
            raise ValueError(
                f"Output shapes differ: file {g.shape}, model {e.shape}. Is '{path}' the file "
                "exported from this model?"
            )
        errors.append(np.abs(g.astype(np.float64) - e.astype(np.float64)).ravel())
    err = np.concatenate(errors)

    top1 = None
    for g, e in zip(got, expected):
        if g.ndim == 2 and g.shape[1] >= 2:
            # The model's class is the file's when it is among the file's top scores: a
            # quantized output (e.g. an int8 softmax, steps of 1/256) can tie classes that
            # the float model tells apart, and argmax would pick the first of them.
            best = g[np.arange(len(g)), np.argmax(e, axis=1)]
            top1 = float(np.mean(best >= np.max(g, axis=1)))
            break

    steps = runner.output_steps()
    steps = [steps[k] for k in outputs] if len(steps) == len(outputs) else steps
    output_step = max_steps = within = None
    if any(steps):
        output_step = float(max(steps))
        scaled, ok = [], []
        for err_k, step, e in zip(errors, steps, expected):
            err_steps = err_k / step if step else np.zeros_like(err_k)
            scaled.append(err_steps)
            ok.append(err_steps <= 1.0 + _slack(e, step))
        max_steps = float(np.concatenate(scaled).max())
        within = float(np.mean(np.concatenate(ok)))
    return VerifyResult(
        path=str(path),
        runtime=runner.runtime,
        num_samples=int(arrays[0].shape[0]),
        max_abs_error=float(err.max()) if err.size else 0.0,
        mean_abs_error=float(err.mean()) if err.size else 0.0,
        top1_agreement=top1,
        output_step=output_step,
        max_error_steps=max_steps,
        within_one_step=within,
        reference_peak=float(max((np.max(np.abs(e)) for e in expected if e.size), default=0.0)),
        runtime_notes=_runtime_notes(runner),
        outputs=got,
    )
