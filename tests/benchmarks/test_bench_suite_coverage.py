"""benchmarks/suite_coverage.py: rendering, error records, generated tasks, crash isolation.

The real run is `benchmarks/run.py --suites coverage`; every figure here is made up.
"""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from benchmarks.coverage import data, isolation, measure, models
from benchmarks.harness.discovery import load_suite

REPO_ROOT = Path(__file__).resolve().parents[2]
suite = load_suite("coverage", REPO_ROOT / "benchmarks")


def _app_row(side="tfopt", **extra):
    """An application that went through every stage (made-up figures)."""
    row = {
        "model": "ResNet50",
        "side": side,
        "kind": "application",
        "input": "32x32x3 (0..1)",
        "quick": False,
        "float_steps": 4,
        "quantize": "ok",
        "train_steps": 4,
        "train_batch": 16,
        "train_loss": 2.5,
        "output_std": 1.25,
    }
    for prefix in ("tflite", "onnx"):
        row.update(
            {
                f"{prefix}_float_compute": "",
                f"{prefix}_float_other": "",
                f"{prefix}_within": 0.95,
                f"{prefix}_max_steps": 3.0,
                f"{prefix}_top1": 1.0,
                f"{prefix}_bar": "",
                f"{prefix}_self_within": 0.8,
                f"{prefix}_self_max_steps": 5.0,
            }
        )
    row.update(extra)
    return row


def _small_row(side, **extra):
    row = {
        "model": "ViT-style classifier",
        "side": side,
        "kind": "vit",
        "quick": False,
        "float_epochs": 15,
        "float_accuracy": 0.9,
        "test_samples": 359,
    }
    return {**row, **extra}


def test_render_a_model_through_every_stage():
    md = suite.render([_app_row()], [])
    assert (
        "| ResNet50 | tfopt | ok | ok, 4 steps of 16 (loss 2.5) | fully int8 | 95.0% ≤1 step, "
        "max 3, top-1 100.0%; default bar met, issue bar met (runtime) | fully int8 | 95.0% ≤1 "
        "step, max 3, top-1 100.0%; default bar met, issue bar met (runtime) |"
    ) in md.splitlines()
    # 0.95 within one step >= the runtime's 0.8, 3 steps <= its 5: the deep-model bar.
    assert (
        "| ResNet50 | tfopt | TFLite int8 | 1.25 | 95.0% | 3 | 100.0% | pass | 80.0%, max 5 "
        "| met (runtime) | none |"
    ) in md.splitlines()
    assert "Nothing failed." in md
    assert "tfmot (tf_keras): no rows" in md
    assert "Float training: 4 eager step(s) of 32 images." in md  # the full budget


def test_render_float_ops_missed_bars_and_the_runtime_floor():
    # tfmot-like: a float Conv in ONNX, a TFLite file off by many steps.
    row = _app_row(
        "tfmot",
        tflite_within=0.1,
        tflite_max_steps=48.0,
        tflite_top1=0.4375,
        tflite_bar="top-1 agreement 43.75% < 90.00%",
        tflite_self_within=0.08,
        tflite_self_max_steps=55.0,
        onnx_float_compute="Conv x28",
        onnx_float_other="Clip x27",
    )
    md = suite.render([], [row])
    line = next(x for x in md.splitlines() if x.startswith("| ResNet50 | tfmot | ok"))
    # As close as LiteRT is to itself, but top-1 43.75% < 99.5%: the bar is missed.
    assert "10.0% ≤1 step, max 48, top-1 43.8%; default bar **missed**, issue bar **missed**" in (
        line
    )
    assert "| written; float compute: Conv x28 |" in line
    assert "| misses: top-1 agreement 43.75% < 90.00% | 8.0%, max 55 | missed | none |" in md
    assert (
        "| ONNX QDQ | 1.25 | 95.0% | 3 | 100.0% | pass | 80.0%, max 5 | met (runtime) | Clip x27 |"
        in md
    )


def test_render_a_failed_quantize_and_later_stages_not_reached():
    error = "ValueError: Layer 'ln' (LayerNormalization) is not supported by QAT | " + "x" * 200
    md = suite.render([_small_row("tfopt", quantize_error=error)], [])
    line = next(x for x in md.splitlines() if x.startswith("| ViT-style classifier | tfopt"))
    cells = [c.strip() for c in line.split(" | ")]
    # The cell is cut at 110 characters, its pipe escaped; the list below has it whole.
    assert cells[2].startswith("fails: `ValueError: Layer 'ln' (LayerNormalization)")
    assert cells[2].endswith("…`") and "\\|" in cells[2]
    assert cells[3:] == ["not reached", "not reached", "—", "not reached", "— |"]
    escaped = error.replace("|", "\\|")
    assert f"- ViT-style classifier, tfopt, quantize_model: `{escaped}`" in md
    assert "| ViT-style classifier | tfopt | 359 | 90.0% | — | — | — |" in md
    assert "tfopt (Keras 3): of 1 models, 0 quantize, 0 train" in md


def test_render_a_build_failure_and_a_crash_recorded_by_isolation():
    build = {"model": "NASNetMobile", "side": "tfopt", "kind": "application"}
    build["build_error"] = "ValueError: input too small"
    crash = _app_row("tfopt", model="DenseNet121")
    for key in [k for k in crash if k.startswith("onnx_")]:
        del crash[key]
    crash["onnx_error"] = "ProcessCrash: the process died (signal 6); last output: F0000 check"
    md = suite.render([build, crash], [])
    assert (
        "| NASNetMobile | tfopt | build fails: `ValueError: input too small` | not reached" in md
    )
    line = next(x for x in md.splitlines() if x.startswith("| DenseNet121 | tfopt | ok"))
    assert line.endswith(
        "| fails: `ProcessCrash: the process died (signal 6); last output: F0000 check` | — |"
    )
    assert "- DenseNet121, tfopt, ONNX export: `ProcessCrash" in md


def test_render_small_models_accuracy_and_quick_budget():
    row = _small_row(
        "tfopt",
        quick=True,
        qat_accuracy=0.88,
        tflite_accuracy=0.87,
        onnx_accuracy=0.88,
        train_epochs=1,
        train_loss=0.3,
    )
    md = suite.render([row], [])
    assert "| ViT-style classifier | tfopt | 359 | 90.0% | 88.0% | 87.0% | 88.0% |" in md
    assert "ok, 1 epoch (loss 0.3)" in md
    assert "Float training: 1 eager step(s) of 32 images." in md  # the --quick budget


def test_rows_follow_the_model_order_tfopt_first():
    rows = suite.render([_small_row("tfopt"), _app_row()], [_app_row("tfmot")])
    order = [x.split(" | ")[:2] for x in rows.splitlines() if x.startswith("| ") and " | ok" in x]
    assert order[:2] == [["| ResNet50", "tfopt"], ["| ResNet50", "tfmot"]]


def test_describe_keeps_the_first_line_and_the_wrapped_error():
    assert measure.describe(ValueError("first\nsecond")) == "ValueError: first"
    assert measure.describe(RuntimeError("")) == "RuntimeError"
    wrapped = TypeError(
        'Exception encountered when calling layer "q" (type QuantizeLayer).\n\nin user code:\n'
        "    File x\n\n    TypeError: Input 'inputs' has type int32.\n\nCall arguments: ..."
    )
    assert measure.describe(wrapped) == (
        'TypeError: Exception encountered when calling layer "q" (type QuantizeLayer). -> '
        "TypeError: Input 'inputs' has type int32."
    )
    # tf_keras' wrapper of a TFOpLambda error (tfmot on MobileNetV3): the cause is untyped.
    untyped = AttributeError(
        'Exception encountered when calling layer "tf.__operators__.add" (type TFOpLambda).\n\n'
        "'list' object has no attribute 'dtype'\n\nCall arguments received by layer ...:\n"
        "  • x=['tf.Tensor(shape=(None, 16, 16, 16), dtype=float32)']"
    )
    assert measure.describe(untyped).endswith(
        "(type TFOpLambda). -> 'list' object has no attribute 'dtype'"
    )
    # Keras 3's wrapper, its cause in bold (tfopt QAT on a bool mask).
    keras3 = TypeError(
        "Exception encountered when calling QuantizeLayer.call().\n\n\x1b[1mInput 'inputs' of "
        "'FakeQuantWithMinMaxVars' Op has type bool.\x1b[0m\n\nArguments received by "
        "QuantizeLayer.call():\n  • inputs=tf.Tensor(shape=(None, 20), dtype=bool)"
    )
    assert measure.describe(keras3) == (
        "TypeError: Exception encountered when calling QuantizeLayer.call(). -> Input 'inputs' "
        "of 'FakeQuantWithMinMaxVars' Op has type bool."
    )
    assert len(measure.describe(ValueError("x" * 1000))) == measure.ERROR_CHARS


def test_text_task_is_seeded_and_follows_its_keyword_rule():
    x, y = data.text_task(300, seed=5)
    x2, y2 = data.text_task(300, seed=5)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.shape == (300, models.TEXT_LENGTH) and x.dtype == np.int32
    assert x.max() < models.TEXT_VOCAB and set(np.unique(y)) == {0, 1, 2}
    for tokens, label in zip(x, y):
        keywords = tokens[(tokens > 0) & (tokens < data.FIRST_FILLER)]
        counts = np.bincount((keywords - 1) // data.KEYWORDS_PER_CLASS, minlength=3)
        assert np.argmax(counts) == label and np.sum(counts == counts.max()) == 1
        length = np.count_nonzero(tokens)
        assert np.all(tokens[:length] > 0) and np.all(tokens[length:] == 0)  # post-padded


def test_tagger_task_tags_follow_the_brackets():
    x, y = data.tagger_task(200, seed=5)
    assert x.shape == y.shape == (200, models.TAGGER_LENGTH)
    for tokens, tags in zip(x, y):
        inside = False
        for token, tag in zip(tokens, tags):
            if token in (data.OPEN, data.CLOSE):
                assert tag == 2
                inside = token == data.OPEN
            else:
                assert tag == (1 if inside else 0)
    assert set(np.unique(y)) == {0, 1, 2}


def test_quick_models_are_a_subset_and_names_resolve():
    names = [m.name for m in models.models(quick=True)]
    assert names == list(models.QUICK_MODELS)
    assert len(models.models(quick=False)) == len(models.MODELS) == 12
    assert models.by_name("ResNet50").constructor == "ResNet50"
    with pytest.raises(ValueError, match="no model 'ResNet18'"):
        models.by_name("ResNet18")


FAKE_CHILD = textwrap.dedent(
    """
    import argparse, json, os, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--side"); parser.add_argument("--models"); parser.add_argument("--out")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with open(args.out, "a") as out:
        def write(record):
            out.write(json.dumps(record) + "\\n"); out.flush()
        for name in json.loads(args.models):
            row = {"model": name, "side": args.side, "quantize": "ok"}
            write({"stage": "tflite", "partial": row})
            if name == "crash":
                print("F0000 Check failed: boom", flush=True)
                os._exit(6)
            if name == "hang":
                time.sleep(60)
            write({"row": {**row, "done": True}})
    """
)


def test_isolation_records_a_crash_and_a_hang_and_goes_on(tmp_path, monkeypatch):
    child = tmp_path / "fake_child.py"
    child.write_text(FAKE_CHILD)
    monkeypatch.setattr(isolation, "POLL_S", 0.1)
    names = ["first", "crash", "hang", "last"]
    rows = isolation.run_models("tfopt", names, False, timeout_s=2.0, child=(str(child),))
    assert [r["model"] for r in rows] == names
    assert rows[0]["done"] and rows[3]["done"]
    # What the crashed model measured before it died is kept; the error names the stage.
    assert rows[1]["quantize"] == "ok" and "done" not in rows[1]
    assert rows[1]["tflite_error"] == (
        "ProcessCrash: the process died (exit status 6); last output: F0000 Check failed: boom"
    )
    assert rows[2]["tflite_error"].startswith("Timeout: no result after 2 s")
    json.dumps(rows)  # rows stay plain JSON


def test_render_float_ops_in_a_loop_body_other_float_ops_and_notes():
    lstm = _small_row("tfopt", model="LSTM sequence tagger", kind="tagger")
    lstm.update(_app_row(), model="LSTM sequence tagger", kind="tagger")
    lstm.update(tflite_subgraph_compute="FULLY_CONNECTED x2", tflite_notes="batch fixed at 1")
    convnext = _app_row(model="ConvNeXtTiny", tflite_float_other="SUB, MUL x70, CAST x92, MEAN")
    md = suite.render([convnext, lstm], [])
    assert "| written; float compute in a loop body: FULLY_CONNECTED x2 |" in md
    assert "| fully int8; other ops in float: SUB, MUL x70, CAST x92, … |" in md
    assert "- LSTM sequence tagger, tfopt, TFLite int8: batch fixed at 1" in md
    assert "`op_census(path).nested` lists the ops of loop bodies" in md
    # A float LSTM in a loop body is not "fully int8": 1 of 2 TFLite files are.
    assert "2 train, 1 reach a fully int8 TFLite file" in md
