"""Sparse inference: does a pruned file with sparse weights run faster in LiteRT here?

Both sides build the same float32 network, shaped the way XNNPACK's sparse path
wants it (tfmot's `PruneForLatencyOnXNNPack` accepts it): a 112x112x3 input, a 3x3
stride-2 convolution on 3 channels (ZeroPadding2D(1) + 'valid'), depthwise 3x3 /
1x1 convolution blocks, GlobalAveragePooling2D(keepdims=True), a 1x1 classifier.
For each target sparsity only the 1x1 convolutions are pruned by magnitude (tfopt:
`leave_dense` keeps the stem and the depthwise layers dense; tfmot: its
`PruneForLatencyOnXNNPack` policy does the same), for one optimizer step with a zero
learning rate (the masks are applied, the weights do not move: latency does not
depend on training), then the wrappers are stripped and the model is exported
twice: plain, and with TFLite's sparse weight encoding (tfopt:
`to_tflite(..., sparse=True)`; tfmot: `Optimize.EXPERIMENTAL_SPARSITY`).

Latency is LiteRT's Python interpreter with its default XNNPACK delegate, batch 1,
1 thread (`tfopt.export.benchmark_latency`), in rounds that alternate the dense
and the sparse file of each sparsity; the ratio sparse/dense is the median over
rounds of the per-round ratio. Each row also records what the file holds (DENSIFY
ops: the sparse encoding) and whether this CPU has AVX: XNNPACK never takes its
sparse (NCHW) path on an x86 CPU with AVX, whatever the file or the interpreter
options (benchmarks/templates/sparse.md quotes the source lines).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks import common

TITLE = "Sparse inference: pruned 1x1 convolutions in LiteRT (XNNPACK)"
SPARSITIES = (0.0, 0.5, 0.75, 0.9)
INPUT_SIZE = 112
# (depthwise stride, 1x1 output channels) after the 32-channel stem.
BLOCKS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256))
CLASSES = 10
ROUNDS, QUICK_ROUNDS = 7, 3
RUNS = 100
SEED = 0


def cpu_flags() -> dict:
    """Whether the CPU has AVX (XNNPACK's x86 gate on sparse inference), from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"avx": None, "avx2": None}
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return {"avx": "avx" in flags, "avx2": "avx2" in flags}


def build_model(keras_module):
    """The network both sides prune (functional, so tfmot's policy can walk it)."""
    layers = keras_module.layers
    inputs = keras_module.Input((INPUT_SIZE, INPUT_SIZE, 3))
    x = layers.ZeroPadding2D(((1, 1), (1, 1)))(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="valid", activation="relu", name="stem")(x)
    for i, (stride, channels) in enumerate(BLOCKS):
        if stride == 2:
            x = layers.ZeroPadding2D(((1, 1), (1, 1)))(x)
            x = layers.DepthwiseConv2D(3, strides=2, padding="valid", activation="relu")(x)
        else:
            x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        x = layers.Conv2D(channels, 1, activation="relu", name=f"pointwise_{i}")(x)
    x = layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = layers.Conv2D(CLASSES, 1, name="classifier")(x)
    outputs = layers.Flatten()(x)
    return keras_module.Model(inputs, outputs, name="sparse_candidate")


def pointwise_sparsity(model) -> float:
    """Fraction of zeros over the 1x1 convolution kernels (what XNNPACK counts)."""
    size = zeros = 0
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None or tuple(kernel.shape[:2]) != (1, 1):
            continue
        values = np.asarray(kernel.numpy())
        size += values.size
        zeros += int(np.count_nonzero(values == 0))
    return zeros / size if size else 0.0


def _one_zero_lr_step(keras_module, model, callback) -> None:
    """Applies the pruning masks without moving the weights (SGD, learning rate 0)."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((2, INPUT_SIZE, INPUT_SIZE, 3)).astype("float32")
    y = rng.standard_normal((2, CLASSES)).astype("float32")
    model.compile(keras_module.optimizers.SGD(learning_rate=0.0), "mse")
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[callback])


def _file_row(side: str, target: float, encoding: str, path: Path) -> dict:
    from tfopt.export import op_census

    raw, zipped = common.file_sizes(path)
    counts = op_census(path).counts()
    return {
        "kind": "file",
        "side": side,
        "sparsity": target,
        "encoding": encoding,
        "bytes": raw,
        "gzip_bytes": zipped,
        "densify_ops": int(counts.get("DENSIFY", 0)),
        "conv_ops": int(counts.get("CONV_2D", 0)),
    }


def _delegated(path: Path) -> dict:
    """What LiteRT's default XNNPACK delegate took of the file.

    The interpreter keeps the replaced nodes in its node list, so this reads the
    DELEGATE nodes' edges: whether one consumes the model input, which op's output
    it produces last, and how many DENSIFY outputs reach it from outside (0: the
    delegate took the DENSIFY ops, i.e. saw sparse weights and set
    XNN_FLAG_HINT_SPARSE_INFERENCE).
    """
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    nodes = it._get_ops_details()
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    producer = {t: n for n in nodes if n["op_name"] != "DELEGATE" for t in n["outputs"]}
    model_input = it.get_input_details()[0]["index"]
    inputs = {t for d in delegates for t in d["inputs"]}
    outputs = [producer[t] for d in delegates for t in d["outputs"] if t in producer]
    last = max(outputs, key=lambda n: n["index"]) if outputs else None
    return {
        "delegate_nodes": len(delegates),
        "delegate_takes_input": model_input in inputs,
        "delegate_ends_at": f"{last['op_name']} #{last['index']}" if last else None,
        "ops_after_delegate": sum(
            1 for n in nodes if n["op_name"] != "DELEGATE" and last and n["index"] > last["index"]
        ),
        "densify_from_outside": sum(
            1 for t in inputs if t in producer and producer[t]["op_name"] == "DENSIFY"
        ),
    }


def _latency_rows(side: str, files: dict, rounds: int) -> list[dict]:
    """Alternating rounds over the dense and the sparse file of each sparsity."""
    from tfopt.export import benchmark_latency

    times = {key: [] for key in files}
    for _ in range(rounds):
        for key in files:  # (target, "dense"), (target, "sparse"), next target, ...
            result = benchmark_latency(files[key], num_threads=1, runs=RUNS, seed=SEED)
            times[key].append(result.median_ms)
    rows = []
    for target in sorted({t for t, _ in files}):
        dense, sparse = np.array(times[(target, "dense")]), np.array(times[(target, "sparse")])
        rows.append(
            {
                "kind": "latency",
                "side": side,
                "sparsity": target,
                "rounds": rounds,
                "runs": RUNS,
                "dense_ms": float(np.min(dense)),
                "sparse_ms": float(np.min(sparse)),
                "ratio_median": float(np.median(sparse / dense)),
                "ratio_min": float(np.min(sparse / dense)),
                "ratio_max": float(np.max(sparse / dense)),
                **_delegated(files[(target, "sparse")]),
            }
        )
    return rows


def _run_side(side: str, keras_module, prune, export, quick: bool) -> list[dict]:
    """`prune(model, target) -> stripped model`; `export(model, path, sparse)`."""
    rows = [{"kind": "machine", "side": side, **cpu_flags()}]
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        for target in SPARSITIES:
            keras_module.utils.set_random_seed(SEED)
            model = build_model(keras_module)
            stripped = prune(model, target) if target else model
            rows.append(
                {
                    "kind": "model",
                    "side": side,
                    "sparsity": target,
                    "pointwise_sparsity": pointwise_sparsity(stripped),
                    "params": int(stripped.count_params()),
                }
            )
            for encoding in ("dense", "sparse"):
                path = Path(tmp) / f"{side}_{target}_{encoding}.tflite"
                export(stripped, path, encoding == "sparse")
                files[(target, encoding)] = path
                rows.append(_file_row(side, target, encoding, path))
        rows += _latency_rows(side, files, QUICK_ROUNDS if quick else ROUNDS)
    rows.append({"kind": "memory", "side": side, "peak_rss_mb": common.peak_rss_mb()})
    return rows


def run_tfopt(quick: bool) -> list[dict]:
    import keras

    from tfopt import pruning
    from tfopt.export import to_tflite

    def prune(model, target):
        # Only the 1x1 convolutions: the stem, the depthwise layers stay dense.
        pruned = pruning.prune_low_magnitude(
            model,
            pruning.ConstantSparsity(target, begin_step=0, frequency=1),
            leave_dense=("stem", keras.layers.DepthwiseConv2D),
        )
        _one_zero_lr_step(keras, pruned, pruning.UpdatePruningStep())
        return pruning.strip_pruning(pruned)

    def export(model, path, sparse):
        to_tflite(model, path, sparse=sparse)

    return _run_side("tfopt", keras, prune, export, quick)


def run_tfmot(quick: bool) -> list[dict]:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    api = tfmot.sparsity.keras

    def prune(model, target):
        pruned = api.prune_low_magnitude(
            model,
            pruning_schedule=api.ConstantSparsity(target, begin_step=0, frequency=1),
            pruning_policy=api.PruneForLatencyOnXNNPack(),
        )
        _one_zero_lr_step(tf_keras, pruned, api.UpdatePruningStep())
        return api.strip_pruning(pruned)

    def export(model, path, sparse):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if sparse:
            converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
        Path(path).write_bytes(converter.convert())

    return _run_side("tfmot", tf_keras, prune, export, quick)
