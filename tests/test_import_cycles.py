"""No import cycles among autometa's modules; imports inside functions only for optional backends.

The checker reads the source with ``ast``: module-level imports and imports inside functions
count, imports under ``if TYPE_CHECKING:`` do not (they never run). Relative imports are
resolved, and ``from pkg import name`` points at ``pkg.name`` when that is a module.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

import autometa
from autometa._optional import OPTIONAL_BACKENDS, backend_of, import_optional

PACKAGE = Path(autometa.__file__).parent


@dataclass(frozen=True)
class Import:
    """One imported module: ``target`` is a module of the package when ``internal``."""

    source: str
    target: str
    internal: bool
    line: int
    in_function: bool


def package_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package at ``root``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class _Collector(ast.NodeVisitor):
    """Collects the imports of one module, noting which sit inside a function."""

    def __init__(self, module: str, modules: dict[str, Path]) -> None:
        self.module = module
        self.modules = modules
        is_package = modules[module].name == "__init__.py"
        self.package = module if is_package else module.rpartition(".")[0]
        self.root = module.partition(".")[0]
        self.depth = 0
        self.found: list[Import] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.package.split(".")
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            name = f"{base}.{alias.name}"
            self._add(name if name in self.modules else base, node)

    def _add(self, name: str, node: ast.stmt) -> None:
        internal = name.partition(".")[0] == self.root
        if internal:
            while name not in self.modules:
                name = name.rpartition(".")[0]
        self.found.append(Import(self.module, name, internal, node.lineno, self.depth > 0))


def package_imports(root: Path) -> list[Import]:
    """Every import statement of the package at ``root``, outside ``TYPE_CHECKING`` blocks."""
    modules = package_modules(root)
    found = []
    for module, path in modules.items():
        collector = _Collector(module, modules)
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        found.extend(collector.found)
    return found


def import_graph(root: Path) -> nx.DiGraph:
    """Modules as nodes, ``a -> b`` when ``a`` imports ``b``; each edge keeps its line numbers."""
    graph = nx.DiGraph()
    graph.add_nodes_from(package_modules(root))
    for imp in package_imports(root):
        if imp.internal:
            if not graph.has_edge(imp.source, imp.target):
                graph.add_edge(imp.source, imp.target, lines=[])
            graph.edges[imp.source, imp.target]["lines"].append(imp.line)
    return graph


def import_cycles(graph: nx.DiGraph) -> list[str]:
    """One line per cycle: its modules, then one closed path through them with line numbers."""
    out = []
    for component in nx.strongly_connected_components(graph):
        node = next(iter(component))
        if len(component) == 1 and not graph.has_edge(node, node):
            continue
        path = nx.find_cycle(graph.subgraph(component), source=min(component))
        steps = " -> ".join(f"{u}:{graph.edges[u, v]['lines'][0]}" for u, v in path)
        out.append(f"{', '.join(sorted(component))}: {steps} -> {path[0][0]}")
    return sorted(out)


def misplaced_imports(root: Path) -> list[str]:
    """Imports inside functions of anything but a listed optional backend."""
    found = [
        f"{imp.source}:{imp.line}: {imp.target}"
        for imp in package_imports(root)
        if imp.in_function and (imp.internal or backend_of(imp.target) is None)
    ]
    return list(dict.fromkeys(found))


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


# ----------------------------------------------------------------------------- autometa


def test_autometa_has_no_import_cycles():
    cycles = import_cycles(import_graph(PACKAGE))
    assert not cycles, "import cycles (module:line of each import):\n" + "\n".join(cycles)


def test_autometa_imports_inside_functions_only_optional_backends():
    misplaced = misplaced_imports(PACKAGE)
    assert not misplaced, (
        "imports inside functions of modules that are not optional backends "
        "(move them to the top of the module):\n" + "\n".join(misplaced)
    )


def test_the_checker_sees_autometa_imports():
    graph = import_graph(PACKAGE)
    assert graph.has_edge("autometa.tasks._classic", "autometa.tasks._rng")
    assert graph.has_edge("autometa.strategies", "autometa.strategies.base")
    assert graph.has_edge("autometa.strategies.base", "autometa.strategies._grid_count")
    assert not graph.has_edge("autometa.tasks._single", "autometa.tasks.base")  # type-only


# ----------------------------------------------------------------------------- the checker


def test_a_planted_in_function_cycle_is_reported(tmp_path):
    root = _write_package(
        tmp_path / "plant",
        {
            "__init__.py": "",
            "a.py": "from plant import b\n",
            "b.py": "def late():\n    from . import a\n    return a\n",
            "c.py": "import json\n",
        },
    )
    assert import_cycles(import_graph(root)) == [
        "plant.a, plant.b: plant.a:1 -> plant.b:2 -> plant.a"
    ]
    assert misplaced_imports(root) == ["plant.b:2: plant.a"]


def test_self_imports_and_longer_cycles_are_reported(tmp_path):
    root = _write_package(
        tmp_path / "plant",
        {
            "__init__.py": "",
            "loop.py": "import plant.loop\n",
            "sub/__init__.py": "from .x import X\n",
            "sub/x.py": "from ..y import Y\nX = 1\n",
            "y.py": "from plant.z import Z\nY = 2\n",
            "z.py": "class K:\n    import plant.sub\nZ = 3\n",
        },
    )
    assert import_cycles(import_graph(root)) == [
        "plant.loop: plant.loop:1 -> plant.loop",
        "plant.sub, plant.sub.x, plant.y, plant.z: "
        "plant.sub:1 -> plant.sub.x:1 -> plant.y:1 -> plant.z:2 -> plant.sub",
    ]
    assert misplaced_imports(root) == []


def test_type_checking_imports_do_not_count(tmp_path):
    root = _write_package(
        tmp_path / "plant",
        {
            "__init__.py": "",
            "a.py": "import plant.b\n",
            "b.py": (
                "import typing\n"
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from plant.a import A\n"
                "else:\n"
                "    import json\n"
                "if typing.TYPE_CHECKING:\n"
                "    import plant.a\n"
                "def f():\n"
                "    import matplotlib.pyplot\n"
                "    import numpy\n"
            ),
        },
    )
    assert import_cycles(import_graph(root)) == []
    imports = [(i.target, i.in_function) for i in package_imports(root) if i.source == "plant.b"]
    assert imports == [
        ("typing", False),
        ("typing", False),
        ("json", False),
        ("matplotlib.pyplot", True),
        ("numpy", True),
    ]
    assert misplaced_imports(root) == ["plant.b:11: numpy"]


# ----------------------------------------------------------------------------- import_optional


def test_import_optional_returns_the_module():
    assert import_optional("deap.tools", "the genetic strategies").__name__ == "deap.tools"


def test_import_optional_names_the_package_to_install(monkeypatch):
    monkeypatch.setitem(OPTIONAL_BACKENDS, "autometa_absent_backend", "autometa-nas[absent]")
    with pytest.raises(ImportError) as info:
        import_optional("autometa_absent_backend.sub", "drawing")
    assert str(info.value) == (
        "autometa_absent_backend is not installed; it is needed for drawing: "
        "pip install 'autometa-nas[absent]'"
    )


def test_import_optional_refuses_a_core_module():
    with pytest.raises(ValueError) as info:
        import_optional("numpy", "arrays")
    assert str(info.value) == (
        "'numpy' is not an optional backend; expected a module of one of "
        + ", ".join(sorted(OPTIONAL_BACKENDS))
    )


def test_backend_of_prefers_the_longest_entry():
    assert backend_of("gymnasium.envs.mujoco.ant_v5") == "gymnasium.envs.mujoco"
    assert backend_of("gymnasium.spaces") is None
    assert backend_of("matplotlib.pyplot") == "matplotlib"
    assert backend_of("matplotlibx") is None
