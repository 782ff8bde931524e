"""Recipes for `tfopt.optimize`: stages as plain data (dataclasses, dicts, JSON, YAML).

Imports neither TensorFlow nor Keras: a recipe is checked for its own sense
(arguments, stage order) when it is built; what depends on the model and the
data is checked by `tfopt.optimize` before any training starts.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from tfopt.pipeline._validate import check_int, check_optional_bool, received, set_field
from tfopt.pipeline.stages import ORDER_RANK, ORDER_TEXT, STAGES, Stage


def _order_problem(kinds: list[str]) -> str | None:
    """Why this order of stage kinds loses work (None when it is fine)."""
    for i, later in enumerate(kinds):
        for earlier in kinds[:i]:
            if ORDER_RANK[later] >= ORDER_RANK[earlier]:
                continue
            if earlier == "export":
                return (
                    f"stage 'export' comes before '{later}': export is the last stage (it writes "
                    f"the files of the final model), so '{later}' would change a model after "
                    "its files were written"
                )
            if earlier in ("qat", "ptq") and later == "prune":
                return (
                    f"stage 'prune' comes after '{earlier}': pruning would retrain the weights "
                    f"after quantization and lose it (and a QAT model cannot be pruned). Prune "
                    f"first, then '{earlier}' (QAT keeps the zeros: preserve_sparsity=True)"
                )
            if earlier == "ptq":
                return (
                    f"stage '{later}' comes after 'ptq': post-training quantization applies to "
                    "the final trained model at export, so no training stage may follow it"
                )
            if later == "distill":
                what = "the zeros of pruning" if earlier == "prune" else "the QAT model"
                return (
                    f"stage 'distill' comes after '{earlier}': distilling would retrain the "
                    f"model without {what}. Distill first"
                )
            return f"stage '{later}' comes after '{earlier}'"
    return None


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The stages `tfopt.optimize` runs, as plain data.

    Stages run in the order given, which must be distill -> prune -> qat or
    ptq -> export (each optional, each at most once): any other order would
    lose work (e.g. pruning after QAT). The recipe is the same thing as a dict
    (`to_dict` / `from_dict`) and as a JSON or YAML file (`to_file` /
    `from_file`).

    Example:

    ```python
    from tfopt.pipeline import ExportStage, PruneStage, QATStage, Recipe

    recipe = Recipe([PruneStage(sparsity=0.8, epochs=2), QATStage(epochs=1),
                     ExportStage(formats=["tflite", "onnx"])])
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    ```

    Args:
        stages: the stages, instances of `DistillStage`, `PruneStage`,
            `QATStage`, `PTQStage` and `ExportStage`.
        seed: seed of Keras's random generators (`keras.utils.set_random_seed`),
            set when the run starts. Defaults to `0`.
        from_logits: whether the model outputs logits (True) or probabilities
            (False), for the training loss. Defaults to `None` (told from the
            model's outputs on validation samples: rows of non-negative values
            summing to 1 are probabilities).

    Raises:
        TypeError: a stage that is not a stage object, or an argument of the
            wrong type.
        ValueError: no stages, a repeated stage, both "qat" and "ptq", an order
            that loses work, "ptq" without a "tflite" export or with an "onnx"
            one, `preserve_sparsity=False` after "prune", or QAT's "tflite16x8"
            config with an "onnx" export.
    """

    stages: tuple[Stage, ...]
    seed: int = 0
    from_logits: bool | None = None

    def __post_init__(self):
        stages = self.stages
        if isinstance(stages, (list, tuple)):
            stages = tuple(stages)
        else:
            raise TypeError(
                "Argument `stages` must be a list of stage objects (DistillStage, PruneStage, "
                f"QATStage, PTQStage, ExportStage). {received('stages', self.stages)}"
            )
        if not stages:
            raise ValueError(
                f"Argument `stages` must hold at least one stage ({ORDER_TEXT}). Received: []"
            )
        for i, stage in enumerate(stages):
            if not isinstance(stage, tuple(STAGES.values())):
                hint = (
                    " (a dict: build the recipe with Recipe.from_dict)"
                    if isinstance(stage, dict)
                    else ""
                )
                raise TypeError(
                    f"Argument `stages`: stages[{i}] must be a DistillStage, PruneStage, "
                    f"QATStage, PTQStage or ExportStage{hint}. Received: {stage!r}"
                )
        set_field(self, "stages", stages)
        set_field(self, "seed", check_int("seed", self.seed, 0, 2**32 - 1))
        check_optional_bool("from_logits", self.from_logits)
        self._check_order()

    def _check_order(self) -> None:
        kinds = [s.kind for s in self.stages]
        for kind in set(kinds):
            where = [i for i, k in enumerate(kinds) if k == kind]
            if len(where) > 1:
                raise ValueError(
                    f"Argument `stages`: stage '{kind}' appears {len(where)} times (stages "
                    f"{where}); each stage runs at most once ({ORDER_TEXT}). Received: {kinds}"
                )
        if "qat" in kinds and "ptq" in kinds:
            raise ValueError(
                "Argument `stages` holds both 'qat' and 'ptq': both quantize the same model; "
                "keep one ('qat' trains with quantization, 'ptq' converts after). "
                f"Received: {kinds}"
            )
        problem = _order_problem(kinds)
        if problem:
            raise ValueError(
                f"Argument `stages`: {problem}. The order that works: {ORDER_TEXT}. "
                f"Received: {kinds}"
            )
        export = self.stage("export")
        formats = export.formats if export else ()
        ptq = self.stage("ptq")
        if ptq and "tflite" not in formats:
            raise ValueError(
                f"Stage 'ptq' (mode={ptq.mode!r}) quantizes the TFLite file: add "
                "ExportStage(formats=['tflite']) after it (in a recipe file: "
                f"{{stage: export, formats: [tflite]}}). Received: {kinds}"
            )
        if ptq and "onnx" in formats:
            raise ValueError(
                f"Stage 'ptq' (mode={ptq.mode!r}) applies to TFLite files only: "
                "tfopt.export.to_onnx writes float ONNX, or int8 QDQ ONNX from a QAT model. "
                "Export formats=['tflite'] with 'ptq', or use a 'qat' stage for an int8 ONNX "
                f"file. Received: formats={list(formats)}"
            )
        if ptq and ptq.mode == "int16x8" and export.sparse:
            raise ValueError(
                "Stage 'export' with sparse=True and stage 'ptq' with mode='int16x8': the "
                "converter's sparse encoding of a 16x8 file computes wrong values. Leave "
                "sparse=None (16x8 files are written dense) or set it False. "
                "Received: sparse=True"
            )
        qat = self.stage("qat")
        if qat and qat.preserve_sparsity is False and "prune" in kinds:
            raise ValueError(
                "Stage 'qat' with preserve_sparsity=False after 'prune' would train the pruned "
                "zeros away. Leave preserve_sparsity=None (or True). "
                "Received: preserve_sparsity=False"
            )
        if qat and qat.config == "tflite16x8" and "onnx" in formats:
            raise ValueError(
                "Stage 'qat' with config='tflite16x8' trains for TFLite's 16x8 mode, which "
                "ONNX has no form of. Export formats=['tflite'], or use config='tflite' for "
                f"ONNX. Received: formats={list(formats)}"
            )

    def stage(self, kind: str) -> Stage | None:
        """Returns the stage of this kind ("distill", "prune", ...), or None."""
        return next((s for s in self.stages if s.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        """Returns the recipe as JSON/YAML-able data: `{"seed", "from_logits", "stages"}`.

        Each stage is `{"stage": kind, **fields}`, every field written out.
        """
        stages = []
        for s in self.stages:
            fields = {
                f.name: (list(v) if isinstance(v, tuple) else v)
                for f in dataclasses.fields(s)
                for v in [getattr(s, f.name)]
            }
            stages.append({"stage": s.kind, **fields})
        return {"seed": self.seed, "from_logits": self.from_logits, "stages": stages}

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> Recipe:
        """Builds a recipe from `to_dict()`'s form (fields left out take their defaults).

        Args:
            config: `{"stages": [{"stage": "prune", "sparsity": 0.8, ...}, ...]}`,
                optionally with "seed" and "from_logits".

        Returns:
            The `Recipe`.

        Raises:
            TypeError: `config` or a stage is not a dict, or a value of the
                wrong type (the message names the stage).
            ValueError: an unknown key or stage, or a value out of range.
        """
        if not isinstance(config, dict):
            raise TypeError(
                "Argument `config` must be a dict with a 'stages' list. "
                f"Received: config of type {type(config).__name__}"
            )
        unknown = sorted(set(config) - {"stages", "seed", "from_logits"})
        if unknown:
            raise ValueError(
                f"Recipe: unknown key(s) {unknown}; a recipe has 'stages' and optionally "
                "'seed' and 'from_logits'."
            )
        if "stages" not in config:
            raise ValueError(
                "Recipe: missing 'stages', e.g. {'stages': [{'stage': 'prune', 'sparsity': "
                "0.8}, {'stage': 'export', 'formats': ['tflite']}]}."
            )
        raw = config["stages"]
        if not isinstance(raw, list):
            raise TypeError(f"Recipe: 'stages' must be a list. Received: {raw!r}")
        stages = [_stage_from_dict(i, item) for i, item in enumerate(raw)]
        options = {k: config[k] for k in ("seed", "from_logits") if k in config}
        return cls(stages, **options)

    @classmethod
    def from_file(cls, path) -> Recipe:
        """Reads a recipe from a `.json`, `.yaml` or `.yml` file (`to_dict()`'s form).

        Example:

        ```python
        from tfopt.pipeline import ExportStage, PruneStage, Recipe

        Recipe([PruneStage(sparsity=0.8), ExportStage()]).to_file("recipe.yaml")
        recipe = Recipe.from_file("recipe.yaml")
        ```

        Args:
            path: the file.

        Returns:
            The `Recipe`.

        Raises:
            FileNotFoundError: no such file.
            ImportError: a YAML file without PyYAML installed.
            ValueError: another ending, text that does not parse, or a recipe
                `from_dict` refuses (the message names the file).
            TypeError: as `from_dict`.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".json", ".yaml", ".yml"):
            raise ValueError(
                f"Argument `path` must end in .json, .yaml or .yml. Received: path='{path}'"
            )
        if not path.is_file():
            raise FileNotFoundError(f"Recipe file not found: '{path}'")
        text = path.read_text()
        if suffix == ".json":
            try:
                data = json.loads(text)
            except ValueError as err:  # json.JSONDecodeError
                raise ValueError(f"Recipe file '{path}' is not valid JSON: {err}") from err
        else:
            yaml = _yaml()
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as err:
                raise ValueError(f"Recipe file '{path}' is not valid YAML: {err}") from err
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as err:
            raise type(err)(f"Recipe file '{path}': {err}") from err

    def to_file(self, path) -> None:
        """Writes the recipe as JSON (`.json`) or YAML (`.yaml`, `.yml`).

        Args:
            path: the file to write.

        Raises:
            ValueError: another ending.
            ImportError: YAML without PyYAML installed.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        elif suffix in (".yaml", ".yml"):
            path.write_text(_yaml().safe_dump(self.to_dict(), sort_keys=False))
        else:
            raise ValueError(
                f"Argument `path` must end in .json, .yaml or .yml. Received: path='{path}'"
            )


def _stage_from_dict(index: int, item) -> Stage:
    where = f"Recipe: stages[{index}]"
    if not isinstance(item, dict):
        raise TypeError(
            f"{where} must be a dict like {{'stage': 'prune', 'sparsity': 0.8}}. "
            f"Received: {item!r}"
        )
    kind = item.get("stage")
    if kind not in STAGES:
        raise ValueError(
            f"{where}: unknown stage {kind!r}. Known stages: {', '.join(STAGES)} "
            f"(order: {ORDER_TEXT})."
        )
    cls = STAGES[kind]
    names = [f.name for f in dataclasses.fields(cls)]
    options = {k: v for k, v in item.items() if k != "stage"}
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ValueError(
            f"{where} ({kind}): unknown key(s) {unknown}. {cls.__name__} takes: "
            f"{', '.join(names)}."
        )
    try:
        return cls(**options)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where} ({kind}): {err}") from err


def _yaml():
    try:
        import yaml
    except ImportError as err:
        raise ImportError(
            "Reading or writing a YAML recipe needs PyYAML: `pip install pyyaml` (or use a "
            ".json recipe)."
        ) from err
    return yaml
