"""Finding, ordering and loading the benchmark suites.

A suite is a module ``suite_<name>.py`` in the suite directory (``benchmarks/``
unless ``--suite-dir`` says otherwise) defining ``TITLE``, ``run_tfopt(quick)``,
``run_tfmot(quick)`` and ``render(tfopt_rows, tfmot_rows)``. It may keep its parts
in a package of its own (``benchmarks/distillation/``) and re-export the four
members; the harness only ever loads ``suite_<name>.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = BENCH_DIR.parent
SUITE_ORDER = ("ptq", "pruning", "qat", "distillation")
SUITE_MEMBERS = ("TITLE", "run_tfopt", "run_tfmot", "render")


def discover_suites(suite_dir: Path) -> list[str]:
    """Names of the suites in `suite_dir` (files suite_<name>.py), known suites first."""
    names = [p.stem[len("suite_") :] for p in Path(suite_dir).glob("suite_*.py")]
    return sort_suites(names)


def sort_suites(names) -> list[str]:
    """`SUITE_ORDER` first (those present), then the other names alphabetically."""
    known = [n for n in SUITE_ORDER if n in names]
    return known + sorted(n for n in set(names) if n not in SUITE_ORDER)


def load_suite(name: str, suite_dir: Path):
    """Imports <suite_dir>/suite_<name>.py (by path) and checks it has the four members.

    Raises:
        ValueError: there is no such file (the message lists the suites found).
        TypeError: the module lacks one of `SUITE_MEMBERS`.
    """
    path = Path(suite_dir) / f"suite_{name}.py"
    if not path.is_file():
        found = ", ".join(discover_suites(suite_dir)) or "none"
        raise ValueError(f"No suite {name!r}: {path} does not exist. Suites found: {found}.")
    _ensure_import_path()
    module_name = f"_tfopt_benchmark_suite_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    missing = [m for m in SUITE_MEMBERS if not hasattr(module, m)]
    if missing:
        raise TypeError(f"Suite {name!r} ({path}) lacks {', '.join(missing)}.")
    return module


def _ensure_import_path() -> None:
    """Puts the repository root on sys.path (`from benchmarks import common` needs it)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
