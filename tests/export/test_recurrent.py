"""Recurrent models in every quantization mode: a verified file or a clear error, never a crash.

TFLite's calibrator kills the process (SIGSEGV) on recurrent loops; the matrix runs
in a child process so that, should one case crash, this test says so and survives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "recurrent_matrix.py"


@pytest.fixture(scope="module")
def matrix():
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[3])}
    run = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=900, env=env
    )
    assert run.returncode == 0, (
        f"exit {run.returncode} (-11/139: a native crash)\n" + (run.stderr[-3000:])
    )
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return {(r["case"], r["mode"]): r for r in rows}


KINDS = ("LSTM", "GRU", "SimpleRNN", "Bidirectional(LSTM)")


@pytest.mark.slow
def test_every_recurrent_layer_exports_in_every_mode(matrix):
    for kind in KINDS:
        for mode in ("float32", "float16", "dynamic", "int8", "int16x8"):
            row = matrix[(kind, mode)]
            assert row["status"] == "exported", row
            assert row["quantization"] == mode
            if mode in ("int8", "int16x8"):
                # Full integer: no conv/dense/matmul left in float, loops unrolled.
                assert row["float_compute"] == [], row
                assert any("unrolled over 12 time steps" in n for n in row["notes"]), row
                assert row["max_abs_error"] < 0.1, row  # random-weight outputs of size ~1
            else:
                assert row["max_abs_error"] < (1e-5 if mode == "float32" else 5e-3), row


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, says",
    [
        ("LSTM, variable length", "cannot be unrolled (a sequence length of None)"),
        ("GRU in a subclassed model", "inside a subclassed model"),
        ("custom while_loop", "computes a loop (StatelessWhile ops)"),
    ],
)
def test_loops_that_cannot_be_unrolled_are_refused_with_the_routes_that_work(matrix, case, says):
    row = matrix[(case, "int8")]
    assert row["status"] == "refused", row
    assert row["error"].startswith("ValueError: Argument `quantization='int8'`")
    assert says in row["error"]
    assert "quantization='dynamic'" in row["error"] and "'float16'" in row["error"]
