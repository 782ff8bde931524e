"""Recipes are plain data: dataclasses, dicts, JSON and YAML files, checked when built."""

import json
import re
from pathlib import Path

import pytest
import yaml

from tfopt.pipeline import (
    DistillStage,
    ExportStage,
    PruneStage,
    PTQStage,
    QATStage,
    Recipe,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def _full_recipe():
    return Recipe(
        [
            DistillStage(epochs=2, teacher="teacher.keras", temperature=3.0, alpha=0.7),
            PruneStage(sparsity_m_by_n=(2, 4), leave_dense=["conv"], epochs=1, frequency=5),
            QATStage(epochs=1, optimizer="sgd", learning_rate=0.01),
            ExportStage(formats=["tflite", "onnx"], latency_runs=5, baseline=False),
        ],
        seed=3,
        from_logits=True,
    )


def test_dict_round_trip_is_exact():
    recipe = _full_recipe()
    data = recipe.to_dict()
    assert Recipe.from_dict(data) == recipe
    assert json.loads(json.dumps(data)) == data  # JSON-able as it is
    assert [s["stage"] for s in data["stages"]] == ["distill", "prune", "qat", "export"]
    assert data["stages"][1]["sparsity_m_by_n"] == [2, 4]
    assert data["stages"][1]["schedule"] == "constant"  # the default for m:n


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_file_round_trip(tmp_path, suffix):
    recipe = _full_recipe()
    path = tmp_path / f"recipe{suffix}"
    recipe.to_file(path)
    assert Recipe.from_file(path) == recipe
    if suffix != ".json":
        assert yaml.safe_load(path.read_text()) == recipe.to_dict()


def test_a_short_dict_takes_the_defaults():
    recipe = Recipe.from_dict(
        {
            "stages": [
                {"stage": "prune", "sparsity": 0.8},
                {"stage": "ptq", "mode": "int8"},
                {"stage": "export", "formats": "tflite"},
            ]
        }
    )
    prune, ptq, export = recipe.stages
    assert (prune.epochs, prune.optimizer, prune.learning_rate) == (3, "adam", 5e-4)
    assert prune.schedule == "polynomial" and prune.target_sparsity == 0.8
    assert ptq.calibration_samples == 200
    assert export.formats == ("tflite",) and export.baseline is True
    assert recipe.seed == 0 and recipe.from_logits is None
    assert PruneStage(sparsity_m_by_n="1:4").target_sparsity == 0.25


def _readme_yaml_recipe() -> str:
    text = README.read_text()
    section = text[text.index("### One call: `tfopt.optimize`") :]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def test_the_readme_recipe_file_parses(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(_readme_yaml_recipe())
    recipe = Recipe.from_file(path)
    assert [s.kind for s in recipe.stages] == ["distill", "prune", "qat", "export"]
    assert recipe.stage("prune").sparsity == 0.8
    assert recipe.stage("export").formats == ("tflite", "onnx")


@pytest.mark.parametrize(
    ("stages", "match"),
    [
        (["qat", "prune"], r"'prune' comes after 'qat'.*lose it.*Prune first"),
        (["ptq", "prune", "export"], r"'prune' comes after 'ptq'"),
        (["prune", "ptq", "export", "qat"], r"both 'qat' and 'ptq'"),
        (["export", "prune"], r"'export' comes before 'prune'.*last stage"),
        (["prune", "distill"], r"'distill' comes after 'prune'.*zeros.*Distill first"),
        (["prune", "prune"], r"'prune' appears 2 times"),
        (["ptq"], r"'ptq'.*add ExportStage\(formats=\['tflite'\]\)"),
    ],
)
def test_orders_that_lose_work_are_refused(stages, match):
    make = {
        "prune": lambda: PruneStage(sparsity=0.5),
        "qat": QATStage,
        "ptq": PTQStage,
        "export": ExportStage,
        "distill": DistillStage,
    }
    with pytest.raises(ValueError, match=match) as info:
        Recipe([make[k]() for k in stages])
    assert "distill -> prune -> qat or ptq -> export" in str(info.value) or "ptq" in stages


def test_combinations_that_cannot_run_are_refused():
    with pytest.raises(ValueError, match=r"applies to TFLite files only.*qat"):
        Recipe([PTQStage(), ExportStage(formats=["tflite", "onnx"])])
    with pytest.raises(ValueError, match=r"preserve_sparsity=False after 'prune'"):
        Recipe([PruneStage(sparsity=0.5), QATStage(preserve_sparsity=False)])
    with pytest.raises(ValueError, match=r"tflite16x8.*ONNX"):
        Recipe([QATStage(config="tflite16x8"), ExportStage(formats="tflite,onnx")])
    with pytest.raises(ValueError, match=r"sparse=True and stage 'ptq' with mode='int16x8'"):
        Recipe([PruneStage(sparsity=0.5), PTQStage(mode="int16x8"), ExportStage(sparse=True)])
    with pytest.raises(ValueError, match=r"at least one stage"):
        Recipe([])
    with pytest.raises(TypeError, match=r"stages\[0\].*Recipe.from_dict"):
        Recipe([{"stage": "prune"}])


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: PruneStage(sparsity=1.5), ValueError, r"`sparsity` must be in \[0.0, 1.0\)"),
        (lambda: PruneStage(), ValueError, r"one of `sparsity`.*`sparsity_m_by_n`"),
        (lambda: PruneStage(sparsity=0.5, sparsity_m_by_n=(2, 4)), ValueError, r"one of"),
        (lambda: PruneStage(sparsity_m_by_n="4:2"), ValueError, r"0 < m < n.*'4:2'"),
        (
            lambda: PruneStage(sparsity_m_by_n=(2, 4), schedule="polynomial"),
            ValueError,
            r"'constant' with sparsity_m_by_n",
        ),
        (lambda: PruneStage(sparsity=0.5, end_step=0), ValueError, r"`end_step` must be >= 1"),
        (lambda: QATStage(epochs=0), ValueError, r"`epochs` must be >= 1. Received: epochs=0"),
        (lambda: QATStage(epochs=1.5), TypeError, r"`epochs` must be an int"),
        (lambda: QATStage(learning_rate=-1), ValueError, r"`learning_rate` must be in \(0, 10\]"),
        (lambda: QATStage(config="edge"), ValueError, r"`config` must be one of"),
        (lambda: QATStage(optimizer=""), TypeError, r"`optimizer` must be a Keras optimizer"),
        (lambda: DistillStage(alpha=2), ValueError, r"`alpha` must be in \[0.0, 1.0\]"),
        (lambda: DistillStage(loss="kl"), ValueError, r"`loss` must be one of 'soft'"),
        (lambda: PTQStage(mode="int4"), ValueError, r"`mode` must be one of 'dynamic'"),
        (lambda: ExportStage(formats=["tflite", "coreml"]), ValueError, r"`formats`.*'coreml'"),
        (lambda: ExportStage(formats=[]), ValueError, r"`formats` must name one or more"),
        (lambda: ExportStage(latency_runs=0), ValueError, r"`latency_runs` must be >= 1"),
        (lambda: Recipe([ExportStage()], seed=-1), ValueError, r"`seed` must be in"),
    ],
)
def test_bad_arguments_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_from_dict_names_the_stage_and_the_key():
    with pytest.raises(ValueError, match=r"stages\[1\]: unknown stage 'quantize'.*Known stages"):
        Recipe.from_dict({"stages": [{"stage": "prune", "sparsity": 0.5}, {"stage": "quantize"}]})
    with pytest.raises(ValueError, match=r"stages\[0\] \(prune\): unknown key\(s\) \['sparse'\]"):
        Recipe.from_dict({"stages": [{"stage": "prune", "sparse": 0.5}]})
    with pytest.raises(ValueError, match=r"stages\[0\] \(prune\): Argument `sparsity`"):
        Recipe.from_dict({"stages": [{"stage": "prune", "sparsity": 2}]})
    with pytest.raises(ValueError, match=r"missing 'stages'"):
        Recipe.from_dict({"seed": 1})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['seeds'\]"):
        Recipe.from_dict({"stages": [], "seeds": 1})


def test_from_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        Recipe.from_file(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match=r"must end in .json, .yaml or .yml"):
        Recipe.from_file(tmp_path / "recipe.txt")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [\n")
    with pytest.raises(ValueError, match=r"'.*bad.yaml' is not valid YAML"):
        Recipe.from_file(bad)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    with pytest.raises(ValueError, match=r"is not valid JSON"):
        Recipe.from_file(bad_json)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("stages: [{stage: prune, sparsity: 0.5}, {stage: prune, sparsity: 0.8}]")
    with pytest.raises(ValueError, match=r"wrong.yaml': Argument `stages`: stage 'prune' appears"):
        Recipe.from_file(wrong)


def test_reading_a_recipe_loads_no_tensorflow(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "r.yaml"
    Recipe([PruneStage(sparsity=0.5), ExportStage()]).to_file(path)
    code = (
        "import sys, tfopt.pipeline as p\n"
        f"p.Recipe.from_file({str(path)!r})\n"
        "print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
