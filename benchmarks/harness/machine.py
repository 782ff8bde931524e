"""Facts about the machine and the software a run measured: versions, CPU, load, time."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from pathlib import Path

# (label in BENCHMARKS.md, distribution name; None: the Python interpreter).
VERSIONED_PACKAGES = (
    ("Python", None),
    ("TensorFlow", "tensorflow"),
    ("Keras", "keras"),
    ("tf_keras", "tf-keras"),
    ("tfmot", "tensorflow-model-optimization"),
    ("LiteRT", "ai-edge-litert"),
    ("onnxruntime", "onnxruntime"),
    ("tfopt", "tfopt"),
)


def versions() -> dict:
    """{label: installed version or "not installed"} for `VERSIONED_PACKAGES`."""
    found = {}
    for label, dist in VERSIONED_PACKAGES:
        if dist is None:
            found[label] = platform.python_version()
            continue
        try:
            found[label] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[label] = "not installed"
    return found


def machine() -> dict:
    """{"cpu", "cores", "ram_gib" (None if unknown), "os"} of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / 1024**2
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": None if ram_gib is None else round(ram_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
    }


def load_average():
    """The 1-minute load average (None where the OS does not report it)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def utc_now() -> str:
    """The time now, to the minute, as BENCHMARKS.md shows it: "2026-01-31 09:00 UTC"."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
