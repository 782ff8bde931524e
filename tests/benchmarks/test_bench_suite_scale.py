"""benchmarks/suite_scale.py: rendering, goals and the child-process isolation.

The real run is `benchmarks/run.py --suites scale`; every figure here is made up.
"""

import json
import sys
import textwrap
from pathlib import Path

from benchmarks.harness.discovery import load_suite
from benchmarks.scale import budget, goals, isolation, protocol

REPO_ROOT = Path(__file__).resolve().parents[2]
suite = load_suite("scale", REPO_ROOT / "benchmarks")


def _training(side, qat_ratio, prune_ratio):
    return {
        "part": "training",
        "side": side,
        "model": "MobileNetV2 alpha 1.0, 128x128",
        "params": 2270794,
        "float_step_s": 0.5,
        "qat_step_s": 0.5 * qat_ratio,
        "prune_step_s": 0.5 * prune_ratio,
        "qat_ratio": qat_ratio,
        "prune_ratio": prune_ratio,
        "float_first_step_s": 10.0,
        "qat_first_step_s": 20.0,
        "prune_first_step_s": 15.0,
        "peak_rss_mb": 3000.0,
    }


def _file(label, fmt, **figures):
    row = {"part": "deploy", "side": "tfopt", "kind": "file", "file": label, "format": fmt}
    return {**row, "producer": "tfopt", "bytes": 4096, "gzip_bytes": 2048, **figures}


def _tfopt_rows():
    return [
        protocol._meta("tfopt", quick=False),
        _training("tfopt", 1.05, 1.01),
        {
            "part": "mask",
            "side": "tfopt",
            "model": "ResNet50, 128x128",
            "params": 23_608_202,
            "prunable_params": 2_000_000,
            "mask_update_ms": 50.0,
        },
        {
            "part": "resnet",
            "side": "tfopt",
            "model": "ResNet50, 128x128",
            "stage": "QAT export",
            "peak_rss_mb": 6 * 1024.0,
            "process_s": 100.0,
            "convert_s": 60.0,
        },
        _file("int8 PTQ", "tflite", litert_1t_ms=4.0, litert_2t_ms=2.5),
        _file("int8 full-integer", "tflite", litert_1t_ms=4.2, litert_2t_ms=2.4),
        _file(
            "int8 QAT",
            "tflite",
            litert_1t_ms=4.1,
            litert_2t_ms=2.6,
            parity_top1=1.0,
            parity_within_one_step=0.9,
            parity_max_abs=0.25,
        ),
        _file("float ONNX", "onnx", ort_1t_ms=10.0),
        _file("QDQ ONNX (QAT)", "onnx", ort_1t_ms=9.0),
        _file("QDQ ONNX static S8S8", "onnx", ort_1t_ms=12.0),
        _file("QDQ ONNX static U8S8", "onnx", ort_1t_ms=7.0),
        _file("dynamic-range", "tflite", error="RuntimeError: converter failed"),
    ]


def _tfmot_rows():
    mask = {
        "part": "mask",
        "side": "tfmot",
        "model": "ResNet50, 128x128",
        "params": 23_608_202,
        "prunable_params": 2_000_000,
        "mask_update_ms": 80.0,
    }
    return [protocol._meta("tfmot", quick=False), _training("tfmot", 1.5, 1.07), mask]


def test_goals_met_missed_and_not_measured():
    verdicts = {
        g["goal"]: (g["verdict"], g["figure"]) for g in goals.goals(_tfopt_rows(), _tfmot_rows())
    }
    assert verdicts["QAT step / float step <= 1.10"] == ("met", "1.05 (limit 1.10)")
    assert verdicts["QAT step / float step at or below tfmot's"] == ("met", "1.05 (tfmot's 1.50)")
    assert verdicts["ResNet50 QAT export peak memory < 8 GiB"] == (
        "met",
        "6.00 GiB (limit 8.00 GiB)",
    )
    two = (
        "LiteRT latency of tfopt's int8 PTQ file (2 threads) <= the converter's own "
        "full-integer file"
    )
    assert verdicts[two] == ("missed", "2.500 ms (converter's 2.400 ms), +4.17%")
    # 9.0 / 10.0 = 0.9 > 0.8; 9.0 ms > 7.0 ms, the faster control (U8S8; S8S8 12.0 ms).
    assert verdicts["QDQ ONNX latency <= 0.8x float ONNX (onnxruntime, 1 thread)"][0] == "missed"
    ort = (
        "QDQ ONNX latency <= onnxruntime's own static quantization, the faster of its S8S8 "
        "and U8S8 files (1 thread)"
    )
    assert verdicts[ort] == ("missed", "9.000 ms (onnxruntime's 7.000 ms), +28.57%")
    nothing = {g["verdict"] for g in goals.goals([], [])}
    assert nothing == {"not measured"}


def test_render_tables_goals_and_failures():
    md = suite.render(_tfopt_rows(), _tfmot_rows())
    lines = md.splitlines()
    assert "| QAT / float step (wall) | 1.05x | 1.50x |" in lines
    assert "| float step, ms | 500 | 500 |" in lines
    # 50 ms over 2 million pruned weights = 25 ms per million.
    assert "| ResNet50, 128x128 | 23,608,202 | 2,000,000 | 50.0 | 80.0 | 25.0 | 40.0 |" in lines
    assert (
        "| int8 QAT | tfopt | 4.0 KiB | 2.0 KiB | — | — | 4.100 | 2.600 | — "
        "| top-1 100.0%, 90.0% ≤1 step, max abs 0.25 |" in lines
    )
    assert "- tfopt, dynamic-range (deploy): `RuntimeError: converter failed`" in lines
    assert "- QAT step / float step <= 1.10: **met** — 1.05 (limit 1.10)" in lines
    assert "not measured" in md  # the deployment rows of the tfmot side


def test_latency_within_noise_is_even_and_identical_files_are_named():
    rows = [
        _file("int8 PTQ", "tflite", litert_1t_ms=4.05, sha256="ab"),
        _file("int8 full-integer", "tflite", litert_1t_ms=4.0, sha256="ab"),
    ]
    verdicts = {g["goal"]: g["verdict"] for g in goals.goals(rows, [])}
    one = (
        "LiteRT latency of tfopt's int8 PTQ file (1 thread) <= the converter's own "
        "full-integer file"
    )
    # 4.05 / 4.0 = +1.25%, inside goals.LATENCY_NOISE (2%).
    assert verdicts[one] == "even (within 2%, measurement noise)"
    md = suite.render(rows, [])
    assert "Byte-identical files: int8 PTQ and int8 full-integer." in md.splitlines()


def test_render_quick_and_empty_sides():
    md = suite.render([protocol._meta("tfopt", quick=True)], [])
    assert "This is a `--quick` run" in md
    assert "ResNet50's stages: not measured in this run." in md
    assert "Nothing failed." in md


def test_the_goals_name_files_the_deployment_part_writes():
    from benchmarks.scale import deployment

    labels = {f.label for f in deployment.FILES}
    assert set(goals.ORT_CONTROLS) | {"int8 PTQ", "int8 QAT", "int8 full-integer"} <= labels
    assert {"float ONNX", "QDQ ONNX (QAT)"} <= labels
    assert len({f.filename for f in deployment.FILES}) == len(deployment.FILES)


def test_budgets_keep_the_issue_sizes():
    full = budget.budget(False)
    assert full.train_model.label == "MobileNetV2 alpha 1.0, 128x128"
    assert full.train_batch == 16
    assert full.deploy_model.label == "MobileNetV2 alpha 1.0, 224x224"
    assert [m.kind for m in full.mask_models] == ["MobileNetV2", "MobileNetV2", "ResNet50"]
    assert budget.budget(True).resnet is None


def test_isolation_reports_the_child_peak_and_a_crash(tmp_path):
    # A stand-in child (no TensorFlow): allocates ~200 MiB, writes its row, or dies.
    script = tmp_path / "fake_child.py"
    script.write_text(
        textwrap.dedent("""
        import argparse, json, os, time
        p = argparse.ArgumentParser()
        p.add_argument("--stage"); p.add_argument("--args"); p.add_argument("--out")
        a = p.parse_args()
        block = bytearray(b"x") * (200 * 1024 * 1024)  # written, so resident
        time.sleep(1.5)  # the parent polls the peak every 0.5 s
        if a.stage == "die":
            print("dying now", flush=True)
            os._exit(3)
        json.dump({"done": True, "figure": 1.5, **json.loads(a.args)}, open(a.out, "w"))
    """)
    )
    row = isolation.run_stage("ok", {"x": 1}, 30, child=(str(script),))
    assert row["figure"] == 1.5 and row["x"] == 1 and "error" not in row
    # The child's own peak (its 200 MiB and an interpreter), not this process's: Linux
    # carries a parent's high-water mark into getrusage/wait4 figures of its children.
    assert 200 < row["peak_rss_mb"] < 400
    died = isolation.run_stage("die", {}, 30, child=(str(script),))
    assert died["error"].startswith("ProcessCrash: the process died (exit status 3)")
    assert "dying now" in died["error"]
    assert died["peak_rss_mb"] > 200


def test_isolation_stops_an_overrunning_child(tmp_path):
    script = tmp_path / "slow_child.py"
    script.write_text("import time\ntime.sleep(60)\n")
    row = isolation.run_stage("slow", {}, 1, child=(str(script),))
    assert row["error"].startswith("Timeout: no result after 1 s")
    assert row["process_s"] < 30


def test_child_records_an_error_as_data(tmp_path):
    import subprocess

    out = tmp_path / "row.json"
    code = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.scale.child",
            "--stage",
            "resnet_export",
            "--args",
            json.dumps({"bad": 1}),
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert code.returncode == 0
    row = json.loads(out.read_text())
    assert row["done"] is True
    assert row["error"].startswith("TypeError: export() got an unexpected keyword argument")


def test_resnet_stages_pass_the_model_on_and_skip_an_export_without_one(monkeypatch):
    import dataclasses

    from benchmarks.scale import resnet

    calls = []

    def fake_stage(stage, args, timeout_s):
        calls.append(stage)
        if stage == "resnet_qat_train":  # the QAT model is saved, the pruned one is not
            Path(args["model_path"]).write_text("model")
            return {"train_s": 1.0, "peak_rss_mb": 100.0}
        if stage == "resnet_prune_train":
            return {"error": "ValueError: made up"}
        return {"convert_s": 2.0, "peak_rss_mb": 200.0}

    monkeypatch.setattr(isolation, "run_stage", fake_stage)
    plan = dataclasses.replace(budget.QUICK, resnet=budget.ModelSpec("ResNet50", 32))
    rows = resnet.run_resnet(plan)
    assert calls == ["resnet_qat_train", "resnet_export", "resnet_prune_train"]
    assert [r["stage"] for r in rows] == [
        "QAT train",
        "QAT export",
        "pruning train",
        "pruning export",
    ]
    assert rows[1]["convert_s"] == 2.0 and rows[1]["model"] == "ResNet50, 32x32"
    assert rows[3]["error"] == "not run: the training stage saved no model"
    assert resnet.run_resnet(budget.QUICK) == []  # --quick skips ResNet50
