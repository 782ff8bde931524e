"""The benchmark harness (run.py, benchmarks/harness/) with fake suites: no TensorFlow."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from benchmarks.harness import discovery, render, worker

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_PY = REPO_ROOT / "benchmarks" / "run.py"

# A suite whose tfmot side crashes: the run must go on and record the error.
CRASHING_SUITE = """
import os
import numpy as np
from benchmarks import common

TITLE = "Fake: crashing tfmot side"

def run_tfopt(quick):
    print("a progress bar without a newline", end="")
    return [{"variant": "a", "legacy": os.environ.get("TF_USE_LEGACY_KERAS", "unset"),
             "quick": quick, "acc": np.float32(0.5), "epochs": common.epochs(quick)}]

def run_tfmot(quick):
    raise RuntimeError("boom from the tfmot side")

def render(tfopt_rows, tfmot_rows):
    return common.markdown_table(
        tfopt_rows, [("variant", "Variant", ""), ("legacy", "Legacy", ""), ("acc", "Acc", "pct")]
    )
"""

# A suite whose two sides both work and report the Keras flavour they saw.
WORKING_SUITE = """
import os

TITLE = "Fake: both sides"

def run_tfopt(quick):
    return [{"side": "tfopt", "legacy": os.environ.get("TF_USE_LEGACY_KERAS", "unset")}]

def run_tfmot(quick):
    return [{"side": "tfmot", "legacy": os.environ.get("TF_USE_LEGACY_KERAS", "unset")}]

def render(tfopt_rows, tfmot_rows):
    return "\\n".join(f"- {r['side']} legacy={r['legacy']}" for r in tfopt_rows + tfmot_rows)
"""


@pytest.fixture
def suite_dir(tmp_path):
    d = tmp_path / "suites"
    d.mkdir()
    (d / "suite_crashing.py").write_text(textwrap.dedent(CRASHING_SUITE))
    (d / "suite_working.py").write_text(textwrap.dedent(WORKING_SUITE))
    return d


def _run(tmp_path, suite_dir, *args):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    return subprocess.run(
        [
            sys.executable,
            str(RUN_PY),
            "--suite-dir",
            str(suite_dir),
            "--results-dir",
            str(tmp_path / "results"),
            "--output",
            str(tmp_path / "B.md"),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_full_run_records_rows_errors_and_renders(tmp_path, suite_dir):
    proc = _run(tmp_path, suite_dir, "--quick")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one side failed

    crashing = json.loads((tmp_path / "results" / "crashing.json").read_text())
    assert crashing["quick"] is True
    assert crashing["sides"]["tfopt"]["error"] is None
    # The numpy float32 became a plain JSON number; the tfopt side ran without legacy Keras.
    assert crashing["sides"]["tfopt"]["rows"] == [
        {"variant": "a", "legacy": "unset", "quick": True, "acc": 0.5, "epochs": 3}
    ]
    assert crashing["sides"]["tfmot"]["rows"] == []
    assert "boom from the tfmot side" in crashing["sides"]["tfmot"]["error"]

    working = json.loads((tmp_path / "results" / "working.json").read_text())
    assert working["sides"]["tfopt"]["rows"] == [{"side": "tfopt", "legacy": "unset"}]
    assert working["sides"]["tfmot"]["rows"] == [{"side": "tfmot", "legacy": "1"}]

    md = (tmp_path / "B.md").read_text()
    assert md.startswith("# tfopt benchmarks")
    for needle in (
        "Python",
        "TensorFlow",
        "cores",
        "## Fake: crashing tfmot side",
        "| a | unset | 50.0% |",
        "**The tfmot side failed:**",
        "boom from the tfmot side",
        "## Fake: both sides",
        "- tfmot legacy=1",
        "`--quick`",
    ):
        assert needle in md, needle


def test_running_one_suite_keeps_the_others_results(tmp_path, suite_dir):
    assert _run(tmp_path, suite_dir, "--quick").returncode == 1
    before = json.loads((tmp_path / "results" / "crashing.json").read_text())
    proc = _run(tmp_path, suite_dir, "--suites", "working")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "results" / "crashing.json").read_text()) == before
    working = json.loads((tmp_path / "results" / "working.json").read_text())
    assert working["quick"] is False
    md = (tmp_path / "B.md").read_text()
    assert "## Fake: crashing tfmot side" in md and "## Fake: both sides" in md
    (tmp_path / "B.md").unlink()
    # --render-only rebuilds the same sections from the stored results, running nothing.
    proc = _run(tmp_path, suite_dir, "--render-only")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "results" / "working.json").read_text()) == working
    rerendered = (tmp_path / "B.md").read_text()
    assert rerendered.split("\n", 3)[3] == md.split("\n", 3)[3]  # all but the command line


def test_unknown_suite_is_refused_by_name(tmp_path, suite_dir):
    proc = _run(tmp_path, suite_dir, "--suites", "nope")
    assert proc.returncode != 0
    assert "--suites" in proc.stderr and "nope" in proc.stderr and "working" in proc.stderr
    assert not (tmp_path / "B.md").exists()


def _worker_rows(suite_dir, name, side, env):
    """The rows a `run.py --worker` subprocess prints on its one rows line."""
    command = [sys.executable, str(RUN_PY), "--worker", name, "--side", side]
    proc = subprocess.run(
        [*command, "--suite-dir", str(suite_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(worker.ROWS_MARKER)]
    assert len(lines) == 1
    return json.loads(lines[0][len(worker.ROWS_MARKER) :])


def test_worker_protocol_prints_one_rows_line(suite_dir):
    rows = _worker_rows(suite_dir, "working", "tfmot", worker.side_environment("tfmot"))
    assert rows == [{"side": "tfmot", "legacy": "1"}]


def test_worker_keeps_the_callers_environment(suite_dir):
    # The worker used to clear os.environ before copying it: a suite saw no PATH, HOME
    # or settings of its own (TFOPT_BENCH_STUDENTS was ignored).
    (suite_dir / "suite_envecho.py").write_text(
        textwrap.dedent(WORKING_SUITE).replace('"TF_USE_LEGACY_KERAS", "unset"', '"PROBE", "gone"')
    )
    env = {**worker.side_environment("tfopt"), "PROBE": "kept"}
    assert _worker_rows(suite_dir, "envecho", "tfopt", env) == [
        {"side": "tfopt", "legacy": "kept"}
    ]


def test_side_environment_sets_the_keras_flavour():
    base = {"TF_USE_LEGACY_KERAS": "1", "PATH": "/bin"}
    assert "TF_USE_LEGACY_KERAS" not in worker.side_environment("tfopt", base)
    assert worker.side_environment("tfmot", {"PATH": "/bin"})["TF_USE_LEGACY_KERAS"] == "1"
    assert worker.side_environment("tfopt", base)["PATH"] == "/bin"


def test_rows_are_checked_and_made_json():
    rows = worker.check_rows([{"a": np.int64(3), "b": float("nan"), "c": "x"}], "suite.run_tfopt")
    assert rows == [{"a": 3, "b": None, "c": "x"}]
    assert isinstance(rows[0]["a"], int)
    with pytest.raises(TypeError, match="list of dicts"):
        worker.check_rows({"a": 1}, "suite.run_tfopt")
    with pytest.raises(TypeError, match="numbers, strings"):
        worker.check_rows([{"a": object()}], "suite.run_tfopt")


def test_suites_are_ordered_known_first():
    assert discovery.sort_suites(["zeta", "qat", "alpha", "ptq", "distillation"]) == [
        "ptq",
        "qat",
        "distillation",
        "alpha",
        "zeta",
    ]


def test_render_falls_back_to_raw_rows_when_render_crashes(tmp_path):
    (tmp_path / "suite_bad.py").write_text(
        "TITLE = 'Bad'\nrun_tfopt = run_tfmot = None\n"
        "def render(a, b):\n    raise KeyError('latency_ms')\n"
    )
    record = {
        "title": "Bad",
        "quick": False,
        "finished": "2026-01-01 00:00 UTC",
        "sides": {
            "tfopt": {"rows": [{"x": 1}], "error": None, "seconds": 2.0, "load_avg_1m": 0.5},
            "tfmot": {"rows": [], "error": "Worker failed (exit status 1).\nboom", "seconds": 1.0},
        },
        "machine": {"cores": 2},
    }
    md = render.render_section("bad", record, tmp_path)
    assert md.startswith("## Bad")
    assert "Rendering failed (KeyError: 'latency_ms')" in md
    assert '"x": 1' in md
    assert "**The tfmot side failed:**" in md
    assert "tfopt side 2 s (1-min load average 0.5 at its start), tfmot side 1 s." in md
    assert "busy" not in md
    record["sides"]["tfmot"]["load_avg_1m"] = 3.0  # >= 2 cores
    assert "The machine was busy (load average up to 3.0 on 2 cores)" in render.render_section(
        "bad", record, tmp_path
    )


def test_stored_results_render_every_suite():
    # benchmarks/results as committed: every suite's render() and the report templates
    # agree (a placeholder without a value would put "Rendering failed" in its section).
    bench = REPO_ROOT / "benchmarks"
    md = render.render_markdown(bench / "results", bench, "python benchmarks/run.py")
    assert "Rendering failed" not in md
    assert md.startswith("# tfopt benchmarks: tfopt (Keras 3) vs tfmot (tf_keras)\n\nWritten by")
    for name in discovery.discover_suites(bench):
        title = discovery.load_suite(name, bench).TITLE
        assert f"\n## {title}\n" in md, name
