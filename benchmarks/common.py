"""What every benchmark suite shares, so that both sides get the same data and budget.

A suite imports this module as ``from benchmarks import common`` (run.py puts the
repository root on ``sys.path``). Nothing here imports TensorFlow, Keras, tf_keras
or tfmot at import time: the model builders take the Keras module as an argument
(``keras`` on the tfopt side, ``tf_keras`` on the tfmot side), and the TFLite
helpers import tfopt.export only when called (it imports Keras 3 and TensorFlow,
never tfmot or tf_keras, so the tfmot side may call them too; call
`peak_rss_mb()` before them on that side, since they add Keras 3 to the process).

Example (one side of a suite):

```python
from benchmarks import common

def run_tfopt(quick):
    import keras

    data = common.load_data()
    common.set_seed(keras)
    model = common.build_cnn(keras)
    common.compile_cnn(model, keras)
    timer = common.epoch_times(keras)
    model.fit(data.x_train, data.y_train, epochs=common.epochs(quick),
              batch_size=common.BATCH_SIZE, callbacks=[timer], verbose=0)
    return [{"side": "tfopt", "epoch_s": timer.steady_s(), "peak_rss_mb": common.peak_rss_mb()}]
```
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

# The training budget, the same for both sides of every suite.
EPOCHS = 30
QUICK_EPOCHS = 3
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
SEED = 1234
SEEDS = (1234, 1235, 1236)  # full runs train once per seed; --quick uses the first only
CALIBRATION_SAMPLES = 200  # representative samples for int8 calibration
LATENCY_RUNS = 2000  # timed LiteRT invocations per file (batch 1, 1 thread)
QUICK_LATENCY_RUNS = 200
LATENCY_WARMUP = 50


def epochs(quick: bool) -> int:
    """The training budget: `QUICK_EPOCHS` with --quick, else `EPOCHS`."""
    return QUICK_EPOCHS if quick else EPOCHS


def seeds(quick: bool) -> tuple[int, ...]:
    """Training seeds: `SEEDS[:1]` with --quick, else all `SEEDS`.

    Keras 3 and tf_keras draw different initial weights from the same seed, so a
    single-seed accuracy gap between the sides is mostly noise; report the mean
    and range over these seeds.
    """
    return SEEDS[:1] if quick else SEEDS


def latency_runs(quick: bool) -> int:
    """Timed LiteRT calls per file: `QUICK_LATENCY_RUNS` with --quick, else `LATENCY_RUNS`."""
    return QUICK_LATENCY_RUNS if quick else LATENCY_RUNS


def load_data():
    """The digits split every suite trains and tests on.

    Returns:
        A `tfopt.datasets.Digits`: x of shape (n, 8, 8, 1) in [0, 1], labels int32,
        1,438 train and 359 test samples (seed 0, 20% of each class held out).
    """
    from tfopt.datasets import load_digits

    return load_digits()


def set_seed(keras_module, seed: int = SEED) -> None:
    """Seeds Python, NumPy and the backend through `keras_module.utils.set_random_seed`."""
    keras_module.utils.set_random_seed(seed)


def build_cnn(
    keras_module,
    filters: Sequence[int] = (16, 32),
    dense_units: int = 64,
    name: str = "digits_cnn",
):
    """The small digits CNN, built with `keras` (Keras 3) or `tf_keras` (Keras 2).

    Conv(3x3, same, ReLU) -> MaxPool(2) -> Conv(3x3, same, ReLU) -> Flatten ->
    Dense(ReLU) -> Dense(10) logits. Only layers both Keras versions and tfmot
    support, so the two sides build the same architecture.

    Args:
        keras_module: the `keras` or `tf_keras` module.
        filters: channels of the two convolutions. Defaults to `(16, 32)`.
        dense_units: width of the hidden dense layer. Defaults to `64`.
        name: model name. Defaults to `"digits_cnn"`.

    Returns:
        An uncompiled Sequential model with input (8, 8, 1) and 10 logits.
    """
    layers = keras_module.layers
    f1, f2 = filters
    return keras_module.Sequential(
        [
            layers.Input(shape=(8, 8, 1)),
            layers.Conv2D(f1, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool"),
            layers.Conv2D(f2, 3, padding="same", activation="relu", name="conv2"),
            layers.Flatten(name="flatten"),
            layers.Dense(dense_units, activation="relu", name="dense"),
            layers.Dense(10, name="logits"),
        ],
        name=name,
    )


def compile_cnn(model, keras_module, learning_rate: float = LEARNING_RATE) -> None:
    """Compiles with Adam, sparse categorical cross-entropy on logits, and accuracy."""
    model.compile(
        optimizer=keras_module.optimizers.Adam(learning_rate),
        loss=keras_module.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def epoch_times(keras_module):
    """A callback recording the wall time of each training epoch, in seconds.

    Compare epoch times as ratios between runs of one process (or between the two
    sides of one suite run), never as absolute figures across machines.

    Args:
        keras_module: the `keras` or `tf_keras` module (the callback subclasses its
            `callbacks.Callback`, which `fit` requires).

    Returns:
        A callback with `.times` (a list of seconds per epoch), `.steady_s()` (median
        of the epochs after the first, which includes graph tracing; the only epoch
        if there is one), `.fastest_s()` (the quickest epoch after the first, the
        figure least disturbed by other load on the machine) and `.first_s()`.
    """

    class EpochTimes(keras_module.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._start)

        def first_s(self) -> float:
            return self.times[0] if self.times else math.nan

        def fastest_s(self) -> float:
            if not self.times:
                return math.nan
            return float(min(self.times[1:] or self.times))

        def steady_s(self) -> float:
            if not self.times:
                return math.nan
            rest = self.times[1:] or self.times
            return float(np.median(rest))

    return EpochTimes()


def interleaved_fits(
    runs, data, rounds: int, epochs: int = 1, batch_size: int = BATCH_SIZE
) -> dict:
    """Wall and CPU seconds per epoch of several models trained in alternation.

    Each model first fits one untimed epoch (graph tracing); then `rounds` times,
    each model in turn fits `epochs` epochs, so all of them meet the same machine
    load. CPU is the process's CPU time (least disturbed by other load).

    Args:
        runs: (name, model, callbacks) triples, compiled models.
        data: the digits split (`load_data()`), or any object with x_train and y_train.
        rounds: timed rounds.
        epochs: epochs per fit in a round. Defaults to `1`.
        batch_size: the batch of every fit. Defaults to `BATCH_SIZE`.

    Returns:
        {name: {"wall": [seconds per epoch, one per round], "cpu": [...]}}.
    """
    fit = {"batch_size": batch_size, "verbose": 0}
    for _, model, callbacks in runs:
        model.fit(data.x_train, data.y_train, epochs=1, callbacks=list(callbacks), **fit)
    times = {name: {"wall": [], "cpu": []} for name, _, _ in runs}
    for _ in range(rounds):
        for name, model, callbacks in runs:
            start, start_cpu = time.perf_counter(), time.process_time()
            model.fit(data.x_train, data.y_train, epochs=epochs, callbacks=list(callbacks), **fit)
            times[name]["wall"].append((time.perf_counter() - start) / epochs)
            times[name]["cpu"].append((time.process_time() - start_cpu) / epochs)
    return times


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def file_sizes(path) -> tuple[int, int]:
    """(raw bytes, gzip bytes at level 9) of a file: `tfopt.export.file_sizes`.

    Imported when called, like the other tfopt.export helpers here: on the tfmot side
    it adds Keras 3 to the process (take `peak_rss_mb()` first).
    """
    from tfopt.export import file_sizes as tfopt_file_sizes

    return tfopt_file_sizes(path)


def tflite_figures(path, quick: bool = False, num_threads: int = 1) -> dict:
    """Sizes and LiteRT latency of a .tflite file (batch 1, `num_threads` threads).

    Latency comes from `tfopt.export.benchmark_latency` (median of
    `latency_runs(quick)` invocations after `LATENCY_WARMUP` untimed ones).

    Returns:
        {"bytes", "gzip_bytes", "latency_ms"} (latency as the median, in ms).
    """
    from tfopt.export import benchmark_latency, file_sizes

    raw, zipped = file_sizes(path)
    latency = benchmark_latency(
        path, num_threads=num_threads, warmup=LATENCY_WARMUP, runs=latency_runs(quick)
    )
    return {"bytes": raw, "gzip_bytes": zipped, "latency_ms": latency.median_ms}


def interleaved_latency(
    paths: dict, quick: bool = False, rounds: int = 5, num_threads: int = 1
) -> dict:
    """Latency of several files, measured in interleaved rounds (batch 1, `num_threads`).

    Each round times every file once (`latency_runs(quick) // rounds` calls after
    `LATENCY_WARMUP` untimed ones) and takes the median call. A file's figure is
    its fastest round: on a shared machine a burst of other load slows some
    rounds, and interleaving makes such bursts hit all files alike.

    Args:
        paths: {name: .tflite or .onnx path}.
        quick: fewer timed calls. Defaults to `False`.
        rounds: rounds over all files. Defaults to `5`.
        num_threads: runtime threads (`.onnx` files run in onnxruntime the same way).
            Defaults to `1`.

    Returns:
        {name: latency in ms (the lowest of the round medians)}.
    """
    from tfopt.export import benchmark_latency

    runs = max(1, latency_runs(quick) // rounds)
    medians: dict = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            result = benchmark_latency(
                path, num_threads=num_threads, warmup=LATENCY_WARMUP, runs=runs
            )
            medians[name].append(result.median_ms)
    return {name: float(min(values)) for name, values in medians.items()}


def tflite_accuracy(path, x: np.ndarray, y: np.ndarray, batch_size: int = 128) -> float:
    """Top-1 accuracy of a classifier .tflite run in LiteRT on (x, y).

    Integer inputs and outputs are quantized and dequantized with the file's own
    scales, so float, dynamic-range and full-integer files compare directly.
    """
    from tfopt.export import _runtime

    runner = _runtime.open_runner(path)
    correct = 0
    for start in range(0, len(x), batch_size):
        (out,) = runner.run([x[start : start + batch_size]])
        correct += int(np.sum(np.argmax(out, axis=-1) == y[start : start + batch_size]))
    return correct / len(x)


def keras_accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a Keras (3 or 2) classifier on (x, y)."""
    logits = model.predict(x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def timed(fn: Callable, *args, **kwargs):
    """Calls `fn` and returns (its result, wall seconds)."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


# ---------------------------------------------------------------------------
# Rendering helpers for suites' render() functions.


def fmt(value, spec: str = "") -> str:
    """Formats one table cell; missing values and NaN become an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if spec == "pct":
        return f"{100 * value:.1f}%"
    if spec == "kb":
        return f"{value / 1024:.1f} KiB"
    if spec == "x":
        return f"{value:.2f}x"
    return format(value, spec) if spec else str(value)


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """A markdown table from flat dicts.

    Args:
        rows: the rows.
        columns: (key, heading, format) per column; format is a `format()` spec or
            "pct" (0.97 -> 97.0%), "kb" (bytes -> KiB), "x" (ratio -> 1.23x).

    Returns:
        The table, without a trailing newline.

    Not `tfopt.report.render_table(markdown=True)`: that one pads cells to aligned
    columns and right-aligns numbers, so every table line of BENCHMARKS.md would change;
    and "kb" keeps a column in KiB where `tfopt.report.format_bytes` switches to B or MiB.
    """
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = [
        "| " + " | ".join(fmt(row.get(key), spec) for key, _, spec in columns) + " |"
        for row in rows
    ]
    return "\n".join([head, rule, *body])


def ratio(numerator, denominator) -> float:
    """numerator / denominator, NaN when either is missing or the denominator is 0."""
    if numerator is None or denominator in (None, 0):
        return math.nan
    return float(numerator) / float(denominator)
