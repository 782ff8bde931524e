"""The package's shape: no import cycles, exporters use only public quantization names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tfopt"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """tfopt modules `path` imports anywhere in its body (function-level imports too).

    `from pkg import sub` counts as importing `pkg.sub` when `sub` is a module,
    else as importing `pkg` (its __init__).
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif node.module in modules:
                    found.add(node.module)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def _find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_tfopt():
    graph = _graph()
    assert graph.get("tfopt.export.tflite")  # the walk works
    assert _find_cycle(graph) is None


@pytest.mark.parametrize("package", ["tfopt.export"])
def test_export_uses_only_public_quantization_names(package):
    """tfopt.export reads QAT models through tfopt.quantization's public names only."""
    offenders = []
    for name, path in _modules().items():
        if not name.startswith(package):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "tfopt.quantization"
            ):
                private_module = any(p.startswith("_") for p in node.module.split("."))
                private_name = any(a.name.startswith("_") for a in node.names)
                if private_module or private_name or node.module != "tfopt.quantization":
                    offenders.append(f"{name}: from {node.module} import ...")
    assert offenders == []


def test_dependencies_point_one_way():
    """quantization, pruning and distillation never import the exporters or the CLI."""
    graph = _graph()
    for name, imported in graph.items():
        if name.startswith(("tfopt.quantization", "tfopt.pruning", "tfopt.distillation")):
            assert not {m for m in imported if m.startswith(("tfopt.export", "tfopt.cli"))}, name
