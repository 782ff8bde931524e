"""The text stays true: every ```python block in README.md, docs/ and tfopt's docstrings runs.

Blocks of one Markdown file run in order in one namespace (a tour builds on itself);
the blocks of one docstring share a namespace of their own. Names a block uses but
does not define come from small fixtures (`model`, `qat`, `x_train`, ...), built
only when a block needs them. A block whose first line is `# doc: no-run` is
only compiled (for fragments that need what the tests cannot have, e.g. a second
machine); use it sparingly.
"""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"^[ \t]*```python[ \t]*\n(.*?)^[ \t]*```", re.M | re.S)
NO_RUN = "# doc: no-run"


def _dedent_block(text: str) -> str:
    lines = text.splitlines()
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join(x[indent:] for x in lines) + "\n"


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a Markdown text or docstring, dedented."""
    return [_dedent_block(m.group(1)) for m in _BLOCK.finditer(text)]


FILES = ("model.tflite", "model_int8.tflite", "model.onnx")


def _module_names(source: str) -> dict:
    """The public names of the module a docstring belongs to (`from module import *`)."""
    if not source.startswith("tfopt/"):
        return {}
    import importlib

    path = source.split("::")[0][: -len(".py")].replace("/", ".")
    module = importlib.import_module(path.removesuffix(".__init__"))
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    return {n: getattr(module, n) for n in names if hasattr(module, n)}


def _docstring_sources():
    """(id, [blocks]) of every docstring in tfopt/ that holds a python block."""
    found = []
    for path in sorted((ROOT / "tfopt").rglob("*.py")):
        tree = ast.parse(path.read_text())
        nodes = [tree, *ast.walk(tree)]
        for node in nodes:
            if not isinstance(
                node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
            ):
                continue
            doc = ast.get_docstring(node, clean=True)
            blocks = python_blocks(doc or "")
            if blocks:
                where = getattr(node, "name", "<module>")
                found.append((f"{path.relative_to(ROOT)}::{where}", blocks))
    # a module docstring is found twice (tree and walk): keep the first
    seen, unique = set(), []
    for key, blocks in found:
        if key not in seen:
            seen.add(key)
            unique.append((key, blocks))
    return unique


def _markdown_sources():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [(str(p.relative_to(ROOT)), python_blocks(p.read_text())) for p in files if p.exists()]


SOURCES = _markdown_sources() + _docstring_sources()


def _free_names(code: str) -> set[str]:
    """Names a block reads that no import or definition in it provides (a name it both
    reads and assigns, like `student = distiller.student`, may be read first)."""
    tree = ast.parse(code)
    loaded, defined = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loaded.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            defined.add(node.name)
        elif isinstance(node, ast.alias):
            defined.add((node.asname or node.name).split(".")[0])
    return loaded - defined - set(dir(builtins))


class Fixtures:
    """Lazily built objects a documentation block may use without defining them."""

    def __init__(self):
        self._cache = {}

    def get(self, name):
        if name not in self._cache:
            maker = getattr(self, f"_make_{name}", None)
            if maker is None:
                return None
            self._cache[name] = maker()
        return self._cache[name]

    # --- modules
    def _make_np(self):
        import numpy

        return numpy

    def _make_tf(self):
        import tensorflow

        return tensorflow

    def _make_keras(self):
        import keras

        return keras

    def _make_tfopt(self):
        import tfopt

        return tfopt

    def _make_L(self):
        return self.get("keras").layers

    def _make_dataclasses(self):
        import dataclasses

        return dataclasses

    # --- data (scikit-learn's digits, 8x8x1 in [0, 1])
    def _make_data(self):
        return self.get("tfopt").datasets.load_digits()

    def _make_x_train(self):
        return self.get("data").x_train

    def _make_y_train(self):
        return self.get("data").y_train

    def _make_x_test(self):
        return self.get("data").x_test

    def _make_y_test(self):
        return self.get("data").y_test

    def _make_x(self):
        return self.get("x_train")

    def _make_y(self):
        return self.get("y_train")

    # --- models
    def _cnn(self, name, filters=8, hidden=None):
        keras, L = self.get("keras"), self.get("L")
        keras.utils.set_random_seed(0)
        inp = keras.Input((8, 8, 1), name="image")
        x = L.Conv2D(filters, 3, padding="same", activation="relu", name=hidden)(inp)
        x = L.MaxPooling2D()(x)
        x = L.Flatten()(x)
        model = keras.Model(inp, L.Dense(10, name="logits")(x), name=name)
        model.compile(
            "adam",
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        model.fit(self.get("x_train"), self.get("y_train"), epochs=2, verbose=0)
        return model

    def _make_model(self):
        return self._cnn("model")

    def _make_teacher(self):
        return self._cnn("teacher", filters=16, hidden="t_hidden")

    def _make_student(self):
        return self._cnn("student", filters=4, hidden="s_hidden")

    def _make_annotated_model(self):
        tq = self.get("tfopt").quantization
        model = self.get("model")
        return self.get("keras").models.clone_model(
            model,
            clone_function=lambda layer: (
                tq.quantize_annotate_layer(layer.__class__.from_config(layer.get_config()))
                if isinstance(layer, self.get("L").Conv2D)
                else layer.__class__.from_config(layer.get_config())
            ),
        )

    def _make_qat(self):
        keras, tq = self.get("keras"), self.get("tfopt").quantization
        qat = tq.quantize_model(self.get("model"))
        qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        qat.fit(self.get("x_train"), self.get("y_train"), epochs=1, verbose=0)
        return qat

    def _make_qat_model(self):
        return self.get("qat")

    def _make_distiller(self):
        keras, distillation = self.get("keras"), self.get("tfopt").distillation
        distiller = distillation.Distiller(self.get("teacher"), self.get("student"))
        distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return distiller

    # --- exported files a block may open by name (written into its working directory)
    def file(self, name: str, directory: Path) -> None:
        export, model = self.get("tfopt").export, self.get("model")
        if name == "model.tflite":
            export.to_tflite(model, directory / name)
        elif name == "model_int8.tflite":
            export.to_tflite(
                model, directory / name, "int8", representative_data=self.get("x_train")[:64]
            )
        elif name == "model.onnx":
            export.to_onnx(model, directory / name)

    def _make_pruned(self):
        keras, pruning = self.get("keras"), self.get("tfopt").pruning
        pruned = pruning.prune_low_magnitude(
            self.get("model"), pruning.ConstantSparsity(0.5, 0, frequency=1)
        )
        pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        pruned.fit(
            self.get("x_train"),
            self.get("y_train"),
            epochs=1,
            verbose=0,
            callbacks=[pruning.UpdatePruningStep()],
        )
        return pruned


@pytest.fixture(scope="module")
def fixtures():
    return Fixtures()


def test_block_finder():
    text = "A\n\n```python\nx = 1\n```\n\n    ```python\n    y = x\n    ```\n"
    assert python_blocks(text) == ["x = 1\n", "y = x\n"]
    assert _free_names("y = np.zeros(n)\nimport os\nos.sep\nz = y") == {"np", "n", "y"}


def test_every_public_module_is_scanned():
    keys = {key.split("::")[0] for key, _ in SOURCES}
    assert "README.md" in keys
    assert any(k.startswith("tfopt/quantization/") for k in keys)
    assert any(k.startswith("tfopt/export/") for k in keys)


@pytest.mark.parametrize("source", [s for s, _ in SOURCES])
def test_python_blocks_run(source, fixtures, tmp_path, monkeypatch):
    blocks = dict(SOURCES)[source]
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"doc:{source}", **_module_names(source)}
    for index, code in enumerate(blocks):
        compiled = compile(code, f"{source}[block {index}]", "exec")
        if code.lstrip().startswith(NO_RUN):
            continue
        for name in FILES:
            if name in code and not (tmp_path / name).exists():
                fixtures.file(name, tmp_path)
        for name in sorted(_free_names(code) - set(namespace)):
            value = fixtures.get(name)
            if value is not None:
                namespace[name] = value
        exec(compiled, namespace)
