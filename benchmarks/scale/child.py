"""The child process that runs one stage (`isolation.run_stage` starts it).

    python -m benchmarks.scale.child --stage NAME --args '{"path": ...}' --out row.json

Run from the repository root, in the side's environment (inherited from the harness's
worker). The stage fills a row; a stage that raises records "error" (the exception
type and the first line of its message; the traceback goes to stderr) and the child
still exits 0. The row is written as JSON at the end, with the process's peak RSS
(`isolation.peak_mb`) and "done": true.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from benchmarks.coverage.measure import describe
from benchmarks.scale import conversions, isolation, resnet

STAGES = {**resnet.STAGES, **conversions.STAGES}


def _plain(value):
    """numpy scalars as Python numbers; anything else JSON cannot hold as its text."""
    return value.item() if hasattr(value, "item") else str(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=sorted(STAGES), required=True)
    parser.add_argument("--args", default="{}", help="the stage's keyword arguments (JSON)")
    parser.add_argument("--out", required=True, help="the JSON file to write the row to")
    args = parser.parse_args(argv)
    row: dict = {}
    try:
        STAGES[args.stage](row, **json.loads(args.args))
    except Exception as err:  # errors are data: the row says what broke
        traceback.print_exc()
        row["error"] = describe(err)
    row["peak_rss_mb"] = isolation.peak_mb()
    row["done"] = True
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(row, out, default=_plain)
    return 0


if __name__ == "__main__":
    sys.exit(main())
