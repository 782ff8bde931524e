"""Runs a snippet in a fresh Python with tfmot/tf_keras and reads back its JSON.

tfmot must never be imported into the pytest process (it switches `tf.keras` to
tf_keras for the whole process), so tests that compare with it run it here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap


def run_json(code: str, *, legacy_keras: bool = True, timeout: float = 300) -> object:
    """Runs `code` in a new interpreter; the code prints one JSON document last."""
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["CUDA_VISIBLE_DEVICES"] = "-1"
    if legacy_keras:
        env["TF_USE_LEGACY_KERAS"] = "1"
    else:
        env.pop("TF_USE_LEGACY_KERAS", None)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
