"""The child process that measures the models of one side (`isolation` starts it).

    python -m benchmarks.coverage.child --side tfopt|tfmot --models '["ResNet50", ...]' \
        --out rows.jsonl [--quick]

Run from the repository root, in the side's environment (the tfmot side with
TF_USE_LEGACY_KERAS=1, inherited from the harness's worker). It appends one JSON
line per stage begun (``{"stage": ..., "partial": row so far}``) and one per model
finished (``{"row": ...}``), flushed at once, so that the parent keeps what was
measured if this process dies.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys

from benchmarks.coverage import measure, models, sides


def _write(out, record) -> None:
    out.write(json.dumps(record) + "\n")
    out.flush()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", choices=sorted(sides.SIDES), required=True)
    parser.add_argument("--models", required=True, help="a JSON list of model names")
    parser.add_argument("--out", required=True, help="the JSON-lines file to append to")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    specs = [models.by_name(name) for name in json.loads(args.models)]
    with open(args.out, "a", encoding="utf-8") as out:
        try:
            side = sides.SIDES[args.side]()
        except Exception as err:  # e.g. tfmot not installed: every model says so
            for spec in specs:
                row = {"model": spec.name, "side": args.side, "kind": spec.kind}
                _write(out, {"row": {**row, "build_error": measure.describe(err)}})
            return 0
        for spec in specs:
            print(f"[coverage {args.side}] {spec.name}", file=sys.stderr, flush=True)
            row = measure.measure(
                spec,
                side,
                args.quick,
                progress=lambda stage, row: _write(out, {"stage": stage, "partial": row}),
            )
            _write(out, {"row": row})
            side.keras.backend.clear_session()
            gc.collect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
