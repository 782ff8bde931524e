"""Deployment (tfopt side, with controls): the files, their sizes, conversion cost and
latency at batch 1.

The float model and the QAT model (a few steps from it) are made in child processes
of their own and saved; each file of `FILES` is then converted in a child of its own
(`conversions`, `isolation`), so that its conversion time and peak RSS are its own.
Latency is measured in this process afterwards, with `common.interleaved_latency`:
the .tflite files in LiteRT with 1 and with 2 threads, the .onnx files in onnxruntime
with 1 thread. A file that failed to convert, or that its runtime cannot run, keeps
its error in its row and the other files are still measured.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from benchmarks import common
from benchmarks.coverage.measure import describe
from benchmarks.scale import isolation

THREADS = {"tflite": (1, 2), "onnx": (1,)}


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """One deployment file.

    Attributes:
        label: its name in the table.
        producer: what wrote it ("tfopt", or the control's tool).
        format: "tflite" or "onnx".
        stage: the `conversions` stage that writes it.
        source: "float" or "qat", the model it comes from.
        quantization: `to_tflite`'s argument (tfopt's tflite files), or the activation
            type of onnxruntime's static quantization (its control files).
    """

    label: str
    producer: str
    format: str
    stage: str
    source: str = "float"
    quantization: str | None = None

    @property
    def filename(self) -> str:
        stem = "".join(c if c.isalnum() else "_" for c in self.label.lower())
        return f"{stem}.{self.format}"


FILES = (
    FileSpec("float32", "tfopt", "tflite", "deploy_tflite"),
    FileSpec("float16", "tfopt", "tflite", "deploy_tflite", quantization="float16"),
    FileSpec("dynamic-range", "tfopt", "tflite", "deploy_tflite", quantization="dynamic"),
    FileSpec("int8 PTQ", "tfopt", "tflite", "deploy_tflite", quantization="int8"),
    FileSpec("int8 full-integer", "TFLite converter (control)", "tflite", "deploy_converter_int8"),
    FileSpec("int8 QAT", "tfopt", "tflite", "deploy_tflite", source="qat"),
    FileSpec("float ONNX", "tfopt", "onnx", "deploy_onnx"),
    FileSpec("QDQ ONNX (QAT)", "tfopt", "onnx", "deploy_onnx", source="qat"),
    FileSpec(
        "QDQ ONNX static S8S8",
        "onnxruntime (control)",
        "onnx",
        "deploy_ort_static",
        "float",
        "QInt8",
    ),
    FileSpec(
        "QDQ ONNX static U8S8",
        "onnxruntime (control)",
        "onnx",
        "deploy_ort_static",
        "float",
        "QUInt8",
    ),
)


def _args(spec: FileSpec, plan, models: dict, paths: dict) -> dict:
    size, samples = plan.deploy_model.size, plan.verify_samples
    out = {"out_path": paths[spec.label], "size": size, "samples": samples}
    if spec.stage == "deploy_tflite":
        return {
            **out,
            "model_path": models[spec.source],
            "quantization": spec.quantization,
            "calibration": plan.calibration_samples,
        }
    if spec.stage == "deploy_converter_int8":
        return {**out, "model_path": models["float"], "calibration": plan.calibration_samples}
    if spec.stage == "deploy_onnx":
        return {**out, "model_path": models[spec.source]}
    float_onnx = paths["float ONNX"]
    return {
        **out,
        "onnx_path": float_onnx,
        "model_path": models["float"],
        "calibration": plan.calibration_samples,
        "activation_type": spec.quantization,
    }


def run_deployment(plan, quick: bool) -> list[dict]:
    """The rows of the deployment part: two model stages, then one per file of `FILES`."""
    spec = plan.deploy_model
    base = {"part": "deploy", "side": "tfopt", "model": spec.label}
    rows = []
    with tempfile.TemporaryDirectory(prefix="tfopt-scale-deploy-") as tmp:
        models = {"float": str(Path(tmp) / "float.keras"), "qat": str(Path(tmp) / "qat.keras")}
        paths = {f.label: str(Path(tmp) / f.filename) for f in FILES}
        made = {
            "float": isolation.run_stage(
                "deploy_float_model",
                {"alpha": spec.alpha, "size": spec.size, "model_path": models["float"]},
                plan.stage_timeout_s,
            )
        }
        made["qat"] = _after(
            models["float"],
            "deploy_qat_model",
            {
                "model_path": models["float"],
                "out_model_path": models["qat"],
                "size": spec.size,
                "steps": plan.qat_steps,
                "batch": plan.qat_batch,
            },
            plan,
        )
        for source, label in (("float", "float model"), ("qat", "QAT model")):
            rows.append({**base, "kind": "model", "file": label, **made[source]})
        for file in FILES:
            needed = paths["float ONNX"] if file.stage == "deploy_ort_static" else None
            needed = needed or models[file.source]
            row = _after(needed, file.stage, _args(file, plan, models, paths), plan)
            row.update({"kind": "file", "file": file.label, "producer": file.producer})
            rows.append({**base, "format": file.format, **row})
        _latencies(rows, paths, plan, quick)
    return rows


def _after(needed: str, stage: str, args: dict, plan) -> dict:
    """Runs `stage` if the file it starts from exists."""
    if not Path(needed).is_file():
        return {"error": f"not run: {Path(needed).name} was not made"}
    return isolation.run_stage(stage, args, plan.stage_timeout_s)


def _latencies(rows: list[dict], paths: dict, plan, quick: bool) -> None:
    """Adds "<runtime>_<n>t_ms" to each file row whose file exists and runs
    (`common.latency_runs(quick)` timed calls per file and thread count)."""
    from tfopt.export import benchmark_latency

    for fmt, threads in THREADS.items():
        runtime = "litert" if fmt == "tflite" else "ort"
        runnable = {}
        for row in rows:
            path = paths.get(row.get("file"))
            if row.get("format") != fmt or not path or not Path(path).is_file():
                continue
            try:  # one call first: a file its runtime cannot open says so in its row
                benchmark_latency(path, warmup=0, runs=1)
                runnable[row["file"]] = path
            except Exception as err:
                row["latency_error"] = describe(err)
        for n in threads:
            if not runnable:
                break
            figures = common.interleaved_latency(
                runnable, quick=quick, rounds=plan.latency_rounds, num_threads=n
            )
            for row in rows:
                if row.get("file") in figures and row.get("format") == fmt:
                    row[f"{runtime}_{n}t_ms"] = figures[row["file"]]
