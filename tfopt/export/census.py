"""op_census(): which ops an exported file runs, with their tensor dtypes."""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

import numpy as np

from tfopt.export import _files, formats

# Ops that do the arithmetic of a model; "runs in int8" is asked of these.
COMPUTE_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "TRANSPOSE_CONV",
    "CONV_3D",
    "BATCH_MATMUL",
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "BIDIRECTIONAL_SEQUENCE_LSTM",
    "UNIDIRECTIONAL_SEQUENCE_RNN",
    "BIDIRECTIONAL_SEQUENCE_RNN",
    "SVDF",
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "Einsum",
    "LSTM",  # ONNX's recurrent ops carry their weight matrices (tf2onnx fuses a Keras LSTM)
    "GRU",
    "RNN",
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
)


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """One op of an exported graph."""

    index: int
    op: str
    input_dtypes: tuple[str, ...]
    output_dtypes: tuple[str, ...]
    graph: int = 0  # 0: the main graph; i > 0: the i-th loop body or branch (`nested`)

    @property
    def is_float(self) -> bool:
        """True when the op's activation or weight (its first two inputs) is floating point.

        A loop or branch (WHILE, IF; an unrolled recurrent layer runs in one) counts
        when it carries any float tensor: its body computes on them. In an ONNX
        census an input fed by DequantizeLinear counts with the integer type it
        dequantizes (the runtimes fuse QDQ pairs into integer kernels).
        """
        inputs = self.input_dtypes if self.op in _CONTROL_FLOW else self.input_dtypes[:2]
        return any(_is_float(d) for d in inputs)


_CONTROL_FLOW = ("WHILE", "IF", "Loop", "If", "Scan")


_UNKNOWN = "unknown"  # a nested ONNX graph's tensor whose type shape inference left open


def _is_float(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat"))


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One input or output of an exported graph: its name and dtype."""

    name: str
    dtype: str


@dataclasses.dataclass(frozen=True)
class OpCensus:
    """The ops of a .tflite or .onnx file, in graph order, and its inputs and outputs.

    Example:

    ```python
    census = tfopt.export.op_census("model_int8.tflite")
    assert not census.float_compute_ops()   # every conv / dense runs in int8
    print(census.table())
    print(census.integer_summary())         # e.g. "yes (int8 input, int8 output)"
    ```

    Attributes:
        path: the file.
        format: its format's name ("tflite", "onnx"...).
        ops: the ops of its main graph (`OpInfo`), in graph order.
        inputs: the graph's inputs (`TensorInfo`: name, dtype). Defaults to `()`
            (not known: a census built without them).
        outputs: the graph's outputs, as `inputs`. Defaults to `()`.
        nested: the ops of the graphs its control flow runs (a TFLite WHILE's cond
            and body, IF's branches; an ONNX Loop's or If's graphs), each with its
            graph's number in `OpInfo.graph` (from 1). A recurrent layer left float
            runs its FULLY_CONNECTED ops there. Defaults to `()`.
    """

    path: str
    format: str
    ops: tuple[OpInfo, ...]
    inputs: tuple[TensorInfo, ...] = ()
    outputs: tuple[TensorInfo, ...] = ()
    nested: tuple[OpInfo, ...] = ()

    def counts(self) -> dict[str, int]:
        """Number of ops of each type."""
        return dict(collections.Counter(op.op for op in self.ops))

    def of_type(self, *names: str) -> list[OpInfo]:
        """The ops whose type is one of `names`."""
        return [op for op in self.ops if op.op in names]

    def float_ops(self) -> list[OpInfo]:
        """Every op that computes on floats, quantize/dequantize ops aside.

        In an integer file: the ops left in float (a float SOFTMAX, MUL, MEAN... as
        well as conv/dense).
        """
        skip = ("QUANTIZE", "DEQUANTIZE", "QuantizeLinear", "DequantizeLinear")
        return [op for op in self.ops if op.is_float and op.op not in skip]

    def float_compute_ops(self, names: tuple[str, ...] = COMPUTE_OPS) -> list[OpInfo]:
        """Compute ops (conv, depthwise conv, dense, matmul...) that take float inputs.

        Those of the main graph, then those of loop bodies and branches (`nested`; the
        control-flow op itself is in `float_ops()`). A nested op whose input types ONNX
        shape inference could not tell ("unknown") counts as float: the safe side of
        "runs in int8".
        """
        return [
            op
            for op in (*self.ops, *self.nested)
            if op.op in names and (op.is_float or (op.graph and _UNKNOWN in op.input_dtypes[:2]))
        ]

    def float_io(self) -> list[TensorInfo]:
        """The inputs and outputs of the graph that are floating point."""
        return [t for t in (*self.inputs, *self.outputs) if _is_float(t.dtype)]

    def is_fully_integer(self) -> bool:
        """True when the file is integer end to end, its inputs and outputs included.

        That is: every input and output is an integer tensor (int8, uint8, int16...)
        and no op computes on floats (`float_ops()` is empty), what integer-only
        accelerators (Edge TPU, NPUs, microcontrollers without an FPU) need. A file
        with int8 kernels behind a float input QUANTIZE and a float output DEQUANTIZE
        is not.

        Returns:
            The bool; False when the census does not know the file's inputs and
            outputs.
        """
        return bool(self.inputs and self.outputs) and not self.float_io() and not self.float_ops()

    def integer_summary(self) -> str:
        """Whether the file is fully integer, I/O included, in words.

        For example "yes (int8 input, int8 output)", "no — float input/output
        (float32); compute ops all integer", or "no — ops left in float: CONV_2D x2,
        FULLY_CONNECTED; float input/output (float32)".

        Returns:
            The sentence (`tfopt inspect` prints it after "fully integer: ").
        """
        if not (self.inputs and self.outputs):
            return "unknown: the census does not list the file's inputs and outputs"

        def io(kind, tensors):
            dtypes = "/".join(dict.fromkeys(t.dtype for t in tensors))
            return f"{dtypes} {kind}{'s' if len(tensors) > 1 else ''}"

        if self.is_fully_integer():
            return f"yes ({io('input', self.inputs)}, {io('output', self.outputs)})"
        reasons = []
        names = [op.op for op in self.float_ops()]
        if names:
            counts = {n: names.count(n) for n in dict.fromkeys(names)}
            shown = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in counts.items())
            reasons.append(f"ops left in float: {shown}")
        float_io = self.float_io()
        if float_io:
            kinds = [
                kind
                for kind, tensors in (("input", self.inputs), ("output", self.outputs))
                if any(t in float_io for t in tensors)
            ]
            dtypes = ", ".join(dict.fromkeys(t.dtype for t in float_io))
            reasons.append(f"float {'/'.join(kinds)} ({dtypes})")
        if not names:
            reasons.append("compute ops all integer")
        return "no — " + "; ".join(reasons)

    def dtype_summary(self) -> dict[str, dict[str, int]]:
        """{op type: {"in dtypes -> out dtypes": count}}."""
        out: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for op in self.ops:
            out[op.op][f"{','.join(op.input_dtypes)} -> {','.join(op.output_dtypes)}"] += 1
        return {k: dict(v) for k, v in out.items()}

    def table(self) -> str:
        """A printable table: op type, count, input dtypes -> output dtypes."""
        rows = [("op", "count", "input dtypes -> output dtypes")]
        for name, variants in self.dtype_summary().items():
            for sig, n in variants.items():
                rows.append((name, str(n), sig))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _np_name(dtype) -> str:
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(getattr(dtype, "__name__", dtype))


def tflite_census(path: Path) -> OpCensus:
    """Lists the ops of a `.tflite` file with their input/output dtypes, read by LiteRT.

    The census of the built-in "tflite" `ExportFormat`: `op_census` calls it for a
    file ending in `.tflite`.

    Example:

    ```python
    census = tflite_census(Path("model_int8.tflite"))
    assert census.format == "tflite" and "CONV_2D" in census.counts()
    ```

    Args:
        path: the `.tflite` file.

    Returns:
        An `OpCensus` of format "tflite", its ops in the interpreter's order.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    try:
        it.allocate_tensors()
    except RuntimeError:
        pass  # dtypes are known without allocation
    tensors = {t["index"]: t for t in it.get_tensor_details()}

    def dtypes(indices):
        return tuple(
            _np_name(tensors[int(i)]["dtype"])
            for i in indices
            if int(i) >= 0 and int(i) in tensors
        )

    ops = tuple(
        OpInfo(int(op["index"]), op["op_name"], dtypes(op["inputs"]), dtypes(op["outputs"]))
        for op in it._get_ops_details()
    )
    nested = _tflite_nested(path) if any(op.op in _TFLITE_CALLS for op in ops) else ()
    return OpCensus(str(path), "tflite", ops, *_tflite_io(it), nested=nested)


# TFLite ops that run other subgraphs of the file.
_TFLITE_CALLS = ("WHILE", "IF", "CALL_ONCE", "STABLEHLO_WHILE", "STABLEHLO_CASE")


def _tflite_nested(path) -> tuple[OpInfo, ...]:
    """The ops of a .tflite file's subgraphs after the first, read from the flatbuffer.

    LiteRT's Python interpreter lists the main subgraph's ops only.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))

    def dtypes(graph, indices):
        return tuple(
            flatbuffer_utils.type_to_name(graph.tensors[int(i)].type).lower()
            for i in ([] if indices is None else indices)
            if int(i) >= 0
        )

    return tuple(
        OpInfo(
            index,
            flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) or "UNKNOWN",
            dtypes(graph, op.inputs),
            dtypes(graph, op.outputs),
            graph=number,
        )
        for number, graph in enumerate(model.subgraphs[1:], start=1)
        for index, op in enumerate(graph.operators or [])
    )


def _tflite_io(it):
    """(inputs, outputs) as TensorInfo: by signature name where the file has a signature."""
    signatures = it.get_signature_list()
    if signatures:
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        runner = it.get_signature_runner(key)
        return tuple(
            tuple(TensorInfo(name, _np_name(d["dtype"])) for name, d in details.items())
            for details in (runner.get_input_details(), runner.get_output_details())
        )
    return tuple(
        tuple(TensorInfo(d["name"], _np_name(d["dtype"])) for d in details)
        for details in (it.get_input_details(), it.get_output_details())
    )


def onnx_census(path: Path) -> OpCensus:
    """Lists the nodes of an `.onnx` file with their input/output dtypes.

    The census of the built-in "onnx" `ExportFormat`: `op_census` calls it for a
    file ending in `.onnx`. Dtypes come from the graph's inputs, outputs,
    initializers and ONNX shape inference; a tensor whose type is unknown is left out.
    An input produced by DequantizeLinear (directly, or through MaxPool, Reshape,
    Transpose and other ops that only move values) is listed with the integer type
    it dequantizes, so a QDQ file's Conv reads "uint8,int8,int32" and a weight left
    in float shows as "float32".

    Example:

    ```python
    census = onnx_census(Path("model.onnx"))
    assert census.format == "onnx" and "Conv" in census.counts()
    ```

    Args:
        path: the `.onnx` file.

    Returns:
        An `OpCensus` of format "onnx", its ops in graph node order.
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:
        pass
    types = {}
    for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        types[vi.name] = vi.type.tensor_type.elem_type
    for init in model.graph.initializer:
        types[init.name] = init.data_type
    producers = {out: node for node in model.graph.node for out in node.output}

    def stored(name):
        """The integer tensor a DequantizeLinear feeds `name` from, if any.

        Followed through ops that move values without computing (ONNX Runtime's QDQ
        propagation runs them in int8).
        """
        seen = 0
        while name in producers and seen < 16:
            node = producers[name]
            if node.op_type == "DequantizeLinear":
                return node.input[0]
            if node.op_type not in _QDQ_TRANSPARENT or not node.input:
                break
            name, seen = node.input[0], seen + 1
        return None

    def dtypes(names):
        names = [stored(n) or n for n in names]  # QDQ: the integer type stored
        return tuple(
            _np_name(helper.tensor_dtype_to_np_dtype(types[n])) for n in names if n in types
        )

    ops = tuple(
        OpInfo(i, node.op_type, dtypes(node.input), dtypes(node.output))
        for i, node in enumerate(model.graph.node)
    )
    nested = []

    def typed(names):
        """dtypes(), with "unknown" for a named tensor of no known type."""
        return tuple((dtypes([n]) or (_UNKNOWN,))[0] for n in names if n)

    def walk(graph):
        for node in graph.node:
            for attr in node.attribute:
                for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    for vi in [*sub.input, *sub.output, *sub.value_info]:
                        if vi.type.tensor_type.elem_type:  # 0: type not known
                            types.setdefault(vi.name, vi.type.tensor_type.elem_type)
                    for init in sub.initializer:
                        types.setdefault(init.name, init.data_type)
                    producers.update({out: n for n in sub.node for out in n.output})
                    number = len({op.graph for op in nested}) + 1
                    nested.extend(
                        OpInfo(i, n.op_type, typed(n.input), typed(n.output), graph=number)
                        for i, n in enumerate(sub.node)
                    )
                    walk(sub)

    walk(model.graph)
    initializers = {init.name for init in model.graph.initializer}  # inputs before IR 4

    def graph_io(values):
        return tuple(
            TensorInfo(v.name, _np_name(helper.tensor_dtype_to_np_dtype(types[v.name])))
            for v in values
            if v.name not in initializers and types.get(v.name)
        )

    return OpCensus(
        str(path),
        "onnx",
        ops,
        graph_io(model.graph.input),
        graph_io(model.graph.output),
        nested=tuple(nested),
    )


# ONNX ops that move or select values: a DequantizeLinear before them still makes the
# consumer's input integer once ONNX Runtime propagates the QDQ pair.
_QDQ_TRANSPARENT = (
    "MaxPool",
    "Reshape",
    "Transpose",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Pad",
    "Identity",
    "Slice",
)


def op_census(path, *, file_format: str | None = None) -> OpCensus:
    """Lists the ops of a `.tflite` or `.onnx` file with their input/output dtypes.

    Args:
        path: the exported file (str or os.PathLike).
        file_format: the registered format's name ("tflite", "onnx"...).
            Defaults to `None`: told by the file's ending.

    Returns:
        An `OpCensus`.

    Raises:
        TypeError: `path` is not a str or os.PathLike (e.g. a Keras model).
        FileNotFoundError: no such file.
        ValueError: a file ending no registered format has (`.tflite`, `.onnx`...).
    """
    fmt = formats.format_for(path) if file_format is None else formats.get_format(file_format)
    path = _files.check_input_path(path)
    if path.stat().st_size == 0:
        raise ValueError(f"Argument `path`: '{path}' is empty, not a {fmt.name} file.")
    try:
        return fmt.census(path)
    except Exception as err:  # the readers raise their own kinds (flatbuffers, protobuf)
        from tfopt.export._runtime import _unreadable

        raise ValueError(_unreadable(path, fmt, err, file_format)) from err
