"""A benchmark run: both sides of each wanted suite, their results files, BENCHMARKS.md.

A side that crashes or times out records its error in its section; the run goes
on and exits with status 1 at the end.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.harness.discovery import discover_suites, load_suite
from benchmarks.harness.machine import machine, utc_now, versions
from benchmarks.harness.render import render_markdown, save_results, write_text_atomic
from benchmarks.harness.worker import SIDES, run_side, tail


def run_suites(args, command: str) -> int:
    """Runs the suites `args` names (run.py's arguments); returns the exit status."""
    suite_dir, results_dir = Path(args.suite_dir), Path(args.results_dir)
    available = discover_suites(suite_dir)
    if args.suites:
        wanted = [s.strip() for s in args.suites.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in available]
        if unknown:
            raise SystemExit(
                f"Argument `--suites`: no suite named {', '.join(unknown)}. "
                f"Received: --suites={args.suites}. Suites found: {', '.join(available)}."
            )
    else:
        wanted = available
    timeout = args.timeout or (900.0 if args.quick else 3600.0)
    failures = 0
    for name in wanted:
        try:
            title = str(load_suite(name, suite_dir).TITLE)
        except Exception as err:
            title = name
            print(f"[{name}] cannot import the suite: {err}", flush=True)
        sides = {}
        for side in SIDES:
            print(f"[{name}] {side} side ...", end=" ", flush=True)
            result = run_side(name, side, args.quick, suite_dir, timeout)
            sides[side] = result
            if result["error"]:
                failures += 1
                print(f"FAILED after {result['seconds']:.0f} s", flush=True)
                print(tail(result["error"], 8), flush=True)
            else:
                print(f"{len(result['rows'])} rows in {result['seconds']:.0f} s", flush=True)
        save_results(
            results_dir / f"{name}.json",
            {
                "suite": name,
                "title": title,
                "quick": bool(args.quick),
                "finished": utc_now(),
                "command": command,
                "machine": machine(),
                "versions": versions(),
                "sides": sides,
            },
        )
    output = Path(args.output)
    write_text_atomic(output, render_markdown(results_dir, suite_dir, command))
    print(f"Wrote {output}" + (f" ({failures} side(s) failed)" if failures else ""))
    return 1 if failures else 0
