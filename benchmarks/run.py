"""Side-by-side benchmarks of tfopt (Keras 3) against tfmot (tf_keras); writes BENCHMARKS.md.

    python benchmarks/run.py [--quick] [--suites ptq,pruning,qat,distillation]
    python benchmarks/run.py --render-only      # rewrite BENCHMARKS.md from results/

A suite is a module ``benchmarks/suite_<name>.py`` defining ``TITLE``,
``run_tfopt(quick) -> list[dict]``, ``run_tfmot(quick) -> list[dict]`` and
``render(tfopt_rows, tfmot_rows) -> str``; it imports TensorFlow, Keras and
tfmot only inside its ``run_*`` functions, so that this process can import it
to render. Each side runs in a fresh process::

    python benchmarks/run.py --worker <suite> --side tfopt|tfmot [--quick]

the tfopt side with TF_USE_LEGACY_KERAS unset (Keras 3), the tfmot side with
TF_USE_LEGACY_KERAS=1 (tf.keras is tf_keras there). The worker prints its rows
as one JSON line after ``ROWS_MARKER``. Rows land in
``benchmarks/results/<suite>.json`` (running one suite keeps the others' last
results) and BENCHMARKS.md is rewritten from every results file: a header with
the machine and versions, then each suite's ``render(...)`` section. A side
that crashes or times out records its error in its section; the run goes on
and exits with status 1 at the end.

This file is the entry point only: the harness is the package benchmarks/harness/
(discovery.py finds and loads suites, worker.py is the worker protocol, machine.py
the machine facts and versions, render.py the results files and BENCHMARKS.md,
runner.py a run of the suites, templates.py the report prose). Each suite keeps its
parts in a package of its own (benchmarks/<name>/: protocol.py, render.py, ...) that
``suite_<name>.py`` re-exports, and its prose in benchmarks/templates/<name>.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

# `python benchmarks/run.py` puts benchmarks/ on sys.path, not the repository root
# that `import benchmarks.harness` (and the suites' `from benchmarks import common`) needs.
_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

from benchmarks.harness.discovery import BENCH_DIR, REPO_ROOT  # noqa: E402
from benchmarks.harness.render import render_markdown, write_text_atomic  # noqa: E402
from benchmarks.harness.runner import run_suites  # noqa: E402
from benchmarks.harness.worker import SIDES, run_worker  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short budget, a few minutes")
    parser.add_argument("--suites", default="", help="comma-separated suite names (default all)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--side", choices=SIDES, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--suite-dir", default=str(BENCH_DIR), help=argparse.SUPPRESS)
    parser.add_argument(
        "--results-dir", default=str(BENCH_DIR / "results"), help="where <suite>.json go"
    )
    parser.add_argument(
        "--output", default=str(REPO_ROOT / "BENCHMARKS.md"), help="the markdown to write"
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds per side")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the markdown from the stored results, running nothing",
    )
    args = parser.parse_args(argv)
    if (args.worker is None) != (args.side is None):
        parser.error("--worker and --side go together")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        return run_worker(args.worker, args.side, args.quick, Path(args.suite_dir))
    shown = ["python", "benchmarks/run.py"] + (sys.argv[1:] if argv is None else list(argv))
    command = shlex.join(shown)
    if args.render_only:
        markdown = render_markdown(Path(args.results_dir), Path(args.suite_dir), command)
        write_text_atomic(Path(args.output), markdown)
        print(f"Wrote {args.output}")
        return 0
    return run_suites(args, command)


if __name__ == "__main__":
    sys.exit(main())
