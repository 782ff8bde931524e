"""LiteRT's own op profiler, reached through the C API of the installed `ai_edge_litert`.

The Python API has no profiling call (`Interpreter`, its `InterpreterWrapper`, and
`CompiledModel`, whose options have no profiling field), but `libLiteRt.so` in the same
package exports the C API that LiteRT's `benchmark_model` uses: a compiled model
created with the runtime option ``enable_profiling = true`` carries a profiler
(`LiteRtCompiledModelGetProfiler`, `LiteRtStartProfiler`, `LiteRtGetProfilerEvents`)
that records one event per executed op, inside the XNNPACK delegate too (one per
XNNPACK operator: "Fully Connected (NC, QS8, QC8W) GEMM", "Convolution (NHWC, QC8)
DWConv", ...), and one "Invoke" event per run. The options travel as LiteRT's opaque
options: a TOML string under the identifier "runtime_options_string" (the runtime's
options) and "xnnpack" (the CPU accelerator's, here ``num_threads``); the structs
and signatures follow LiteRT's C headers (`litert/c/litert_profiler_event.h`,
`litert/c/options/litert_runtime_options.cc`, `litert_cpu_options.cc`), checked
against ai-edge-litert 2.3.0. Inputs are the runtime's own managed buffers, zeroed
(latency does not depend on the values).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

_OK = 0
_CPU = 1  # kLiteRtHwAcceleratorCpu
# LiteRtProfilerEventType (tflite::Profiler::EventType).
_RUN_EVENT = 1  # DEFAULT: "Invoke" and the runtime's own steps
_OPERATOR_INVOKE = 2  # an op run by the interpreter's own kernels
_DELEGATE_OPS = (4, 8)  # an op run inside a delegate (XNNPACK reports 8, "profiled")


class _MemoryUsage(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("total", "in_use", "private_footprint")]


class _Event(ctypes.Structure):  # ProfiledEventData
    _fields_ = [
        ("tag", ctypes.c_char_p),
        ("event_type", ctypes.c_int),
        ("start_timestamp_us", ctypes.c_uint64),
        ("elapsed_time_us", ctypes.c_uint64),
        ("begin_mem_usage", _MemoryUsage),
        ("end_mem_usage", _MemoryUsage),
        ("event_metadata1", ctypes.c_uint64),
        ("event_metadata2", ctypes.c_uint64),
        ("event_source", ctypes.c_int),
    ]


def _library():
    import ai_edge_litert

    return ctypes.CDLL(str(Path(ai_edge_litert.__file__).parent / "libLiteRt.so"))


class OpProfiler:
    """A LiteRT compiled model of one .tflite file, on the CPU, with op profiling on.

    Example:

    ```python
    profiler = OpProfiler("model_int8.tflite", num_threads=1)
    runs = profiler.profile(runs=50, warmup=10)  # [[(tag, microseconds), ...], ...]
    ```

    Args:
        path: the .tflite file (a free batch dimension is set to 1).
        num_threads: XNNPACK threads. Defaults to `1`.
    """

    def __init__(self, path, num_threads: int = 1):
        if not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(
                f"Argument `num_threads` must be an int >= 1. Received: {num_threads!r}"
            )
        self._lib = lib = _library()
        void = ctypes.c_void_p
        self._env, model, options = void(), void(), void()
        self._check(lib.LiteRtCreateEnvironment(0, None, ctypes.byref(self._env)), "environment")
        self._check(
            lib.LiteRtCreateModelFromFile(self._env, str(path).encode(), ctypes.byref(model)),
            f"model {path}",
        )
        self._check(lib.LiteRtCreateOptions(ctypes.byref(options)), "options")
        self._check(lib.LiteRtSetOptionsHardwareAccelerators(options, _CPU), "CPU accelerator")
        self._opaque(options, b"runtime_options_string", b"enable_profiling = true\n")
        self._opaque(options, b"xnnpack", f"num_threads = {num_threads}\n".encode())
        self._model = void()
        self._check(
            lib.LiteRtCreateCompiledModel(self._env, model, options, ctypes.byref(self._model)),
            "compiled model",
        )
        signature = void()
        self._check(
            lib.LiteRtGetModelSignature(model, ctypes.c_size_t(0), ctypes.byref(signature)),
            "signature",
        )
        self._inputs = self._buffers(signature, "Input")
        self._outputs = self._buffers(signature, "Output")
        self._profiler = void()
        self._check(
            lib.LiteRtCompiledModelGetProfiler(self._model, ctypes.byref(self._profiler)),
            "profiler",
        )
        if not self._profiler.value:
            raise RuntimeError("LiteRT created the compiled model without a profiler.")

    def _check(self, status: int, what: str) -> None:
        if status != _OK:
            raise RuntimeError(f"LiteRT C API: {what} failed (status {status}).")

    def _opaque(self, options, identifier: bytes, toml: bytes) -> None:
        libc = ctypes.CDLL(None)
        libc.strdup.restype = ctypes.c_void_p
        payload = ctypes.c_void_p(libc.strdup(toml))  # freed by the runtime (free)
        opaque = ctypes.c_void_p()
        free = ctypes.cast(libc.free, ctypes.c_void_p)
        self._check(
            self._lib.LiteRtCreateOpaqueOptions(identifier, payload, free, ctypes.byref(opaque)),
            f"options {identifier.decode()}",
        )
        self._check(self._lib.LiteRtAddOpaqueOptions(options, opaque), "adding options")

    def _buffers(self, signature, kind: str):
        lib, index = self._lib, ctypes.c_size_t
        count = index()
        self._check(
            getattr(lib, f"LiteRtGetNumSignature{kind}s")(signature, ctypes.byref(count)), kind
        )
        buffers = (ctypes.c_void_p * count.value)()
        for i in range(count.value):
            tensor = ctypes.c_void_p()
            get_tensor = getattr(lib, f"LiteRtGetSignature{kind}TensorByIndex")
            self._check(get_tensor(signature, index(i), ctypes.byref(tensor)), f"{kind} {i}")
            tensor_type = ctypes.create_string_buffer(256)  # LiteRtRankedTensorType
            self._check(lib.LiteRtGetRankedTensorType(tensor, tensor_type), f"{kind} {i} type")
            rank = tensor_type.raw[4] & 0x7F  # LiteRtLayout: rank:7, has_strides:1
            dims = (ctypes.c_int32 * rank).from_buffer(tensor_type, 8)
            if rank and dims[0] == -1:  # a free batch dimension: batch 1
                dims[0] = 1
                if kind == "Input":
                    resize = lib.LiteRtCompiledModelResizeInputTensor
                    self._check(
                        resize(self._model, index(0), index(i), dims, index(rank)), "resize"
                    )
            requirements, buffer = ctypes.c_void_p(), ctypes.c_void_p()
            get_req = getattr(lib, f"LiteRtGetCompiledModel{kind}BufferRequirements")
            self._check(
                get_req(self._model, index(0), index(i), ctypes.byref(requirements)),
                "requirements",
            )
            create = lib.LiteRtCreateManagedTensorBufferFromRequirements
            self._check(
                create(self._env, tensor_type, requirements, ctypes.byref(buffer)), "buffer"
            )
            self._check(lib.LiteRtClearTensorBuffer(buffer), "clear buffer")
            buffers[i] = buffer
        return buffers

    def _run(self) -> None:
        index = ctypes.c_size_t
        status = self._lib.LiteRtRunCompiledModel(
            self._model,
            index(0),
            index(len(self._inputs)),
            self._inputs,
            index(len(self._outputs)),
            self._outputs,
        )
        self._check(status, "run")

    def profile(self, runs: int, warmup: int = 10) -> list[list[tuple[str, bool, int]]]:
        """Runs the model `warmup` times, then `runs` times with the profiler on.

        Returns:
            One list per run (see `split_runs`).
        """
        lib = self._lib
        for _ in range(warmup):
            self._run()
        self._check(lib.LiteRtResetProfiler(self._profiler), "reset profiler")
        self._check(lib.LiteRtStartProfiler(self._profiler), "start profiler")
        for _ in range(runs):
            self._run()
        self._check(lib.LiteRtStopProfiler(self._profiler), "stop profiler")
        count = ctypes.c_int()
        self._check(lib.LiteRtGetNumProfilerEvents(self._profiler, ctypes.byref(count)), "events")
        events = (_Event * count.value)()
        self._check(lib.LiteRtGetProfilerEvents(self._profiler, count, events), "events")
        return split_runs([(e.tag.decode(), e.event_type, int(e.elapsed_time_us)) for e in events])


def split_runs(events: list[tuple[str, int, int]]) -> list[list[tuple[str, bool, int]]]:
    """(tag, event type, µs) in recording order -> one list per run.

    A run's list holds (tag, run inside a delegate, µs) for its ops in execution order,
    then ("Invoke", False, µs of the whole run). A run's "Invoke" event (type DEFAULT)
    is recorded before its ops; the runtime's own steps ("LiteRT::Run[...]") and the
    telemetry records are left out.
    """
    runs: list[list[tuple[str, bool, int]]] = []
    current: list[tuple[str, bool, int]] | None = None
    invoke = 0
    for tag, kind, micros in events:
        if kind == _RUN_EVENT and tag == "Invoke":
            if current is not None:
                runs.append([*current, ("Invoke", False, invoke)])
            current, invoke = [], micros
        elif current is not None and (kind == _OPERATOR_INVOKE or kind in _DELEGATE_OPS):
            current.append((tag, kind in _DELEGATE_OPS, micros))
    if current is not None:
        runs.append([*current, ("Invoke", False, invoke)])
    return runs
