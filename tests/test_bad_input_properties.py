"""Bad input, everywhere (issue #13): property-based tests of the public API and the CLI.

Property: a call with a wrong argument either succeeds, or raises ValueError, TypeError,
FileNotFoundError or PermissionError (ParityError is a ValueError) whose message names the
argument at fault: "Argument `path`" or "path=...", and from the CLI the flag or positional
(`--data`, `MODEL`, ...) with no Python argument name, exit status 2. Anything else
(AttributeError, IndexError, OSError, a TensorFlow, protobuf or runtime error, a message
naming nothing) fails.

FINDINGS lists the 35 kinds of input that broke the property when this file was written
(raw errors, unnamed arguments, crashes of `main()`); all were fixed and are part of the
strategies. `TFOPT_BAD_INPUT_FINDINGS=0` leaves them out (to compare). Each property
counts the examples it tried; the last test prints the counts.
"""

import collections
import contextlib
import io
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfopt import distillation, export, pruning
from tfopt import quantization as tq
from tfopt.cli import main

# Calls that break the property today, found by this file (left out of the strategies).
FINDINGS = {
    "F01": "export.file_sizes(None | 3 | b'x' | [...]): raw TypeError 'expected str, bytes or "
    "os.PathLike object, not NoneType', no `path`",
    "F02": "export.file_sizes(<missing file> | <directory> | <name under a file> | 'a\\x00'): "
    "FileNotFoundError '[Errno 2] ...' without `path`, IsADirectoryError, NotADirectoryError, "
    "ValueError 'embedded null byte'",
    "F03": "op_census / benchmark_latency / verify of a missing file or a directory: "
    "FileNotFoundError \"No such file: '...'\" without `path`",
    "F04": "corrupt files: op_census(<text .tflite>) ValueError 'The model is not a valid "
    "Flatbuffer buffer', <empty .tflite> 'mmap of size 0 requested'; op_census(<text .onnx>) "
    "protobuf DecodeError; verify / benchmark_latency(<text or empty .onnx>) onnxruntime "
    "InvalidProtobuf / InvalidArgument; verify(<.tflite>, file_format='onnx') InvalidProtobuf",
    "F05": "to_tflite / to_onnx(model, path=''): ValueError \"PosixPath('.') has an "
    'empty name" (raised while building the error message)',
    "F06": "to_tflite / to_onnx(path with a NUL byte): ValueError 'embedded null byte'",
    "F07": "a file name over 255 bytes: OSError '[Errno 36] File name too long' from every "
    "exporter and reader",
    "F08": "data arrays of str / bytes / object-with-str dtype: ValueError 'could not convert "
    "string to float: ...' (representative_data, verify_data, inputs)",
    "F09": "data given as a callable that returns a non-iterable (lambda: 3): TypeError "
    "\"'int' object is not iterable\"; as a callable taking arguments (a Keras layer or "
    "model, lambda x: x): its own TypeError, e.g. \"missing a required argument: 'inputs'\"",
    "F10": "a two-input model given one array, or a generator / dataset of single arrays: "
    "IndexError 'list index out of range' (tfopt/export/_data.py collect)",
    "F11": "verify(batch_size=0 | -1): ValueError 'range() arg 3 must not be zero' / "
    "IndexError; verify(num_threads='x' | 0): LiteRT 'type of num_threads should be int' / "
    "'num_threads should >= 1'",
    "F12": "benchmark_latency(runs=True): TypeError 'expected a sequence of integers or a "
    "single integer'; seed='x' / seed=-1: numpy 'SeedSequence expects int ...' / 'expected "
    "non-negative integer'",
    "F13": "input_signature=3: RuntimeError 'TFLite conversion ... failed: TypeError: "
    "'NoneType' object is not callable'; input_signature=(None, 5): Keras 'Exception "
    "encountered when calling Sequential.call()'; verify(input_signature=3) blames `inputs`",
    "F14": "sparsity_report(model, m_by_n=(4, 2)): the message names `sparsity_m_by_n`, the "
    "argument is `m_by_n`",
    "F15": "prune_low_magnitude(pruning_schedule={'class_name': 'ConstantSparsity', 'config': "
    "{...}}): Keras TypeError 'Could not locate class ...' without `pruning_schedule`",
    "F16": "an ndarray where a name is expected: prune_low_magnitude(block_pooling_type= | "
    "mask_type=), to_tflite(sparse= | int8_io=), to_onnx(<QAT model>, qdq_format=), "
    "QuantizationConfig.from_preset(), LayerSpec(kind=), quantize_model(preserve_sparsity=): "
    "ValueError 'The truth value of an "
    "array with more than one element is ambiguous'",
    "F17": "prune_low_magnitude(seed='x' | -1): numpy 'SeedSequence expects int ...' / "
    "'expected non-negative integer'",
    "F18": "PolynomialDecay(power=nan | -3) accepted, schedule(step) gives sparsity nan / -5.6 / "
    "-inf; power > 3.4e38 and begin_step / end_step / frequency >= 2**63 accepted, "
    'schedule(step) raises ValueError "Can\'t convert Python sequence ... out of range"',
    "F19": "Distiller(t, s, FeatureDistillation(teacher_layer_name='nope')): Keras ValueError "
    "'In teacher model: No such layer: nope' naming no argument",
    "F20": "LinearSchedule(8.0, 2.0, 4)(None | '1'): TypeError \"'>' not supported between "
    "instances of 'int' and 'NoneType'\"",
    "F21": "quantize_model(<a QAT model> | <an unbuilt Sequential>): 'Model ... is already "
    "quantized' / 'Sequential model ... has no input shape yet', without `to_quantize`",
    "F22": "a two-input model given a generator / callable / dataset whose element holds "
    "different numbers of samples, e.g. lambda: iter([[np.ones((2, 4)), np.zeros((0, 2))]]): "
    "int8 calibration fails in the converter (RuntimeError 'concatenation.cc:215 ... failed "
    "to prepare'), verify_data is blamed as `inputs` ('inputs hold different numbers of "
    "samples [2, 0]'), 2 against 3 samples pass silently",
    "F23": "verify / op_census(file_format=<list | dict | ndarray>): TypeError 'unhashable "
    "type: ...' without `file_format`",
    "F24": "Distiller(t, s, SoftDistillation(temperature=1e39)): SoftDistillation accepts it, "
    "the Distiller raises ValueError \"Can't convert Python sequence with a value out of "
    'range for a double-precision float" creating its float32 temperature variable',
    "C01": "tfopt export --data <wrong shape | rank | NaN | empty | scalar | .npz>: the error "
    "names `representative_data` / `verify_data`, not --data",
    "C02": 'tfopt export --data missing.npy: "[Errno 2] No such file ..." without --data',
    "C03": "tfopt export --data <text file | object array>: numpy's 'This file contains pickled "
    "(object) data ... `allow_pickle=` ...' / 'Object arrays cannot be loaded when "
    "allow_pickle=False', no --data",
    "C04": "tfopt export --data <str array .npy>: 'could not convert string to float'",
    "C05": "tfopt export --data <directory>: IsADirectoryError escapes main()",
    "C06": "tfopt export m.keras o.tflite --quantization int8 (no --data): 'pass "
    "`representative_data`, e.g. representative_data=x_train[:200]'",
    "C07": "tfopt export m.keras o.tflite --int8-io: 'Argument `int8_io=True` needs ... "
    "Received: quantization='float32''",
    "C08": "tfopt export m.keras o.onnx --opset 3: 'Argument `opset` ... Received: opset=3', "
    "not --opset",
    "C09": "tfopt export m.keras <OUTPUT in a missing directory | a directory | /proc>: "
    "'Argument `path` ... Received: path=...', not output",
    "C10": "tfopt inspect <text | empty .tflite>: 'The model is not a valid Flatbuffer buffer' "
    "without FILE; <text .onnx>: protobuf DecodeError escapes main(); <empty .onnx>: "
    "onnxruntime InvalidArgument escapes main()",
    "C11": "tfopt inspect <missing file>: '[Errno 2] No such file ...'; <x.keras>: 'Argument "
    "`path` has no known file ending ... path='; <directory> or '': IsADirectoryError "
    "escapes main()",
}
INCLUDE_FINDINGS = os.environ.get("TFOPT_BAD_INPUT_FINDINGS", "1") == "1"
COUNTS = collections.defaultdict(collections.Counter)
ALLOWED = (ValueError, TypeError, FileNotFoundError, PermissionError)
SETTINGS = {
    "deadline": None,
    "database": None,  # no example database kept under .hypothesis/
    "print_blob": True,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
}


def finding(fid, strategy):
    """`strategy` when known findings are included in this run, else nothing."""
    assert fid in FINDINGS, fid
    return strategy if INCLUDE_FINDINGS else st.nothing()


def names(message, name):
    """True when `message` names the Python argument `name`: `name`, `name=...` or name=."""
    return (
        f"`{name}`" in message
        or f"`{name}=" in message
        or re.search(rf"(?<![\w\-.]){re.escape(name)}=", message) is not None
    )


def check(key, at_fault, fn, *args, **kwargs):
    """Calls `fn`; fails unless it succeeds or raises an allowed error naming `at_fault`.

    A ParityError may name `parity_bar` instead: it is the documented answer to a file
    that misses its bar, and parity_bar= is the way out it offers.
    """
    at_fault = {at_fault} if isinstance(at_fault, str) else set(at_fault)
    COUNTS[key]["examples"] += 1
    try:
        result = fn(*args, **kwargs)
    except ALLOWED as err:
        blamed = at_fault | ({"parity_bar"} if isinstance(err, export.ParityError) else set())
        assert any(names(str(err), n) for n in blamed), (
            f"{key}: {type(err).__name__} names none of {sorted(at_fault)}: {err}"
        )
        COUNTS[key][type(err).__name__] += 1
        return None
    except Exception as err:
        raise AssertionError(
            f"{key}: raw {type(err).__module__}.{type(err).__name__} (at fault: "
            f"{sorted(at_fault)}): {err}"
        ) from err
    COUNTS[key]["ok"] += 1
    return result


def tried(key, minimum):
    assert COUNTS[key]["examples"] >= minimum, dict(COUNTS[key])


def one_fault(valid, bad):
    """(kwargs, name): `valid` (a strategy of kwargs) with argument `name` drawn from
    `bad[name]` instead; name None leaves every argument valid."""

    @st.composite
    def build(draw):
        kwargs = dict(draw(valid))
        name = draw(st.sampled_from([None, *(n for n, s in bad.items() if not s.is_empty)]))
        if name is not None:
            kwargs[name] = draw(bad[name])
        return kwargs, name

    return build()


# --------------------------------------------------------------------------- shared kit


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """Built once: a Dense(3) on (4,) inputs, a two-input model, a QAT model with observed
    ranges, a pruned model, a teacher and a student; exported files and broken files."""
    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("bad-input")
    rng = np.random.default_rng(0)
    dense = keras.Sequential(
        [keras.Input((4,), name="x"), keras.layers.Dense(3, name="logits")], name="dense"
    )
    a, b = keras.Input((4,), name="a"), keras.Input((2,), name="b")
    two = keras.Model(
        [a, b], keras.layers.Dense(3)(keras.layers.Concatenate()([a, b])), name="two"
    )
    qat = tq.quantize_model(dense)
    qat(rng.standard_normal((16, 4)).astype("float32"), training=True)  # observes its ranges
    teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="teacher")
    student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="student")
    files, out = root / "files", root / "out"
    files.mkdir()
    out.mkdir()
    export.to_tflite(dense, files / "dense.tflite")
    export.to_onnx(dense, files / "dense.onnx")
    export.to_tflite(two, files / "two.tflite")
    dense.save(files / "dense.keras")
    for name, content in {
        "text.tflite": b"hello",
        "empty.tflite": b"",
        "text.onnx": b"hello",
        "empty.onnx": b"",
        "text.keras": b"hello",
        "empty.keras": b"",
        "notes.txt": b"hello",
        "plain-file.tflite": b"x",
        "plain-file.onnx": b"x",
        "text.npy": b"hello",
    }.items():
        (files / name).write_bytes(content)
    for name in ("a-directory.tflite", "a-directory.onnx", "a-directory.keras"):
        (files / name).mkdir()
    for name, array in {
        "good": rng.standard_normal((8, 4)).astype("float32"),
        "wrong-shape": np.zeros((8, 5), "float32"),
        "wrong-rank": np.zeros((8, 4, 1), "float32"),
        "nan": np.full((3, 4), np.nan, "float32"),
        "empty": np.zeros((0, 4), "float32"),
        "scalar": np.float32(1.0),
        "strings": np.array([["a"] * 4] * 3),
    }.items():
        np.save(files / f"{name}.npy", array)
    np.save(files / "objects.npy", np.array([1, None], dtype=object), allow_pickle=True)
    np.savez(files / "archive.npz", x=np.zeros((3, 4)))
    return {
        "files": files,
        "out": out,
        "dense": dense,
        "two": two,
        "qat": qat,
        "pruned": pruning.prune_low_magnitude(dense),
        "teacher": teacher,
        "student": student,
        "distiller": distillation.Distiller(teacher, student),
        "x": rng.standard_normal((8, 4)).astype("float32"),
    }


# ------------------------------------------------------------------------- strategies

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.binary(max_size=6),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(np.zeros((2, 2))),
    st.just(object()),
    st.builds(lambda: keras.layers.Dense(2)),
)
JUNK_NO_ARRAY = JUNK.filter(lambda v: not isinstance(v, np.ndarray))
NOT_STR = JUNK.filter(lambda v: not isinstance(v, str))
NOT_INT = JUNK.filter(lambda v: not isinstance(v, int) or isinstance(v, bool))
NOT_NUMBER = JUNK.filter(lambda v: not isinstance(v, (int, float)) or isinstance(v, bool))
NOT_BOOL = JUNK.filter(lambda v: not isinstance(v, bool))
NOT_DATA = JUNK.filter(lambda v: not callable(v)) | finding("F09", JUNK.filter(callable))
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
NAMES = st.text(alphabet="abcxyz019_-. é", min_size=1, max_size=10).filter(
    lambda n: n not in (".", "..")
)
AN_ARRAY = st.just(np.zeros(2))


def hashable(value):
    try:
        hash(value)
    except TypeError:
        return False
    return True


def output_paths(kit, suffix):
    """Output paths: good ones, wrong endings, missing or odd directories, non-paths."""
    out, files = kit["out"], kit["files"]
    other = ".onnx" if suffix == ".tflite" else ".tflite"
    endings = st.sampled_from([other, ".keras", ".txt", "", ".tfl", f"{suffix}.bak"])
    return st.one_of(
        NAMES.map(lambda n: str(out / f"{n}{suffix}")),
        NAMES.map(lambda n: out / f"{n}{suffix.upper()}"),
        st.tuples(NAMES, endings).map(lambda t: str(out / f"{t[0]}{t[1]}")),
        NAMES.map(lambda n: str(out / "no-such-dir" / f"{n}{suffix}")),
        st.sampled_from(
            [
                str(files / f"a-directory{suffix}"),
                str(files / f"plain-file{suffix}" / f"x{suffix}"),
                f"/proc/no-such-place{suffix}",
            ]
        ),
        NOT_STR,
        finding("F05", st.just("")),
        finding("F06", NAMES.map(lambda n: str(out / f"{n}\x00{suffix}"))),
        finding("F07", st.just(str(out / ("x" * 300 + suffix)))),
    )


def input_paths(kit):
    """Files to read: good ones, wrong endings, non-paths; missing and corrupt are findings."""
    files = kit["files"]
    return st.one_of(
        st.sampled_from([files / "dense.tflite", str(files / "dense.onnx")]),
        st.sampled_from([str(files / "notes.txt"), str(files / "dense.keras"), str(files)]),
        NAMES.map(lambda n: str(files / f"{n}.md")),
        NOT_STR,
        finding("F03", NAMES.map(lambda n: str(files / f"missing-{n}.tflite"))),
        finding("F03", st.just(str(files / "a-directory.onnx"))),
        finding("F04", st.sampled_from([files / n for n in ("text.tflite", "empty.tflite")])),
        finding("F04", st.sampled_from([files / "text.onnx", files / "empty.onnx"])),
        finding("F07", st.just(str(files / ("x" * 300 + ".tflite")))),
    )


ANY_ARRAY = st.sampled_from(
    ["float32", "float64", "float16", "int8", "int32", "int64", "uint8", "bool", "complex64"]
).flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0)))
NESTED = st.recursive(
    ANY_FLOAT | st.integers(-3, 3), lambda children: st.lists(children, max_size=4), max_leaves=12
)
SCALARS = st.one_of(
    st.booleans(),
    st.integers(),
    ANY_FLOAT,
    st.text(max_size=5),
    st.binary(max_size=5),
    st.builds(np.float32, st.floats(width=32)),
)
STRING_ARRAYS = st.one_of(
    hnp.arrays(st.sampled_from(["U3", "S3"]), hnp.array_shapes(min_dims=1, max_dims=3)),
    st.just(np.array([["a"] * 4] * 3, dtype=object)),
)


def rows(width, n=None):
    """float32 arrays of `width` features and `n` (else 0..5) samples, NaN and Inf among them."""
    count = st.integers(0, 5) if n is None else st.just(n)
    elements = st.floats(allow_nan=True, allow_infinity=True, width=32)
    return hnp.arrays("float32", st.tuples(count, st.just(width)), elements=elements)


def batches(element, slices):
    """A callable giving a fresh iterator, or a generator, of `element`s; or a
    tf.data.Dataset of the slices of `slices`."""
    listed = st.lists(element, max_size=3)
    return st.one_of(
        listed.map(lambda xs: lambda: iter(xs)),
        listed.map(lambda xs: (x for x in xs)),
        slices.map(tf.data.Dataset.from_tensor_slices),
    )


def single_input_data():
    """Data for the (4,)-input model: arrays of any shape and dtype, right-shaped rows with
    NaN/Inf or no rows, nested lists, dicts with wrong keys, scalars, generators, datasets."""
    arrays = ANY_ARRAY | rows(4)
    return st.one_of(
        arrays,
        rows(4),
        NESTED,
        st.dictionaries(st.sampled_from(["x", "a", "input", ""]) | st.text(max_size=4), arrays),
        st.fixed_dictionaries({"x": arrays}),
        SCALARS,
        st.lists(arrays, max_size=3),
        batches(arrays, hnp.arrays("float32", hnp.array_shapes(min_dims=1, max_dims=3))),
        finding("F08", STRING_ARRAYS),
        finding("F09", st.sampled_from([lambda: 3, keras.layers.Dense(2)])),
    )


def two_input_data():
    """Data for the model with inputs a (4,) and b (2,): lists, tuples and dicts of arrays."""
    arrays = ANY_ARRAY | rows(4) | rows(2)
    pair = st.tuples(rows(4), rows(2))
    even_pair = st.integers(0, 5).flatmap(lambda n: st.tuples(rows(4, n), rows(2, n)))
    return st.one_of(
        st.lists(arrays, max_size=3),
        pair.map(list),
        pair.map(lambda p: {"a": p[0], "b": p[1]}),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), arrays, max_size=3),
        st.tuples(pair, rows(3)),
        NESTED,
        SCALARS,
        batches(even_pair.map(list), even_pair),
        finding("F22", batches(pair.map(list), st.nothing())),
        finding("F10", ANY_ARRAY | batches(rows(4), rows(4))),
    )


# ------------------------------------------------------------------------- export

EXPORTERS = {
    "to_tflite": (export.to_tflite, ".tflite"),
    "to_onnx": (export.to_onnx, ".onnx"),
    "export_model": (export.export_model, ".onnx"),
}


def test_exporters_refuse_a_wrong_model(kit):
    built_layer = keras.layers.Dense(2)
    built_layer.build((None, 4))
    models = st.one_of(
        JUNK.map(lambda v: v),  # one branch, not eleven: the models below get a third
        st.sampled_from(
            [
                keras.Sequential([keras.layers.Dense(2)]),
                _Subclassed(),
                built_layer,
                keras.Model,
                tf.Module(),
                kit["distiller"],
                lambda x: x,
            ]
        ),
        hnp.arrays("float32", hnp.array_shapes(max_dims=3)),
    )

    @settings(max_examples=80, **SETTINGS)
    @given(name=st.sampled_from([*EXPORTERS, "verify"]), model=models)
    def prop(name, model):
        if name == "verify":
            check(
                "export: model",
                "model",
                export.verify,
                kit["files"] / "dense.tflite",
                model,
                kit["x"],
            )
        else:
            fn, suffix = EXPORTERS[name]
            check("export: model", "model", fn, model, kit["out"] / f"model{suffix}")

    prop()
    tried("export: model", 40)


def test_exporters_refuse_a_wrong_output_path(kit):
    @settings(max_examples=100, **SETTINGS)
    @given(data=st.data(), name=st.sampled_from(list(EXPORTERS)))
    def prop(data, name):
        fn, suffix = EXPORTERS[name]
        path = data.draw(output_paths(kit, suffix), label="path")
        result = check("export: path", "path", fn, kit["dense"], path)
        if result is not None:
            assert os.path.isfile(result.path)

    prop()
    tried("export: path", 50)


def test_readers_refuse_a_wrong_path(kit):
    """op_census, benchmark_latency, verify and file_sizes on wrong paths."""
    files = kit["files"]
    readers = {
        "op_census": export.op_census,
        "benchmark_latency": lambda p: export.benchmark_latency(p, warmup=0, runs=2),
        "verify": lambda p: export.verify(p, kit["dense"], kit["x"]),
    }
    sizes_paths = st.one_of(
        st.sampled_from([files / "dense.tflite", str(files / "notes.txt")]),
        finding("F01", NOT_STR),
        finding("F02", st.sampled_from([files / "missing.tflite", files, files / "a\x00.tflite"])),
    )

    @settings(max_examples=100, **SETTINGS)
    @given(data=st.data(), name=st.sampled_from([*readers, "file_sizes"]))
    def prop(data, name):
        if name == "file_sizes":
            path = data.draw(sizes_paths, label="path")
            sizes = check("readers: path", "path", export.file_sizes, path)
            assert sizes is None or sizes[0] == os.path.getsize(path)
        else:
            check("readers: path", "path", readers[name], data.draw(input_paths(kit)))

    prop()
    tried("readers: path", 50)


def test_to_tflite_refuses_wrong_options(kit):
    quantizations = st.one_of(
        JUNK,
        st.sampled_from(export.QUANTIZATIONS).map(str.upper),
        st.sampled_from(["int4", "int8 ", "fp16", "uint8", "float", "Dynamic", "int8", "int16x8"]),
    )
    bad = {
        "quantization": quantizations,
        "num_calibration_samples": st.integers(max_value=0) | NOT_INT,
        "parity_bar": JUNK.filter(lambda v: v is not None and v is not False)
        | st.just(export.ParityBar()),
        "int8_io": JUNK_NO_ARRAY.filter(lambda v: bool(v)) | finding("F16", AN_ARRAY),
        "representative_data": NOT_DATA,
        "sparse": JUNK_NO_ARRAY | finding("F16", AN_ARRAY),
    }
    valid = st.sampled_from(
        [
            {},
            {"quantization": "int8", "representative_data": kit["x"]},
            {"quantization": "dynamic"},
        ]
    )

    @settings(max_examples=80, **SETTINGS)
    @given(case=one_fault(valid, bad))
    def prop(case):
        kwargs, name = case
        # int8 without data, or int8_io without int8, is answered naming the other argument.
        at_fault = {name, "quantization", "representative_data", "int8_io"}
        if name in ("num_calibration_samples", "parity_bar", "sparse"):
            at_fault = {name}
        check(
            "to_tflite: options",
            at_fault,
            export.to_tflite,
            kit["dense"],
            kit["out"] / "o.tflite",
            **kwargs,
        )

    prop()
    tried("to_tflite: options", 40)


def test_to_onnx_refuses_wrong_options(kit):
    bad = {
        "opset": st.integers(-50, 50) | st.integers() | JUNK,
        "qdq_format": st.one_of(
            JUNK_NO_ARRAY,
            st.sampled_from(["s8s8", "u8u8", "S8S8", "int8", "qdq"]),
            finding("F16", AN_ARRAY),
        ),
        "parity_bar": JUNK.filter(lambda v: v is not None and v is not False),
        "verify_data": NOT_DATA,
    }

    @settings(max_examples=80, **SETTINGS)
    @given(case=one_fault(st.just({}), bad), model=st.sampled_from(["dense", "qat"]))
    def prop(case, model):
        kwargs, name = case
        check(
            "to_onnx: options",
            name or "opset",
            export.to_onnx,
            kit[model],
            kit["out"] / "o.onnx",
            **kwargs,
        )

    prop()
    tried("to_onnx: options", 40)


def test_export_model_refuses_options_its_exporter_lacks(kit):
    keys = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True) | st.sampled_from(
        ["quantization", "opset", "qdq_format", "int8_io", "num_calibration_samples", "sparse"]
    )
    keys = keys.filter(lambda k: INCLUDE_FINDINGS or k != "input_signature")  # F13
    # Not the names of check()'s own parameters: key="fn" made check() fail, not tfopt.
    keys = keys.filter(lambda k: k not in ("key", "at_fault", "fn"))

    values = NOT_DATA.filter(lambda v: not isinstance(v, np.ndarray)) | finding("F16", AN_ARRAY)

    @settings(max_examples=60, **SETTINGS)
    @given(key=keys, value=values, suffix=st.sampled_from([".tflite", ".onnx"]))
    def prop(key, value, suffix):
        options = {key: value}
        check(
            "export_model: **options",
            key,
            export.export_model,
            kit["dense"],
            kit["out"] / f"e{suffix}",
            **options,
        )

    prop()
    tried("export_model: **options", 30)


def test_sample_data_is_checked_everywhere(kit):
    """representative_data, verify_data and inputs: wrong shapes, ranks, dtypes, NaN/Inf,
    empty arrays, nested lists, dicts with wrong keys, scalars, generators, datasets."""
    out = kit["out"]
    targets = {
        "representative_data": lambda m, d: export.to_tflite(
            m, out / "int8.tflite", "int8", representative_data=d
        ),
        "verify_data": lambda m, d: export.to_tflite(m, out / "float.tflite", verify_data=d),
        "verify_data (onnx)": lambda m, d: export.to_onnx(m, out / "v.onnx", verify_data=d),
        "inputs": lambda m, d: export.verify(kit["files"] / f"{m.name}.tflite", m, d),
    }

    @settings(max_examples=200, **SETTINGS)
    @given(
        data=st.data(),
        target=st.sampled_from(list(targets)),
        model=st.sampled_from(["dense", "two"]),
    )
    def prop(data, target, model):
        sample = data.draw(single_input_data() if model == "dense" else two_input_data(), "data")
        check("data arguments", target.split(" ")[0], targets[target], kit[model], sample)

    prop()
    tried("data arguments", 100)


def test_int8_calibration_on_another_scale_than_verify_data(kit):
    @settings(max_examples=30, **SETTINGS)
    @given(calibration=rows(4), scale=st.floats(1e-6, 1e6))
    def prop(calibration, scale):
        check(
            "representative_data + verify_data",
            {"representative_data", "verify_data"},
            export.to_tflite,
            kit["dense"],
            kit["out"] / "both.tflite",
            "int8",
            representative_data=calibration,
            verify_data=kit["x"] * np.float32(scale),
        )

    prop()
    tried("representative_data + verify_data", 15)


def test_verify_census_and_latency_refuse_wrong_options(kit):
    tflite = kit["files"] / "dense.tflite"
    formats = st.one_of(
        (JUNK | st.text(max_size=6)).filter(lambda v: hashable(v) and v != "onnx"),
        finding("F04", st.just("onnx")),
        finding("F23", JUNK.filter(lambda v: not hashable(v))),
    )
    calls = st.one_of(
        st.tuples(st.sampled_from(["verify", "op_census"]), st.just("file_format"), formats),
        st.tuples(st.just("verify"), st.just("batch_size"), finding("F11", st.integers(-2, 0))),
        st.tuples(st.just("verify"), st.just("num_threads"), finding("F11", st.just("x"))),
        st.tuples(st.just("verify"), st.just("input_signature"), finding("F13", st.just(3))),
        st.tuples(
            st.just("benchmark_latency"),
            st.sampled_from(["num_threads", "runs"]),
            st.integers(max_value=0) | NOT_INT.filter(lambda v: v is not True),
        ),
        st.tuples(
            st.just("benchmark_latency"), st.just("warmup"), st.integers(max_value=-1) | NOT_INT
        ),
        st.tuples(st.just("benchmark_latency"), st.just("runs"), finding("F12", st.just(True))),
        st.tuples(
            st.just("benchmark_latency"),
            st.just("seed"),
            finding("F12", st.text(max_size=3) | st.integers(max_value=-1)),
        ),
    )

    @settings(max_examples=80, **SETTINGS)
    @given(call=calls)
    def prop(call):
        function, name, value = call
        options = {name: value}
        if function == "verify":
            check(
                "verify/census/latency: options",
                name,
                export.verify,
                tflite,
                kit["dense"],
                kit["x"],
                **options,
            )
        elif function == "op_census":
            check("verify/census/latency: options", name, export.op_census, tflite, **options)
        else:
            options = {"warmup": 0, "runs": 2, **options}
            check(
                "verify/census/latency: options", name, export.benchmark_latency, tflite, **options
            )

    prop()
    tried("verify/census/latency: options", 40)


# ----------------------------------------------------------------------- pruning

BAD_STEPS = st.integers(max_value=-1) | NOT_INT | finding("F18", st.sampled_from([2**63, 2**70]))
BAD_SPARSITY = st.one_of(
    st.floats(min_value=1.0) | st.floats(max_value=-1e-9) | st.just(float("nan")), NOT_NUMBER
)


@st.composite
def schedule_cases(draw):
    """(class name, kwargs, argument at fault or None): valid schedules, big steps
    included, with at most one argument made wrong."""
    begin = draw(st.integers(0, 1000) | st.sampled_from([2**31, 2**40]))
    span = draw(st.integers(1, 1000) | st.sampled_from([2**31, 2**61]))
    sparsity = st.floats(0, 1, exclude_max=True) | st.builds(np.float32, st.floats(0, 0.99))
    common = {
        "begin_step": begin,
        "frequency": draw(st.integers(1, 200) | st.sampled_from([2**31, 2**62])),
    }
    bad = {
        "begin_step": BAD_STEPS,
        "frequency": st.integers(max_value=0) | NOT_INT,
        "end_step": st.integers(-(10**6), begin).filter(lambda e: e != -1) | NOT_INT,
    }
    if draw(st.booleans()):
        kind = "ConstantSparsity"
        valid = {
            **common,
            "target_sparsity": draw(sparsity),
            "end_step": draw(st.just(-1) | st.just(begin + span)),
        }
        bad["target_sparsity"] = BAD_SPARSITY
    else:
        kind = "PolynomialDecay"
        valid = {
            **common,
            "initial_sparsity": draw(sparsity),
            "final_sparsity": draw(sparsity),
            "end_step": begin + span,
            "power": draw(st.floats(0, 3.4e38) | st.integers(0, 10) | st.just(float("inf"))),
        }
        bad["initial_sparsity"] = bad["final_sparsity"] = BAD_SPARSITY
        bad["power"] = NOT_NUMBER | finding(
            "F18", st.floats(max_value=-1e-3) | st.just(float("nan")) | st.floats(3.5e38, 1e308)
        )
    kwargs, name = draw(one_fault(st.just(valid), bad))
    return kind, kwargs, name


def test_pruning_schedules_check_their_numbers_and_compute_fractions():
    @settings(max_examples=300, **SETTINGS)
    @given(case=schedule_cases())
    def prop(case):
        kind, kwargs, name = case
        schedule = check("schedules", name or "power", getattr(pruning, kind), **kwargs)
        if schedule is None:
            return
        steps = [0, schedule.begin_step, schedule.begin_step + schedule.frequency]
        if schedule.end_step > 0:
            steps += [(schedule.begin_step + schedule.end_step) // 2, schedule.end_step + 1]
        for step in steps:
            try:
                should_prune, sparsity = schedule(min(step, 2**62))
            except Exception as err:
                raise AssertionError(f"{schedule!r}(step={step}) raised {err!r}") from err
            # float32 rounds a sparsity just below 1 (0.99999999) up to 1.0: allowed here.
            assert 0.0 <= float(sparsity) <= 1.0, f"{schedule!r}({step}) = {float(sparsity)}"
            assert bool(should_prune) in (True, False)

    prop()
    tried("schedules", 150)


def test_prune_low_magnitude_checks_its_arguments(kit):
    pairs = st.tuples(JUNK | st.integers(-3, 8), JUNK | st.integers(-3, 8))
    bad = {
        "pruning_schedule": st.one_of(
            JUNK,
            st.just(lambda step: (True, 0.5)),
            st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2),
            finding("F15", st.just({"class_name": "ConstantSparsity", "config": {}})),
        ),
        "block_size": pairs | JUNK | st.lists(st.integers(-2, 5), max_size=3),
        "block_pooling_type": st.one_of(
            JUNK_NO_ARRAY, st.sampled_from(["avg", "Max", "MIN"]), finding("F16", AN_ARRAY)
        ),
        "sparsity_m_by_n": pairs | JUNK,
        "leave_dense": st.one_of(
            JUNK,
            st.lists(st.text(max_size=6) | JUNK, max_size=3),
            st.sampled_from([[keras.layers.Conv2D], "logits", ["logits"], [keras.layers.Dense]]),
        ),
        "mask_type": st.one_of(
            JUNK_NO_ARRAY, st.sampled_from(["Magnitude", "rand"]), finding("F16", AN_ARRAY)
        ),
        "seed": finding("F17", st.text(max_size=3) | st.integers(max_value=-1)),
    }

    @settings(max_examples=200, **SETTINGS)
    @given(case=one_fault(st.just({}), bad), target=st.sampled_from(["dense", "layer", "list"]))
    def prop(case, target):
        kwargs, name = case
        to_prune = {
            "dense": kit["dense"],
            "layer": keras.layers.Dense(2),
            "list": [keras.layers.Dense(2), keras.layers.Dense(3)],
        }[target]
        at_fault = {name, "block_size"} if name == "sparsity_m_by_n" else {name}
        check("prune_low_magnitude", at_fault, pruning.prune_low_magnitude, to_prune, **kwargs)

    prop()
    tried("prune_low_magnitude", 100)


def test_pruning_and_quantization_refuse_a_wrong_model(kit):
    """prune_low_magnitude, strip_pruning, sparsity_report and quantize_model on a wrong
    model; sparsity_report's m_by_n."""
    m_by_n = st.one_of(
        st.none(),
        st.tuples(st.integers(1, 3), st.integers(4, 8)),
        finding("F14", st.tuples(st.integers(-3, 8), st.integers(-3, 8)) | JUNK),
    )
    models = JUNK | st.sampled_from(["dense", "pruned", "qat"]).map(kit.get)
    calls = st.one_of(
        st.tuples(st.just(pruning.prune_low_magnitude), JUNK, st.just("to_prune")),
        st.tuples(st.just(pruning.strip_pruning), models, st.just("model")),
        st.tuples(st.just(pruning.sparsity_report), models, st.just("model")),
        st.tuples(
            st.just(lambda m: tq.quantize_model(m)),
            JUNK.filter(lambda v: not isinstance(v, keras.layers.Layer)),
            st.just("to_quantize"),
        ),
        st.tuples(
            st.just(lambda m: tq.quantize_model(m)),
            finding("F21", st.sampled_from(["qat", "unbuilt"])).map(
                lambda n: kit["qat"] if n == "qat" else keras.Sequential([keras.layers.Dense(2)])
            ),
            st.just("to_quantize"),
        ),
    )

    @settings(max_examples=120, **SETTINGS)
    @given(call=calls, pattern=m_by_n)
    def prop(call, pattern):
        fn, model, argument = call
        if fn is pruning.sparsity_report:
            check("models of pruning/QAT", {argument, "m_by_n"}, fn, model, m_by_n=pattern)
        else:
            check("models of pruning/QAT", argument, fn, model)

    prop()
    tried("models of pruning/QAT", 60)


# ------------------------------------------------------------------ quantization


def test_quantize_model_and_config_check_their_arguments(kit):
    configs = st.one_of(
        JUNK,
        st.text(max_size=10),
        st.sampled_from(tq.PRESETS).map(str.upper),
        st.just(tq.LayerSpec("output")),
    )
    ints = st.integers(-4, 40) | st.integers() | JUNK
    flags = ["per_channel", "dense_per_channel", "symmetric_weights", "narrow_range"]
    bad = {
        "weight_bits": ints,
        "activation_bits": ints,
        **dict.fromkeys([*flags, "symmetric_activations"], NOT_BOOL),
        "ema_decay": ANY_FLOAT | JUNK,
    }
    valid = st.fixed_dictionaries(
        {
            "weight_bits": st.integers(2, 8),
            "activation_bits": st.just(8),
            **dict.fromkeys(flags, st.booleans()),
            "ema_decay": st.floats(0, 1, exclude_max=True),
        }
    ) | st.just({"activation_bits": 16, "symmetric_activations": True})

    @settings(max_examples=100, **SETTINGS)
    @given(
        case=one_fault(valid, bad),
        config=configs,
        preset=JUNK_NO_ARRAY | st.sampled_from(tq.PRESETS) | finding("F16", AN_ARRAY),
        preserve_sparsity=JUNK_NO_ARRAY | finding("F16", AN_ARRAY),
    )
    def prop(case, config, preset, preserve_sparsity):
        kwargs, name = case
        # activation_bits=16 asks for the symmetric flags by name.
        at_fault = {name, "symmetric_activations", "symmetric_weights", "narrow_range"}
        check("QuantizationConfig", at_fault, tq.QuantizationConfig, **kwargs)
        check("QuantizationConfig", {"config", "name"}, tq.QuantizationConfig.from_preset, preset)
        check("quantize_model", "config", tq.quantize_model, kit["dense"], config=config)
        check(
            "quantize_model",
            "preserve_sparsity",
            tq.quantize_model,
            kit["dense"],
            preserve_sparsity=preserve_sparsity,
        )

    prop()
    tried("QuantizationConfig", 100)
    tried("quantize_model", 100)


def test_layer_spec_register_layer_and_annotate_check_their_arguments():
    class Custom(keras.layers.Layer):
        pass

    layouts = st.sampled_from(["last", "depthwise", "transpose", "tensor"])
    flag_names = [
        "dense",
        "separable",
        "conv1d_as_conv2d",
        "folds_batchnorm",
        "fuses_activation",
        "int16_calibrator",
    ]
    bad = {
        "kind": JUNK_NO_ARRAY | st.text(max_size=8) | finding("F16", AN_ARRAY),
        "weights": st.one_of(
            st.dictionaries(
                (st.text(max_size=6) | JUNK).filter(hashable), layouts | JUNK, max_size=2
            ),
            st.lists(st.tuples(st.text(max_size=4), layouts | JUNK), max_size=2),
            JUNK,
        ),
        **dict.fromkeys(flag_names, JUNK),
    }
    valid = st.sampled_from(
        [
            {"kind": "weighted", "weights": {"kernel": "last"}},
            {"kind": "weighted", "weights": {"kernel": "last"}, "dense": True},
            {"kind": "output"},
            {"kind": "output", "fuses_activation": True},
            {"kind": "passthrough"},
        ]
    )
    registrations = st.one_of(
        st.tuples(st.just("layer_class"), JUNK | st.sampled_from([int, Custom(), "Dense"])),
        st.tuples(
            st.just("spec"), JUNK | st.sampled_from(["output", tq.LayerSpec, {"kind": "x"}])
        ),
        st.tuples(st.just("to_annotate"), JUNK | st.just(keras.Sequential())),
        st.tuples(st.just("quantize_config"), JUNK.filter(lambda v: v is not None)),
    )

    @settings(max_examples=200, **SETTINGS)
    @given(case=one_fault(valid, bad), registration=registrations)
    def prop(case, registration):
        kwargs, name = case
        at_fault = {"kind", "weights", *kwargs} if name is None else {name, "kind", "weights"}
        check("LayerSpec", at_fault, tq.LayerSpec, **kwargs)
        name, value = registration
        if name in ("layer_class", "spec"):
            args = {"layer_class": Custom, "spec": tq.LayerSpec("output"), name: value}
            try:
                check("register_layer/annotate", name, tq.register_layer, **args)
            finally:
                tq.unregister_layer(Custom)
        elif name == "to_annotate":
            check("register_layer/annotate", name, tq.quantize_annotate_layer, value)
        else:
            layer = keras.layers.Dense(2)
            check("register_layer/annotate", name, tq.quantize_annotate_layer, layer, value)

    prop()
    tried("LayerSpec", 100)
    tried("register_layer/annotate", 100)


# ------------------------------------------------------------------ distillation


def test_distiller_checks_its_arguments(kit):
    numbers = ANY_FLOAT | JUNK
    bad = {
        "alpha": numbers,
        "distillation_losses": st.one_of(
            st.text(max_size=6),
            st.sampled_from(["soft", "HARD", "mse", "kl", "softmax"]),
            JUNK,
            st.lists(st.sampled_from(["soft", "mse"]) | JUNK, max_size=3),
            st.sampled_from([keras.losses.MeanSquaredError(), distillation.FeatureDistillation()]),
            finding("F19", st.just(distillation.FeatureDistillation(teacher_layer_name="nope"))),
        ),
        "distillation_loss_weights": JUNK | st.lists(st.floats(-2, 2) | JUNK, max_size=3),
        "cache_teacher_outputs": NOT_BOOL,
        "teacher": JUNK | st.just("student"),
        "student": JUNK | st.just("teacher"),
    }
    valid = st.just({"teacher": "teacher", "student": "student"})

    float32_max = float(np.finfo(np.float32).max)
    temperatures = numbers.filter(
        lambda t: not (isinstance(t, float) and float32_max < t < float("inf"))
    ) | finding("F24", st.floats(float32_max, 1e308, exclude_min=True))

    @settings(max_examples=150, **SETTINGS)
    @given(case=one_fault(valid, bad), temperature=temperatures)
    def prop(case, temperature):
        kwargs, name = case
        for side in ("teacher", "student"):  # the kit's models by name; "student" as teacher
            if isinstance(kwargs[side], str) and kwargs[side] in ("teacher", "student"):
                kwargs[side] = kit[kwargs[side]]
        at_fault = {name, "teacher", "student"} if name in ("teacher", "student") else {name}
        check("Distiller", at_fault if name else {"alpha"}, distillation.Distiller, **kwargs)
        soft = check("Distiller", "temperature", distillation.SoftDistillation, temperature)
        if soft is not None:
            check(
                "Distiller",
                "temperature",
                distillation.Distiller,
                kit["teacher"],
                kit["student"],
                soft,
            )

    prop()
    tried("Distiller", 150)


def test_distiller_setters_and_linear_schedule_check_their_numbers(kit):
    distiller = distillation.Distiller(kit["teacher"], kit["student"])
    numbers = ANY_FLOAT | JUNK

    @settings(max_examples=150, **SETTINGS)
    @given(
        setter=st.sampled_from(["alpha", "temperature"]),
        value=numbers,
        schedule=st.tuples(
            numbers | st.floats(-9, 9), numbers | st.floats(-9, 9), st.integers(-3, 5) | JUNK
        ),
        epoch=st.integers(-5, 50) | st.floats(allow_nan=True) | finding("F20", JUNK),
    )
    def prop(setter, value, schedule, epoch):
        check("Distiller setters/LinearSchedule", setter, setattr, distiller, setter, value)
        made = check(
            "Distiller setters/LinearSchedule",
            {"initial_value", "final_value", "transition_epochs"},
            distillation.LinearSchedule,
            *schedule,
        )
        if made is not None:
            check("Distiller setters/LinearSchedule", "epoch", made, epoch)

    prop()
    tried("Distiller setters/LinearSchedule", 300)


# --------------------------------------------------------------------------- CLI

PYTHON_NAMES = "|".join(
    [
        "representative_data",
        "verify_data",
        "int8_io",
        "num_calibration_samples",
        "input_signature",
        "parity_bar",
        "allow_pickle",
        "quantization",
        "opset",
        "path",
        "inputs",
    ]
)
FORBIDDEN = re.compile(
    rf"`(?:{PYTHON_NAMES})`|`(?:{PYTHON_NAMES})=|(?<![\w\-.`/])(?:{PYTHON_NAMES})="
)
POSITIONALS = {
    "MODEL": re.compile(r"\bMODEL\b|required: .*\bmodel\b"),
    "output": re.compile(r"`output`|\bOUTPUT\b|required: .*\boutput\b|argument output\b"),
    "file": re.compile(r"`file`|\bFILE\b|required: .*\bfile\b"),
}


def check_cli(key, argv, at_fault):
    """Runs `tfopt argv` in-process. Passes on exit 0; on exit 2 (argparse's SystemExit or
    main's return) stderr must name a flag or positional at fault and no Python name."""
    argv = [str(a) for a in argv]
    COUNTS[key]["examples"] += 1
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        except Exception as raised:
            raise AssertionError(
                f"tfopt {' '.join(argv)}: {type(raised).__module__}.{type(raised).__name__} "
                f"escaped main(): {raised}"
            ) from raised
    stderr = err.getvalue()
    COUNTS[key][f"exit {code}"] += 1
    if code == 0:
        return
    assert code == 2, f"tfopt {' '.join(argv)}: exit {code}: {stderr}"
    named = [
        f
        for f in at_fault
        if (
            POSITIONALS[f] if f in POSITIONALS else re.compile(rf"{re.escape(f)}(?![\w-])")
        ).search(stderr)
    ]
    assert named, f"tfopt {' '.join(argv)}: names none of {sorted(at_fault)}: {stderr}"
    python = FORBIDDEN.search(stderr)
    assert python is None, f"tfopt {' '.join(argv)}: shows {python.group()!r}: {stderr}"


@st.composite
def export_command_lines(draw, kit):
    """A `tfopt export` command line with one fault: (argv, flags or positionals at fault)."""
    files, out = kit["files"], kit["out"]
    fmt = draw(st.sampled_from([".tflite", ".onnx"]))
    model, output = files / "dense.keras", out / f"cli-{draw(NAMES)}{fmt}"
    options = draw(
        st.sampled_from([[], ["--quantization", "dynamic"], ["--data", files / "good.npy"]])
        if fmt == ".tflite"
        else st.sampled_from([[], ["--data", files / "good.npy"], ["--opset", "13"]])
    )
    kinds = [
        "none",
        "model",
        "output suffix",
        "quantization choice",
        "quantization for onnx",
        "opset not int",
        "opset for tflite",
        "int8-io for onnx",
        "unknown flag",
        "missing positional",
        "good data",
    ]
    gated = {
        "C01": "bad data",
        "C02": "missing data",
        "C03": "pickled data",
        "C04": "string data",
        "C05": "directory data",
        "C06": "int8 without data",
        "C07": "int8-io without int8",
        "C08": "opset range",
        "C09": "output place",
    }
    kinds += list(gated.values()) if INCLUDE_FINDINGS else []
    kind = draw(st.sampled_from(kinds))
    data_files = {
        "bad data": [files / f"{n}.npy" for n in ("wrong-shape", "wrong-rank", "nan", "empty")]
        + [files / "scalar.npy", files / "archive.npz"],
        "missing data": [files / "missing.npy"],
        "pickled data": [files / "text.npy", files / "objects.npy"],
        "string data": [files / "strings.npy"],
        "directory data": [files],
    }
    if kind == "none":
        return ["export", model, output, *options], {"MODEL"}
    if kind == "model":
        content = draw(st.binary(max_size=64))
        written = out / f"model-{len(content)}.keras"
        written.write_bytes(content)
        bad = [files / n for n in ("missing.keras", "text.keras", "empty.keras", "dense.tflite")]
        model = draw(st.sampled_from([*bad, files / "a-directory.keras", "", written]))
        return ["export", model, output, *options], {"MODEL"}
    if kind == "output suffix":
        ending = draw(st.sampled_from([".keras", ".txt", "", ".tfl", ".onnx.bak"]))
        return ["export", model, out / f"cli{ending}"], {"output"}
    if kind == "output place":
        place = draw(st.sampled_from([out / "no-such-dir", files / f"a-directory{fmt}", "/proc"]))
        return ["export", model, f"{place}/x{fmt}"], {"output"}
    if kind == "quantization choice":
        choice = draw(st.text(min_size=1, max_size=8).filter(lambda s: not s.startswith("-")))
        return ["export", model, output, "--quantization", choice], {"--quantization"}
    if kind == "quantization for onnx":
        choice = draw(st.sampled_from(["float16", "dynamic", "int8", "int16x8"]))
        return ["export", model, out / "cli.onnx", "--quantization", choice], {"--quantization"}
    if kind in ("opset not int", "opset for tflite", "opset range"):
        value = {
            "opset not int": st.sampled_from(["x", "1.5", "", "seventeen", "0x11"]),
            "opset for tflite": st.integers(-(10**6), 10**6).map(str),
            "opset range": (st.integers(-(10**6), 8) | st.integers(19, 10**6)).map(str),
        }[kind]
        target = out / ("cli.tflite" if kind == "opset for tflite" else "cli.onnx")
        return ["export", model, target, "--opset", draw(value)], {"--opset"}
    if kind in ("int8-io for onnx", "int8-io without int8"):
        target = out / ("cli.onnx" if kind == "int8-io for onnx" else "cli.tflite")
        return ["export", model, target, "--int8-io"], {"--int8-io"}
    if kind == "unknown flag":
        flag = draw(st.sampled_from(["--bogus", "-x", "--format", "--out"]))
        return ["export", model, output, *options, flag], {flag}
    if kind == "missing positional":
        return ["export", *draw(st.sampled_from([[], [model]]))], {"MODEL", "output"}
    if kind == "good data":
        count = draw(st.integers(1, 8))
        good = out / f"good-{count}.npy"
        np.save(good, kit["x"][:count])
        quantize = ["--quantization", "int8"] if fmt == ".tflite" else []
        return ["export", model, output, "--data", good, *quantize], {"--data"}
    if kind == "int8 without data":
        return ["export", model, out / "c.tflite", "--quantization", "int8"], {"--data"}
    data = draw(st.sampled_from(data_files[kind]))
    return ["export", model, output, "--data", data], {"--data"}


def test_cli_export_answers_bad_input_with_a_usage_error(kit):
    @settings(max_examples=100, **SETTINGS)
    @given(case=export_command_lines(kit))
    def prop(case):
        check_cli("tfopt export", *case)

    prop()
    tried("tfopt export", 50)


def test_cli_inspect_and_usage_errors(kit):
    files = kit["files"]
    inspected = st.one_of(
        st.sampled_from([files / "dense.tflite", files / "dense.onnx"]),
        finding("C10", st.sampled_from([files / n for n in ("text.tflite", "empty.tflite")])),
        finding("C10", st.sampled_from([files / "text.onnx", files / "empty.onnx"])),
        finding("C11", NAMES.map(lambda n: files / f"missing-{n}.tflite")),
        finding("C11", st.sampled_from([files / "dense.keras", files, ""])),
    )
    commands = st.one_of(
        inspected.map(lambda f: (["inspect", f], {"file"})),
        st.just((["inspect"], {"file"})),
        st.lists(NAMES, min_size=1, max_size=3).map(
            lambda extra: (["inspect", files / "dense.tflite", *extra], {"unrecognized"})
        ),
        st.text(min_size=1, max_size=8)
        .filter(lambda s: not any(c.startswith(s) for c in ("demo", "inspect", "export", "-")))
        .map(lambda s: ([s], {"command"})),
        st.integers(max_value=0).map(lambda n: (["demo", "--epochs", n], {"--epochs"})),
        st.sampled_from(["x", "1.5", ""]).map(lambda v: (["demo", "--epochs", v], {"--epochs"})),
    )

    @settings(max_examples=60, **SETTINGS)
    @given(command=commands)
    def prop(command):
        check_cli("tfopt inspect/usage", *command)

    prop()
    tried("tfopt inspect/usage", 30)


# ---------------------------------------------------------------------- summary


def test_zz_examples_tried(capsys):
    """Prints how many examples each property tried and how they ended."""
    lines = [f"{'property':<34} {'calls':>8}  outcomes"]
    for key, counter in COUNTS.items():
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(counter.items()) if k != "examples")
        lines.append(f"{key:<34} {counter['examples']:>8}  {outcomes}")
    lines.append(f"{'total':<34} {sum(c['examples'] for c in COUNTS.values()):>8}")
    state = "included" if INCLUDE_FINDINGS else "left out (TFOPT_BAD_INPUT_FINDINGS=0)"
    lines.append(f"known findings ({len(FINDINGS)}): {state}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    # Under pytest-xdist the properties may have run in another worker: nothing to check.
    assert all(c["examples"] > 0 for c in COUNTS.values())
