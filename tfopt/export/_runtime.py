"""Running an exported file: LiteRT for .tflite, onnxruntime for .onnx.

A runner takes float inputs (it quantizes them when the file has integer inputs)
and returns float outputs (dequantized when the file has integer outputs), so a
caller compares like with like.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tfopt.export import _files, formats


@dataclasses.dataclass(frozen=True)
class IOSpec:
    """One input or output of an exported file."""

    name: str
    shape: tuple  # None for a free dimension
    dtype: np.dtype
    scale: float = 0.0  # quantization step of an integer tensor (0: not quantized)
    zero_point: int = 0


def _quantize(x: np.ndarray, spec: IOSpec) -> np.ndarray:
    if spec.scale == 0.0 or not np.issubdtype(spec.dtype, np.integer):
        return x.astype(spec.dtype)
    info = np.iinfo(spec.dtype)
    q = np.round(x / spec.scale) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def _dequantize(q: np.ndarray, spec: IOSpec) -> np.ndarray:
    if spec.scale == 0.0 or not np.issubdtype(spec.dtype, np.integer):
        return q.astype(np.float32) if np.issubdtype(q.dtype, np.floating) else q
    return ((q.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)


def open_runner(path, num_threads: int | None = None, file_format: str | None = None):
    """A runner for `path`: of the named format, else of the format its ending names.

    Raises:
        ValueError: a file its format's runtime cannot load (not such a file, damaged,
            empty), naming `path`.
    """
    fmt = formats.format_for(path) if file_format is None else formats.get_format(file_format)
    path = _files.check_input_path(path)
    if num_threads is not None and (
        not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 1
    ):
        raise ValueError(
            f"Argument `num_threads` must be None or an int >= 1. Received: {num_threads!r}"
        )
    try:
        return fmt.open_runner(path, num_threads)
    except (ValueError, TypeError) as err:
        if "Argument `" in str(err):
            raise
        raise ValueError(_unreadable(path, fmt, err, file_format)) from err
    except Exception as err:  # the runtimes raise their own kinds (protobuf, ORT...)
        raise ValueError(_unreadable(path, fmt, err, file_format)) from err


def _unreadable(path, fmt, err, file_format=None) -> str:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    named = f" (the format named by `file_format={file_format!r}`)" if file_format else ""
    return (
        f"Argument `path`: '{path}' is not a {fmt.name} file{named} {fmt.runtime} can load "
        f"({type(err).__name__}: {reason[:300]}). Is it complete, and of that format?"
    )


def quiet_litert():
    """A block in which LiteRT's INFO lines stay off stderr (warnings and errors pass).

    Creating an interpreter logs "INFO: Created TensorFlow Lite XNNPACK delegate for
    CPU." from C++ once per process: noise in a script's or a notebook's output when
    it is tfopt that runs the file. TF_CPP_MIN_LOG_LEVEL, if set higher, applies too.
    """
    from tfopt._native_log import filtered_stderr, min_log_level

    return filtered_stderr(max(1, min_log_level()))


class TFLiteRunner:
    runtime = "litert"

    def __init__(self, path, num_threads=None):
        self.path = Path(path)
        self.num_threads = num_threads
        # True when LiteRT's default delegate (XNNPACK) cannot prepare the file and it
        # runs on the built-in kernels (e.g. int8 FULLY_CONNECTED with sparse weights).
        self.without_default_delegates = False
        with quiet_litert():
            self._open()

    def _open(self):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(self.path), num_threads=self.num_threads)
        try:
            self._interpreter.allocate_tensors()
        except RuntimeError as err:
            if "delegate" not in str(err).lower():
                raise
            self._open_without_default_delegates()
            return
        self._bind()

    def _open_without_default_delegates(self):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.without_default_delegates = True
        self._interpreter = Interpreter(
            model_path=str(self.path),
            num_threads=self.num_threads,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        self._bind()

    def _bind(self):
        signatures = self._interpreter.get_signature_list()
        self._runner = None
        if signatures:
            key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
            self._runner = self._interpreter.get_signature_runner(key)
            in_details = self._runner.get_input_details()
            out_details = self._runner.get_output_details()
            self._in = [(name, in_details[name]) for name in signatures[key]["inputs"]]
            outs = sorted(signatures[key]["outputs"], key=_output_order)
            self._out = [(name, out_details[name]) for name in outs]
        else:
            self._interpreter.allocate_tensors()
            self._in = [(d["name"], d) for d in self._interpreter.get_input_details()]
            self._out = [(d["name"], d) for d in self._interpreter.get_output_details()]
        self.inputs = [_tflite_spec(n, d) for n, d in self._in]
        self.outputs = [_tflite_spec(n, d) for n, d in self._out]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """One call on a batch (inputs in `self.inputs` order, float)."""
        try:
            return self._run(inputs)
        except RuntimeError as err:
            # XNNPACK may prepare the file at its first shape and fail when a new batch
            # size re-prepares it (e.g. int8 FULLY_CONNECTED with sparse weights).
            if self.without_default_delegates or "delegate" not in str(err).lower():
                raise
            self._open_without_default_delegates()
            return self._run(inputs)

    def _run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        feeds = [_quantize(np.asarray(x), s) for x, s in zip(inputs, self.inputs)]
        if self._runner is not None:
            result = self._runner(**{s.name: x for s, x in zip(self.inputs, feeds)})
            raw = [result[name] for name, _ in self._out]
        else:
            it = self._interpreter
            for (_, d), x in zip(self._in, feeds):
                if tuple(d["shape"]) != x.shape:
                    it.resize_tensor_input(d["index"], x.shape)
            it.allocate_tensors()
            for (_, d), x in zip(self._in, feeds):
                it.set_tensor(d["index"], x)
            it.invoke()
            raw = [it.get_tensor(d["index"]) for _, d in self._out]
        return [_dequantize(np.array(r), s) for r, s in zip(raw, self.outputs)]

    def output_steps(self) -> list[float]:
        """The quantization step of each output (0.0 where the output is not quantized).

        An integer output carries its own scale. A float output produced by a
        DEQUANTIZE op inherits the scale of the int8/int16 tensor it dequantizes.
        """
        steps = []
        producers = None
        for (_, d), spec in zip(self._out, self.outputs):
            if spec.scale:
                steps.append(spec.scale)
                continue
            if producers is None:
                producers = _tflite_producers(self.path)
            steps.append(producers.get(d["name"], 0.0))
        return steps


def _output_order(name: str):
    tail = name.rsplit("_", 1)[-1]
    return (0, int(tail), name) if tail.isdigit() else (1, 0, name)


def _tflite_spec(name, d) -> IOSpec:
    shape = tuple(int(s) if s >= 0 else None for s in d.get("shape_signature", d["shape"]))
    scale, zero_point = d["quantization"]
    return IOSpec(name, shape, np.dtype(d["dtype"]), float(scale), int(zero_point))


def _tflite_producers(path) -> dict[str, float]:
    """Maps the name of each DEQUANTIZE output tensor to its input's scale."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    it.allocate_tensors()
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    steps = {}
    for op in it._get_ops_details():
        if op["op_name"] == "DEQUANTIZE" and len(op["inputs"]) and len(op["outputs"]):
            source = tensors.get(int(op["inputs"][0]))
            target = tensors.get(int(op["outputs"][0]))
            if source and target and np.issubdtype(np.dtype(source["dtype"]), np.integer):
                steps[target["name"]] = float(source["quantization"][0])
    return steps


_ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


class ONNXRunner:
    runtime = "onnxruntime"

    def __init__(self, path, num_threads=None):
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [_onnx_spec(i) for i in self._session.get_inputs()]
        self.outputs = [_onnx_spec(o) for o in self._session.get_outputs()]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        feeds = {s.name: np.asarray(x).astype(s.dtype) for s, x in zip(self.inputs, inputs)}
        return [np.asarray(o) for o in self._session.run(None, feeds)]

    def output_steps(self) -> list[float]:
        """The scale of the DequantizeLinear that produces each output (0.0 if none)."""
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(self.path), load_external_data=False)
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        consts = {}
        for node in model.graph.node:
            if node.op_type == "Constant":
                for attr in node.attribute:
                    if attr.name == "value":
                        consts[node.output[0]] = numpy_helper.to_array(attr.t)
        producers = {out: node for node in model.graph.node for out in node.output}
        steps = []
        for spec in self.outputs:
            node = producers.get(spec.name)
            # Walk back through shape-only ops to the DequantizeLinear.
            while node is not None and node.op_type in ("Identity", "Reshape", "Flatten"):
                node = producers.get(node.input[0])
            scale = 0.0
            if node is not None and node.op_type == "DequantizeLinear":
                value = inits.get(node.input[1], consts.get(node.input[1]))
                if value is not None and np.size(value) == 1:
                    scale = float(np.asarray(value).reshape(()))
            steps.append(scale)
        return steps


def _onnx_spec(node) -> IOSpec:
    shape = tuple(d if isinstance(d, int) else None for d in node.shape)
    return IOSpec(node.name, shape, np.dtype(_ONNX_TYPES.get(node.type, np.float32)))
