"""The layers import one way (STYLE.md "The shape"): bot → commands → storage, never back; the
classroom's modules form no cycle and need no import hidden inside a function to dodge one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("bot", "commands", "storage")
OURS = (*LAYERS, "devtools")


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, inside a function?) for every import of ours in the file; what only a type
    checker reads (``if TYPE_CHECKING:``) does not run, so it is left out."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                continue
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, nested) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                # `from . import when` imports the module commands.when
                names = [f"{target}.{a.name}" for a in child.names] if child.module is None else [target]
                found.extend((name, nested) for name in names)
            visit(child, nested)

    visit(ast.parse(path.read_text()), False)
    return [(name, nested) for name, nested in found if name.split(".")[0] in OURS]


def sources(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


def test_the_walk_finds_the_imports_it_checks():
    found = dict(imports(ROOT / "commands" / "assignments.py"))
    assert found["commands.registry"] is False
    assert found["storage.coursework"] is False
    assert all(not name.startswith("bot") for name in found)


@pytest.mark.parametrize(
    "layer, forbidden",
    [("storage", ("commands", "bot", "devtools")), ("commands", ("bot", "devtools")), ("bot", ("devtools",))],
)
def test_a_layer_never_imports_the_layers_above_it(layer, forbidden):
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources(layer)
        for name, nested in imports(path)
        if name.split(".")[0] in forbidden
        # `ako dev` alone starts the development tools, and only when it runs
        and not (path == ROOT / "bot" / "dev.py" and nested and name.split(".")[0] == "devtools")
    ]
    assert wrong == []


@pytest.mark.parametrize("layer", ["commands", "storage"])
def test_no_import_of_ours_hides_inside_a_function(layer):
    """An import inside a function is how a cycle is dodged. The one exception is the package's
    ``load()``, which imports every feature so that its commands are declared."""
    wrong = [
        f"{path.relative_to(ROOT)} imports {name} inside a function"
        for path in sources(layer)
        if path.name != "__init__.py"
        for name, nested in imports(path)
        if nested
    ]
    assert wrong == []


def test_the_classroom_modules_form_no_cycle():
    graph: dict[str, set[str]] = {}
    for path in sources("commands"):
        if path.name == "__init__.py":
            continue
        module = f"commands.{path.stem}"
        graph[module] = {name for name, _ in imports(path) if name.startswith("commands.") and name != module}
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def walk(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                walk(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert cycles == []
