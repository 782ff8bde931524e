"""Faults: a training process SIGKILLed mid-epoch resumes with BackupAndRestore to exactly
the state of a run never killed; an export SIGKILLed mid-write leaves the user's file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tfopt import export

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).parent / "scripts"


def _run(*args, expect=0):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )
    assert run.returncode == expect, (run.returncode, run.stderr[-3000:])
    return run


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pruning", "qat", "distillation"])
def test_sigkill_mid_epoch_then_backup_and_restore_equals_an_uninterrupted_run(kind, tmp_path):
    script = SCRIPTS / "kill_resume.py"
    _run(script, kind, tmp_path / "b_full", tmp_path / "full.npz")
    # Killed at the 4th batch of the 2nd epoch (of 3): after its first epoch's backup.
    _run(script, kind, tmp_path / "b", tmp_path / "resumed.npz", "--kill-at", 1, 3,
         expect=-signal.SIGKILL)  # fmt: skip
    assert not (tmp_path / "resumed.npz").exists()
    assert (tmp_path / "b").is_dir()  # the backup it resumes from
    _run(script, kind, tmp_path / "b", tmp_path / "resumed.npz")
    full, resumed = np.load(tmp_path / "full.npz"), np.load(tmp_path / "resumed.npz")
    assert sorted(full.files) == sorted(resumed.files)
    for name in full.files:  # weights, masks, pruning steps, ranges, QAT flags, BN stats
        np.testing.assert_array_equal(resumed[name], full[name], err_msg=name)
    if kind == "pruning":
        masks = [full[n] for n in full.files if n.endswith("_mask")]
        assert masks and all(abs(1 - m.mean() - 0.8) < 0.02 for m in masks)  # 80% pruned
    if kind == "qat":
        counts = [full[n] for n in full.files if n.endswith("_count")]
        assert counts and all(c > 0 for c in counts)  # ranges observed, then frozen


@pytest.mark.slow
def test_sigkill_while_writing_an_export_leaves_the_users_file(tmp_path):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"the user's previous model")
    _run(SCRIPTS / "kill_export.py", target, expect=-signal.SIGKILL)
    assert target.read_bytes() == b"the user's previous model"
    orphans = [p for p in tmp_path.iterdir() if p != target]
    assert len(orphans) == 1 and orphans[0].name.startswith(".model.tfopt-staged-")
    # The next export to the same path removes the dead process's half-written file.
    export.to_tflite(keras.Sequential([keras.Input((16,)), keras.layers.Dense(4)]), target)
    assert target.read_bytes()[4:8] == b"TFL3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]
