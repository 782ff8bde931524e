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
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SIDES = ("tfopt", "tfmot")
ROWS_MARKER = "@@TFOPT-BENCHMARK-ROWS@@ "
SUITE_ORDER = ("ptq", "pruning", "qat", "distillation")
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
_ERROR_TAIL_LINES = 25


# ---------------------------------------------------------------------------
# Suites


def discover_suites(suite_dir: Path) -> list[str]:
    """Names of the suites in `suite_dir` (files suite_<name>.py), known suites first."""
    names = [p.stem[len("suite_") :] for p in Path(suite_dir).glob("suite_*.py")]
    return sort_suites(names)


def sort_suites(names) -> list[str]:
    known = [n for n in SUITE_ORDER if n in names]
    return known + sorted(n for n in set(names) if n not in SUITE_ORDER)


def load_suite(name: str, suite_dir: Path):
    """Imports benchmarks/suite_<name>.py (by path) and checks it has the four members."""
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
    missing = [m for m in ("TITLE", "run_tfopt", "run_tfmot", "render") if not hasattr(module, m)]
    if missing:
        raise TypeError(f"Suite {name!r} ({path}) lacks {', '.join(missing)}.")
    return module


def _ensure_import_path() -> None:
    # `from benchmarks import common` needs the repository root on sys.path.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


def _jsonable(value):
    """Rows as plain JSON: numpy scalars become Python numbers, NaN/inf become None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"Benchmark rows must hold numbers, strings, booleans or None. Received: {value!r} "
        f"(of type {type(value).__name__})"
    )


def check_rows(rows, where: str) -> list[dict]:
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TypeError(
            f"{where} must return a list of dicts. Received: {type(rows).__name__} {rows!r:.200}"
        )
    return _jsonable(rows)


# ---------------------------------------------------------------------------
# Worker: one side of one suite, in this (fresh) process.


def side_environment(side: str, base: dict | None = None) -> dict:
    """The environment a side runs in: Keras 3 for tfopt, tf_keras (legacy) for tfmot."""
    env = dict(os.environ if base is None else base)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    if side == "tfmot":
        env["TF_USE_LEGACY_KERAS"] = "1"
    else:
        env.pop("TF_USE_LEGACY_KERAS", None)
    return env


def run_worker(name: str, side: str, quick: bool, suite_dir: Path) -> int:
    # Fix the Keras flavour before anything can import TensorFlow (the environment is
    # computed before os.environ is cleared: clearing first left only the side's two
    # variables, without PATH, HOME or a suite's own settings).
    env = side_environment(side)
    os.environ.clear()
    os.environ.update(env)
    suite = load_suite(name, suite_dir)
    rows = getattr(suite, f"run_{side}")(quick)
    rows = check_rows(rows, f"suite_{name}.run_{side}")
    # On a line of its own, whatever the suite printed before.
    print("\n" + ROWS_MARKER + json.dumps(rows), flush=True)
    return 0


# ---------------------------------------------------------------------------
# Parent: spawn the sides, store results, render BENCHMARKS.md.


def run_side(name: str, side: str, quick: bool, suite_dir: Path, timeout: float) -> dict:
    """Runs one side in a subprocess; returns {"rows", "error", "seconds"}."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--side", side]
    command += ["--suite-dir", str(suite_dir)]
    if quick:
        command.append("--quick")
    load = _load_average()
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            command,
            env=side_environment(side),
            cwd=str(REPO_ROOT),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        return {
            "rows": [],
            "error": f"Timed out after {timeout:.0f} s.\n{_tail(_text(err.stderr))}",
            "seconds": time.perf_counter() - start,
            "load_avg_1m": load,
        }
    seconds = time.perf_counter() - start
    rows = None
    for line in proc.stdout.splitlines():
        if line.startswith(ROWS_MARKER):
            rows = json.loads(line[len(ROWS_MARKER) :])  # the last such line wins
    if proc.returncode != 0 or rows is None:
        why = f"exit status {proc.returncode}" if proc.returncode else "no rows printed"
        detail = _tail(proc.stderr) or _tail(proc.stdout)
        error = f"Worker failed ({why}).\n{detail}"
        return {"rows": [], "error": error, "seconds": seconds, "load_avg_1m": load}
    return {"rows": rows, "error": None, "seconds": seconds, "load_avg_1m": load}


def _load_average():
    """The 1-minute load average (None where the OS does not report it)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _tail(text: str, lines: int = _ERROR_TAIL_LINES) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def versions() -> dict:
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


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def save_results(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def load_results(results_dir: Path) -> dict[str, dict]:
    records = {}
    for path in Path(results_dir).glob("*.json"):
        try:
            records[path.stem] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            records[path.stem] = {"suite": path.stem, "load_error": f"{path}: {err}"}
    return {name: records[name] for name in sort_suites(records)}


def render_header(command: str) -> str:
    m, v = machine(), versions()
    ram = "?" if m["ram_gib"] is None else f"{m['ram_gib']:.1f} GiB"
    lines = [
        "# tfopt benchmarks: tfopt (Keras 3) vs tfmot (tf_keras)",
        "",
        f"Written by `{command}` on {_now()}. Each suite section says when it ran.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {ram} RAM, {m['os']}",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "- Protocol: each side of a suite runs in a fresh process — tfopt on Keras 3 "
        "(TF_USE_LEGACY_KERAS unset), tfmot on a tf_keras twin (TF_USE_LEGACY_KERAS=1) — "
        "with the same data (scikit-learn digits, 1,438 train / 359 test), architecture, "
        "seed and training budget (benchmarks/common.py). Accuracy is of the exported "
        ".tflite run in LiteRT on the test split. Latency is LiteRT at batch 1 on 1 thread "
        "(median call); compare latency and epoch times as ratios measured within one process, "
        "not as absolute figures. Peak RSS is the process's maximum resident memory.",
        "",
    ]
    return "\n".join(lines)


def render_section(name: str, record: dict, suite_dir: Path) -> str:
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
        out += [
            f"_The machine was busy (load average up to {max(loads):.1f} on {cores} cores): "
            "times and latencies are noisier than on an idle machine; ratios measured within "
            "one process hold up best._",
            "",
        ]
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
    parts = [render_header(command)]
    records = load_results(results_dir)
    if not records:
        parts.append("No results yet: run `python benchmarks/run.py`.\n")
    for name, record in records.items():
        parts.append(render_section(name, record, suite_dir))
    return "\n".join(parts).rstrip() + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_suites(args, command: str) -> int:
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
                print(_tail(result["error"], 8), flush=True)
            else:
                print(f"{len(result['rows'])} rows in {result['seconds']:.0f} s", flush=True)
        save_results(
            results_dir / f"{name}.json",
            {
                "suite": name,
                "title": title,
                "quick": bool(args.quick),
                "finished": _now(),
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
