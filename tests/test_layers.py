"""The package's import graph: no cycles (function-level imports included), so data flows one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gansweep"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The gansweep modules ``path`` imports anywhere in it; ``from gansweep.x import y`` counts as
    ``gansweep.x.y`` when that is a module, else as ``gansweep.x``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: _imports(path, set(paths)) - {name} for name, path in paths.items()}
    for name in graph:  # importing gansweep.a.b runs gansweep/a/__init__.py first: not an edge worth following
        graph[name] -= {n for n in graph if name.startswith(n + ".")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = "open", path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node], _ = "done", path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_in_the_package() -> None:
    cycle = _cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_class_is_over_150_lines() -> None:
    long = {
        f"{_module(path)}.{node.name}": node.end_lineno - node.lineno + 1
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 150
    }
    assert not long


def test_the_command_line_parses_without_torch_or_the_stores() -> None:
    """`gansweep --help` stays instant: cli.py imports a command's module (and torch) only once it runs."""
    code = "import sys, gansweep.cli; gansweep.cli.build_parser(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'optuna', 'mlflow') or m.startswith('gansweep.commands.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_train_does_not_import_the_sweep_machinery() -> None:
    """`gansweep train` is one process per trial in a notebook's place: it imports what training needs."""
    code = "import sys, gansweep.commands; gansweep.commands.handler('train'); print(sorted(m for m in sys.modules if m.split('.')[0] in ('optuna', 'mlflow', 'matplotlib', 'sqlalchemy', 'pandas')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


LAYERS = (
    ("errors", "options", "streams"),
    ("models", "losses", "data"),
    ("hparams",),
    ("trainer", "group"),
    ("artifacts", "checkpoint", "diagnostics", "progress", "tracking", "mlruns", "sending", "pictures"),
    ("config", "grid_yaml", "view"),
    ("sweep",),
    ("tables", "reported"),
    ("commands",),
    ("api", "cli"),
)
"""README "Development" draws these, bottom first: a module imports only from its own layer and those below."""


def _layer(module: str) -> int:
    top = module.removeprefix("gansweep.").split(".")[0]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_data_flows_one_way_through_the_layers() -> None:
    upward = [
        f"{module} -> {imported}"
        for module, imports in import_graph().items()
        if module != "gansweep"
        for imported in imports
        if _layer(imported) > _layer(module)
    ]
    assert not upward


def test_the_readme_draws_the_layers() -> None:
    readme = (PACKAGE.parent / "README.md").read_text()
    drawn = " → ".join(", ".join(f"`{name}`" for name in names) for names in LAYERS)
    assert drawn in readme.replace("\n", " ")
