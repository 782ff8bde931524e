import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mirrored_strategy_identical_ranges_on_every_replica():
    script = Path(__file__).parent / "scripts" / "mirrored.py"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_USE_LEGACY_KERAS", None)
    run = subprocess.run(
        [sys.executable, str(script), str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("JSON")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    report = json.loads(lines[-1][4:])
    assert report["replicas"] == 2
    assert report["ranges"] >= 30  # small_cnn: 6 activation + 6 weight quantizers (min/max/count)
    assert report["max_replica_gap"] == 0.0  # identical on both replicas
    assert report["min_count"] == 24.0  # 3 epochs x 8 global steps, each observed once
    assert report["loss"][-1] < report["loss"][0]
