"""tfopt._native_log: native log lines below a level stay off stderr, the rest passes."""

import os
import subprocess
import sys
import textwrap

import pytest

from tfopt import _native_log

# Lines as the libraries print them (copied from TensorFlow 2.21's and LiteRT 2.3's
# output on this machine; the pre-2.19 format from tensorflow/tensorflow#100442).
ABSL_BANNER = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
)
ABSL_INFO = (
    b"I0000 00:00:1795964402.371102    3130 cudart_stub.cc:31] Could not find cuda drivers "
    b"on your machine, GPU will not be used."
)
ABSL_ERROR = (
    b"E0000 00:00:1795965435.498082   24014 cuda_platform.cc:52] failed call to cuInit: "
    b"INTERNAL: CUDA error"
)
ABSL_FATAL = b"F0000 00:00:1795965435.498082   24014 cpu_feature_guard.cc:40] no AVX"
OLD_TF_INFO = (
    b"2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] "
    b"Could not find cuda drivers on your machine, GPU will not be used."
)
LITERT_INFO = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
PLAIN = b"/path/file.py:3: UserWarning: a Python warning"


@pytest.mark.parametrize(
    "line, expected",
    [
        (ABSL_BANNER, 0),
        (ABSL_INFO, 0),
        (ABSL_ERROR, 2),
        (ABSL_FATAL, 3),
        (OLD_TF_INFO, 0),
        (LITERT_INFO, 0),
        (b"WARNING: a LiteRT warning", 1),
        (b"ERROR: a LiteRT error", 2),
        (PLAIN, None),
        (b"", None),
    ],
)
def test_severity(line, expected):
    assert _native_log.severity(line) == expected


@pytest.mark.parametrize("value, level", [(None, 0), ("1", 1), ("3", 3), ("9", 3), ("x", 0)])
def test_min_log_level_reads_tf_cpp_min_log_level(monkeypatch, value, level):
    if value is None:
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", value)
    assert _native_log.min_log_level() == level


LINES = [ABSL_BANNER, ABSL_INFO, PLAIN, ABSL_ERROR, LITERT_INFO, ABSL_FATAL]


@pytest.mark.parametrize("survive_abort", [False, True], ids=["thread", "process"])
@pytest.mark.parametrize(
    "level, kept",
    [
        (0, LINES),
        (1, [PLAIN, ABSL_ERROR, ABSL_FATAL]),
        (3, [PLAIN, ABSL_FATAL]),
    ],
)
def test_filtered_stderr_drops_only_log_lines_below_the_level(capfd, level, kept, survive_abort):
    with _native_log.filtered_stderr(level, survive_abort=survive_abort):
        for line in LINES:
            os.write(2, line + b"\n")
    os.write(2, ABSL_INFO + b"\n")  # after the block: as before
    assert capfd.readouterr().err.encode() == b"".join(x + b"\n" for x in [*kept, ABSL_INFO])


def test_filtered_stderr_restores_descriptor_2_when_the_block_raises(capfd):
    with pytest.raises(RuntimeError), _native_log.filtered_stderr(3):
        os.write(2, ABSL_INFO + b"\n" + PLAIN + b"\n")
        raise RuntimeError("boom")
    os.write(2, b"after\n")
    assert capfd.readouterr().err.encode() == PLAIN + b"\nafter\n"


def test_a_fatal_line_shows_when_the_process_aborts():
    # absl writes a FATAL line and then aborts: the forwarding process outlives us.
    code = textwrap.dedent(f"""
        import os
        from tfopt import _native_log
        with _native_log.filtered_stderr(3, survive_abort=True):
            os.write(2, {ABSL_INFO!r} + b"\\n" + {ABSL_FATAL!r} + b"\\n")
            os.abort()
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr == ABSL_FATAL + b"\n"


def test_tensorflow_start_up_and_exports_are_silent_at_level_3(tmp_path):
    # TensorFlow 2.19+ logs its start-up lines before it reads TF_CPP_MIN_LOG_LEVEL;
    # after `import tfopt` they follow it. LiteRT's "INFO: Created ... XNNPACK delegate"
    # when tfopt runs a file stays off stderr too.
    code = textwrap.dedent(f"""
        import numpy as np
        import tfopt
        import keras
        from tfopt import export
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        x = np.ones((8, 4), "float32")
        result = export.to_tflite(model, {str(tmp_path / "m.tflite")!r}, verify_data=x)
        export.benchmark_latency(result.path, runs=5)
        print("done")
    """)
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.stdout.strip() == "done", done.stderr
    assert done.stderr == ""
