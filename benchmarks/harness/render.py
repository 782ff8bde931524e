"""Results files and BENCHMARKS.md: the header, one section per suite, atomic writes.

Rows land in ``benchmarks/results/<suite>.json`` (`save_results`), one record per
suite: {"suite", "title", "quick", "finished", "command", "machine", "versions",
"sides": {side: {"rows", "error", "seconds", "load_avg_1m"}}}. BENCHMARKS.md is
rendered from every results file (`render_markdown`): a header with the machine
and versions, then each suite's section, its ``render(...)`` under a line saying
when and how it ran.
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

from benchmarks.harness.discovery import load_suite, sort_suites
from benchmarks.harness.machine import machine, utc_now, versions
from benchmarks.harness.templates import Prose
from benchmarks.harness.worker import SIDES

_PROSE = Prose("harness")  # benchmarks/templates/harness.md


def save_results(path: Path, record: dict) -> None:
    """Writes one suite's record as JSON (through a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def load_results(results_dir: Path) -> dict[str, dict]:
    """{suite: record} of every results file, in suite order; unreadable ones as
    {"suite", "load_error"}."""
    records = {}
    for path in Path(results_dir).glob("*.json"):
        try:
            records[path.stem] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            records[path.stem] = {"suite": path.stem, "load_error": f"{path}: {err}"}
    return {name: records[name] for name in sort_suites(records)}


def render_header(command: str) -> str:
    """The top of BENCHMARKS.md: title, the command and time, machine, versions, protocol."""
    m, v = machine(), versions()
    ram = "?" if m["ram_gib"] is None else f"{m['ram_gib']:.1f} GiB"
    text = _PROSE(
        "header",
        command=command,
        date=utc_now(),
        cpu=m["cpu"],
        cores=m["cores"],
        ram=ram,
        os=m["os"],
        versions=", ".join(f"{k} {val}" for k, val in v.items()),
    )
    return text + "\n"


def render_section(name: str, record: dict, suite_dir: Path) -> str:
    """One suite's section: when and how it ran, failed sides, then its `render(...)`
    (or, if that raises, the raw rows)."""
    title = record.get("title") or name
    out = [f"## {title}", ""]
    if "load_error" in record:
        return "\n".join([*out, f"Results file unreadable: {record['load_error']}", ""])
    sides = record.get("sides", {})
    mode = "`--quick` (short budget; indicative only)" if record.get("quick") else "full"
    timing, loads = [], []
    for side in SIDES:
        if sides.get(side, {}).get("seconds") is None:
            continue
        load = sides[side].get("load_avg_1m")
        loads += [] if load is None else [load]
        at = "" if load is None else f" (1-min load average {load:.1f} at its start)"
        timing.append(f"{side} side {sides[side]['seconds']:.0f} s{at}")
    by = f" by `{record['command']}`" if record.get("command") else ""
    out.append(f"_Ran {record.get('finished', '?')}{by}, {mode}; {', '.join(timing)}._")
    out.append("")
    cores = (record.get("machine") or {}).get("cores")
    if loads and cores and max(loads) >= cores:
        out += [_PROSE("busy", load=f"{max(loads):.1f}", cores=cores), ""]
    if record.get("versions") and record["versions"] != versions():
        diff = ", ".join(f"{k} {val}" for k, val in record["versions"].items())
        out += [f"_These figures were measured with other versions: {diff}._", ""]
    for side in SIDES:
        error = sides.get(side, {}).get("error")
        if error:
            out += [f"**The {side} side failed:**", "", "```", error, "```", ""]
    rows = {side: sides.get(side, {}).get("rows", []) for side in SIDES}
    try:
        suite = load_suite(name, suite_dir)
        body = suite.render(rows["tfopt"], rows["tfmot"])
    except Exception as err:
        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        body = "\n".join(
            [
                f"Rendering failed ({detail}); raw rows:",
                "",
                "```json",
                json.dumps(rows, indent=1),
                "```",
            ]
        )
    out += [body.strip(), ""]
    return "\n".join(out)


def render_markdown(results_dir: Path, suite_dir: Path, command: str) -> str:
    """The whole of BENCHMARKS.md from the results files in `results_dir`."""
    parts = [render_header(command)]
    records = load_results(results_dir)
    if not records:
        parts.append("No results yet: run `python benchmarks/run.py`.\n")
    for name, record in records.items():
        parts.append(render_section(name, record, suite_dir))
    return "\n".join(parts).rstrip() + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Writes `text` to `path` through a hidden temporary file, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
